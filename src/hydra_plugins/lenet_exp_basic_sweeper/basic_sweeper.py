"""Hydra's basic sweeper (the grid of ``python run.py -m``), with the end that it lacks: a job whose process
died without a result (by the out-of-memory killer, by hand, a lost node) ends the sweep with its summary
and exit status 1, instead of the launcher's traceback (joblib's TerminatedWorkerError, submitit's
UncompletedJobError): lenet_exp/launch.py.
"""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from lenet_exp.launch import ending_on_a_dead_job  # no torch: Hydra imports this module in every run.py


class EndingBasicSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        with ending_on_a_dead_job():
            return super().sweep(arguments)
