"""Turn SIGINT / SIGTERM into a polite stop request that the training loop checks between steps."""

from __future__ import annotations

import signal
import threading
from typing import Optional


class StopSignals:
    """Within this context the first SIGINT or SIGTERM only sets a flag; a second one stops at once."""

    HANDLED = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self.signal is not None

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
