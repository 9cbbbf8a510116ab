"""Turn SIGINT / SIGTERM / SIGHUP into a polite stop request that the training loop checks between steps."""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack, contextmanager
from typing import Iterator, Optional

from lenet_exp.launch import (STOP_FILE_VARIABLE, Stopped, after_a_hang_up, asked_again, handled_by, launcher_gone,
                              stop_file_signal, stop_signals)


class StopSignals:
    """Within this context the first stop signal (SIGINT, SIGTERM, SIGHUP) only sets a flag; a second one
    stops at once (one within :data:`lenet_exp.launch.ECHO_S` of the first request is its echo).

    With ``launcher``, the exit of that process (the sweep's run.py) also counts as a stop request, as a
    SIGTERM. In a joblib or submitit_local sweep, so does its run.py's request to stop (a signal it took:
    :func:`lenet_exp.launch.collect_stopped_jobs`).
    """

    WATCH_INTERVAL_S = 0.5  # how often the launcher is looked for

    def __init__(self, launcher: Optional[int] = None) -> None:
        self.signal: Optional[int] = None
        self.asked_at = 0.0  # when the stop was first requested (time.monotonic())
        self.launcher = launcher
        self.launcher_exited = False
        self.by: Optional[str] = None  # what asked, where no signal did
        self._next_watch = 0.0
        self.stop_file = os.environ.get(STOP_FILE_VARIABLE)  # a parallel sweep's: read once, polled at every step
        self._handling = ExitStack()
        # within records_kept_whole: the second stop and when it came, held till its end
        self._records: Optional[list[tuple[int, float]]] = None

    def requested(self) -> bool:
        if self.signal is None and self.launcher and time.monotonic() >= self._next_watch:
            # ~9 µs to read a parent's /proc entry, where a GPU step may take 100 µs: twice a second will do
            self._next_watch = time.monotonic() + self.WATCH_INTERVAL_S
            if launcher_gone(self.launcher):
                self._ask(signal.SIGTERM)
                self.launcher_exited = True
        if self.signal is None and self.stop_file:
            requested = stop_file_signal(self.stop_file)
            if requested is not None:
                self._ask(requested)
        return self.signal is not None

    def _ask(self, signum: int) -> None:
        self.signal, self.asked_at = signum, time.monotonic()

    def ask(self, signum: int, by: str) -> None:
        """A stop that ``by`` asked for, as ``signum`` would (the same stop, the same signal delivered after it)."""
        if self.signal is None:
            self._ask(signum)
            self.by = by

    def reason(self) -> str:
        if self.launcher_exited:
            return f"the exit of the sweep's run.py (pid {self.launcher})"
        return self.by or f"signal {self.signal}"

    def _handle(self, signum, frame) -> None:
        after_a_hang_up(signum)
        if self.signal is None:
            self._ask(signum)
        elif asked_again(self.asked_at):  # the user means it: stop now, said as this signal (exit 128 + it)
            held = self._records
            if held == []:  # ... once the records being written are whole (a third: at once)
                held.append((signum, time.monotonic()))
                return
            if held and not asked_again(held[0][1]):  # the held one's echo (sent to the process and its group)
                return
            raise Stopped(signum)

    @contextmanager
    def records_kept_whole(self) -> Iterator[None]:
        """Within it a second stop waits for its end: an epoch's checkpoints and metrics.json records, which a
        stop between them left saying different epochs (a stacked resume plans its groups by the records, then
        each trial starts from its checkpoint: one trained alone)."""
        self._records = []
        try:
            yield
            held = self._records
        finally:
            self._records = None
        if held:
            raise Stopped(held[0][0])

    def __enter__(self) -> "StopSignals":
        self._handling.enter_context(handled_by(self._handle, stop_signals()))
        return self

    def __exit__(self, *exc) -> None:
        self._handling.close()
