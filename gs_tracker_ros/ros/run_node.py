"""The ``gs_tracker_node`` executable: signal handling first, then the heavy imports.

Importing the node (numpy, OpenCV, rclpy, the tracker) takes about half a second. A SIGINT in
that time used to end the process with a ``KeyboardInterrupt`` traceback (exit -2) and a SIGTERM
killed it outright (exit -15). Here SIGTERM is made to behave like SIGINT before anything else is
imported, and an interrupt at any point of the start-up ends the process quietly with exit code
0, the same as a signal once the node spins (:func:`gs_tracker_ros.ros.node.main`). Both signals
also set :data:`STOP_REQUESTED`, checked between the start-up steps: a library that swallows the
KeyboardInterrupt while it is imported (a bare ``except:``) cannot make the node ignore it.

Run: ``gs_tracker_node --ros-args ...`` or ``python -m gs_tracker_ros.ros.run_node --ros-args ...``.
"""

from __future__ import annotations

import signal
import sys
import threading

# Set by a SIGINT / SIGTERM at any time. The KeyboardInterrupt the handler raises can be swallowed
# by a library's bare ``except:`` while it is being imported; the node checks this flag between
# the start-up steps, so such a signal still stops it.
STOP_REQUESTED = threading.Event()


def _interrupt(signum: int, frame: object) -> None:
    STOP_REQUESTED.set()
    raise KeyboardInterrupt(f"signal {signum}")


def stop_requested() -> bool:
    return STOP_REQUESTED.is_set()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``gs_tracker_node``; the exit code (see the module docstring)."""
    # rclpy.init chains its own handlers in front of these, so later signals also end spin()
    # cleanly.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            from .node import main as run
        except Exception as err:  # a broken install (a missing library, ...): one line, not a traceback
            if stop_requested():  # a swallowed interrupt left the import half done
                return 0
            text = next((ln for ln in str(err).splitlines() if ln.strip()), "")
            print(f"[FATAL] [gs_tracker_node]: cannot start: {type(err).__name__}: {text}", file=sys.stderr,
                  flush=True)
            return 1
        if stop_requested():
            return 0
        return run(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
