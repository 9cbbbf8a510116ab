"""hydra-optuna-sweeper's sweeper as ``sweep=optuna`` uses it, with two ends that it lacks:

* a study stopped by a signal (a joblib sweep's run.py collects its stopped jobs: lenet_exp/launch.py)
  ends once the batch that was training has stopped, instead of proposing trials that cannot start;
* a study in which no trial completed (each one failed or diverged) ends with the sweep summary and its
  exit status, instead of optuna's "No trials are completed yet" traceback.

hydra-optuna-sweeper is optional (``.[optuna]``): it is imported when a study starts, not with this
module, which Hydra imports in every run.py.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from lenet_exp.launch import sweep_stop_signal  # no torch: Hydra imports this module in every run.py

log = logging.getLogger(__name__)


class _StudyStopped(Exception):
    """The sweep was stopped: no further batch of trials is launched."""


class StoppableOptunaSweeper(Sweeper):
    def __init__(self, **optuna_params: Any) -> None:
        from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

        self.optuna = OptunaSweeper(**optuna_params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.optuna.setup(hydra_context=hydra_context, task_function=task_function, config=config)
        launcher = self.optuna.sweeper.launcher  # the study launches each batch of trials through it
        launch = launcher.launch

        def launch_unless_stopped(*args: Any, **kwargs: Any):
            if sweep_stop_signal():  # the batch before was told to the study; this one would not start
                raise _StudyStopped
            return launch(*args, **kwargs)

        launcher.launch = launch_unless_stopped

    def sweep(self, arguments: list[str]) -> None:
        try:
            self.optuna.sweep(arguments)
        except _StudyStopped:
            log.warning("The study was stopped: it proposes no more trials.")
        except ValueError as error:
            if "No trials are completed yet" not in str(error):
                raise
            log.error("No trial of the study completed: the summary says how each one ended.")
