"""Hydra's basic sweeper (the grid of ``python run.py -m``), with the end that it lacks: a job whose process
died without a result (by the out-of-memory killer, by hand, a lost node) ends the sweep with its summary
and exit status 1, instead of the launcher's traceback (joblib's TerminatedWorkerError, submitit's
UncompletedJobError): lenet_exp/sweeps/ending.py. Its check that each job composes also refuses two jobs given
one folder, and ``shuffle(…)`` orders the jobs the same way each time (lenet_exp/sweeps/space.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from lenet_exp.files import SWEEP_RECORD, write_atomic
from lenet_exp.overrides import as_written
from lenet_exp.sweeps.ending import ending_on_a_dead_job  # no torch: Hydra imports this module in every run.py
from lenet_exp.sweeps.records import jobs_found
from lenet_exp.sweeps.space import JobFolders, split_grid
from lenet_exp.validation import refuse_keys_some_jobs_lack


class EndingBasicSweeper(BasicSweeper):
    def sweep(self, arguments: list[str]) -> Any:
        self.job_folders = JobFolders(self.config)
        # Hydra writes this command's multirun.yaml over the sweep's before any job's config is composed: a
        # command refused before it launched a job (model=lenet5,lenet9) left the sweep's own command refused
        record = Path(str(self.config.hydra.sweep.dir)) / SWEEP_RECORD
        earlier, launched = (record.read_bytes() if record.is_file() else None), []
        launch = self.launcher.launch

        def launch_noted(*args: Any, **kwargs: Any) -> Any:
            launched.append(True)
            return launch(*args, **kwargs)

        self.launcher.launch = launch_noted
        try:
            with ending_on_a_dead_job():
                return super().sweep(arguments)
        except BaseException:
            if earlier is not None and not launched:
                write_atomic(record, lambda file: file.write(earlier))
            raise

    def split_arguments(self, overrides: list, max_batch_size: Optional[int]) -> list:
        """The grid numbered as the jobs its folder holds already: values added to any swept key add jobs after
        those, which keep their numbers and folders (space.numbered_as_found)."""
        return split_grid(overrides, max_batch_size, found=jobs_found(Path(str(self.config.hydra.sweep.dir))))

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        """Hydra's own check, composing each job's config (the stacked launcher keeps it), its folder's, and that
        each job's option takes the keys added to all."""
        jobs = [(overrides, self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides)))
                for overrides in batch]
        for _, config in jobs:
            self.job_folders.claim(config)
        refuse_keys_some_jobs_lack(jobs, as_written(self.config.hydra.overrides.task))
