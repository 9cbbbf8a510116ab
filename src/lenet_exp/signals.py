"""Turn SIGINT / SIGTERM into a polite stop request that the training loop checks between steps.

A sweep's jobs may run in joblib's worker processes, which a signal to the launching ``run.py``
alone does not reach: a worker also stops once that process has gone, instead of training on, and
then waiting for ever, for a sweep that no longer exists. (submitit's jobs are grandchildren of
``run.py`` and detached by design, as on Slurm: they finish on their own.)
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Optional

LAUNCHER_PID_VARIABLE = "LENET_EXP_LAUNCHER_PID"


def mark_launcher() -> None:
    """Called by run.py: the worker processes it starts inherit its pid, so that they can watch it."""
    os.environ[LAUNCHER_PID_VARIABLE] = str(os.getpid())


def launcher_pid() -> Optional[int]:
    """The run.py process this one descends from, or None in that run.py itself (or without one).
    Only a joblib worker's parent is that process: other launchers' jobs must not watch it."""
    value = os.environ.get(LAUNCHER_PID_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) != os.getpid() else None


def launcher_gone(launcher: Optional[int]) -> bool:
    """Whether this worker's run.py has exited (POSIX: an orphan is adopted by another process)."""
    return launcher is not None and os.getppid() != launcher


class StopSignals:
    """Within this context the first SIGINT or SIGTERM only sets a flag; a second one stops at once.

    With ``launcher``, the exit of that parent process also counts as a stop request, as a SIGTERM.
    """

    HANDLED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, launcher: Optional[int] = None) -> None:
        self.signal: Optional[int] = None
        self.launcher = launcher
        self.launcher_exited = False
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        if self.signal is None and launcher_gone(self.launcher):
            self.signal, self.launcher_exited = signal.SIGTERM, True
        return self.signal is not None

    def reason(self) -> str:
        if self.launcher_exited:
            return f"the exit of the sweep's run.py (pid {self.launcher})"
        return f"signal {self.signal}"

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # asked twice: the user means it
            raise KeyboardInterrupt
        self.signal = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():  # handlers can only live there
            for signum in self.HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
