"""Interruption at step boundaries: SIGINT and SIGTERM ask the loop to stop; they never cut a step in half.

The first signal only sets a flag. The loop reads it after the step (or the evaluation) in progress, saves a
checkpoint of that whole step and exits with 128 + the signal's number: 130 for Ctrl-C, 143 for SIGTERM. A
second signal raises KeyboardInterrupt at once, for a user who does not want to wait; the checkpoint on disk
is then the last whole one, since every save is atomic.
"""

from __future__ import annotations

import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """A context manager holding the flag; outside the main thread (where Python cannot take signals) it does
    nothing and a KeyboardInterrupt keeps its usual meaning."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum) if self.signum is not None else 0

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def _handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # the second signal: abort now
        self.signum = signum

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
