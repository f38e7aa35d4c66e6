"""The ``gs_tracker_node`` executable: signal handling first, then the heavy imports.

Importing the node (numpy, OpenCV, rclpy, the tracker) takes about half a second. A SIGINT in
that time used to end the process with a ``KeyboardInterrupt`` traceback (exit -2) and a SIGTERM
killed it outright (exit -15). Here SIGTERM is made to behave like SIGINT before anything else is
imported, and an interrupt at any point of the start-up ends the process quietly with exit code
0, the same as a signal once the node spins (:func:`gs_tracker_ros.ros.node.main`).

Run: ``gs_tracker_node --ros-args ...`` or ``python -m gs_tracker_ros.ros.run_node --ros-args ...``.
"""

from __future__ import annotations

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(args: list[str] | None = None) -> int:
    """Entry point of ``gs_tracker_node``; the exit code (see the module docstring)."""
    # SIGINT already raises KeyboardInterrupt (Python's default); rclpy.init chains its own
    # handlers in front of these, so a later SIGTERM also ends spin() cleanly.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from .node import main as run

        return run(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
