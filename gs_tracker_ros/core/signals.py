"""Stopping a long loop cleanly on Ctrl-C / SIGTERM: finish the current step, save, then stop.

:class:`StopOnSignal` turns the first SIGINT or SIGTERM into a flag the loop polls between steps
(``training``: save ``last.pt``, then stop); a second signal interrupts at once with
``KeyboardInterrupt``. Outside the main thread (where Python cannot install handlers) it is a
no-op and ``requested`` stays False.
"""

from __future__ import annotations

import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """Context manager: ``requested`` becomes the name of the first SIGINT / SIGTERM received."""

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self.requested is not None:
            raise KeyboardInterrupt(f"signal {signum}")  # a second signal: stop now
        self.requested = signal.Signals(signum).name

    def __enter__(self) -> "StopOnSignal":
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
