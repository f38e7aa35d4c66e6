"""The ``gs_tracker_node`` process: signals, start-up, spinning and exit codes.

:mod:`.node` holds the node class; this module is the executable around it (as image_proc keeps
its components apart from the executables that load them): it installs the signal handling
before anything heavy is imported, checks the command line, captures what rcl writes while it
parses the arguments, builds the node, spins it and turns every way of ending into an exit code
and at most one line.

Importing the node (numpy, OpenCV, rclpy, the tracker) takes about half a second. A SIGINT in
that time used to end the process with a ``KeyboardInterrupt`` traceback (exit -2) and a SIGTERM
killed it outright (exit -15). Here SIGTERM is made to behave like SIGINT before anything else is
imported, and an interrupt at any point of the start-up ends the process quietly with exit code
0, the same as a signal once the node spins. Both signals also set :data:`STOP_REQUESTED`, checked
between the start-up steps and handed to the node (it stops configuring and activating once it is
set): a library that swallows the KeyboardInterrupt while it is imported or while the tracker is
built (a bare ``except:``) cannot make the node ignore it.

Run: ``gs_tracker_node --ros-args ...`` or ``python -m gs_tracker_ros.ros.run_node --ros-args ...``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

NODE_NAME = "gs_tracker_node"  # the node's default name (node.NODE_NAME; test_faults checks they agree)

# Set by a SIGINT / SIGTERM at any time. The KeyboardInterrupt the handler raises can be swallowed
# by a library's bare ``except:`` while it is being imported; the node checks this flag between
# the start-up steps, so such a signal still stops it.
STOP_REQUESTED = threading.Event()

FINAL_GRACE_S = 0.5  # after a lifecycle shutdown: time for the change_state reply and the last status to leave
RCL_INIT_FAILURE_LINE = "Failed to parse global arguments"


def _interrupt(signum: int, frame: object) -> None:
    STOP_REQUESTED.set()
    raise KeyboardInterrupt(f"signal {signum}")


def stop_requested() -> bool:
    return STOP_REQUESTED.is_set()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``gs_tracker_node``; the exit code (see the module docstring and :func:`run`)."""
    # rclpy.init chains its own handlers in front of these, so later signals also end spin()
    # cleanly.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        try:
            from . import node  # noqa: F401 - the heavy imports, here where a signal is handled
        except Exception as err:  # a broken install (a missing library, ...): one line, not a traceback
            if stop_requested():  # a swallowed interrupt left the import half done
                return 0
            fatal_line(f"cannot start: {type(err).__name__}: {first_line(err)}")
            return 1
        if stop_requested():
            return 0
        return run(args)
    except KeyboardInterrupt:
        return 0


def run(args: list[str] | None = None) -> int:
    """Start the node, spin it until a signal or a lifecycle shutdown; the exit code.

    0 after SIGINT / SIGTERM, also when one arrives while the node is starting; 2 with one line
    for a bad command line (a missing, binary or malformed ``--params-file``) or an invalid
    parameter; 1 with one line for any other failure before the node spins (nothing fails
    silently: a launcher always sees it). :func:`main` installs the signal handling first.
    """
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from ..core.errors import ConfigError, TrackerError
    from . import parameters as P
    from .node import TrackerNode

    argv = sys.argv if args is None else args
    node = None
    initialised = spinning = False
    try:
        try:
            P.check_params_files(argv)
            with _rcl_init_output() as rcl_output:
                rclpy.init(args=args)
            initialised = True
        except (ConfigError, RCLError) as err:
            if isinstance(err, RCLError):  # rcl logged "Failed to parse global arguments" already
                rcl_output.drop(RCL_INIT_FAILURE_LINE)
            text = str(err) if isinstance(err, ConfigError) else _rcl_error_line(err)
            fatal_line(f"cannot start: {text}")
            return 2
        if stop_requested():
            return 0
        try:
            node = TrackerNode(argv=argv, autostart=False)
            node.start(stop=STOP_REQUESTED)  # configure + activate unless the autostart parameter says no
        except (TrackerError, ValueError) as err:
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {first_line(err)}")
            return 2
        if stop_requested():
            return 0
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spinning = True
        try:
            while rclpy.ok() and not node.finalized and not stop_requested():
                executor.spin_once(timeout_sec=0.2)
            if node.finalized:  # `ros2 lifecycle set ... shutdown`: say so, then end the process
                node.publish_diagnostics_now()
                end = time.monotonic() + FINAL_GRACE_S
                while rclpy.ok() and time.monotonic() < end:
                    executor.spin_once(timeout_sec=0.05)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        return 0
    except KeyboardInterrupt:  # a signal while starting (before spin)
        return 0
    except Exception as err:
        if stop_requested() or (initialised and not rclpy.ok()):  # a signal arrived meanwhile
            return 0
        if spinning:  # a failure that escaped a callback: the traceback is the bug report
            raise
        fatal_line(f"cannot start: {type(err).__name__}: {first_line(err)}")
        return 1
    finally:
        _ignore_further_signals()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's text (its type name if it has none)."""
    return next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)


def fatal_line(text: str) -> None:
    """One ``[FATAL] [gs_tracker_node]: ...`` line on stderr (before rclpy's logging is up)."""
    print(f"[FATAL] [{NODE_NAME}]: {text}", file=sys.stderr, flush=True)


def _rcl_error_line(err: Exception) -> str:
    """The first line of an RCLError without rcl's ``, at /project/src/...`` source locations."""
    return first_line(err).split(", at /")[0]


class _rcl_init_output:
    """Hold back what rcl writes to stderr (file descriptor 2) during ``rclpy.init`` and pass it
    on afterwards, less the lines :meth:`drop` names: a rejected params file must give one line,
    ours, which repeats rcl's reason and names the file."""

    def __init__(self) -> None:
        self._drop: list[str] = []

    def drop(self, needle: str) -> None:
        self._drop.append(needle)
        self._flush()

    def __enter__(self) -> "_rcl_init_output":
        import tempfile

        sys.stderr.flush()
        self._tmp = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        if exc[0] is None or exc[0].__name__ != "RCLError":  # else the caller drops rcl's line first
            self._flush()

    def _flush(self) -> None:
        if self._tmp.closed:
            return
        self._tmp.seek(0)
        lines = self._tmp.read().decode(errors="replace").splitlines(keepends=True)
        self._tmp.close()
        kept = "".join(ln for ln in lines if not any(d in ln for d in self._drop))
        if kept:
            sys.stderr.write(kept)
            sys.stderr.flush()


def _ignore_further_signals() -> None:
    """While shutting down (bounded: the worker join has a timeout), a second SIGINT / SIGTERM
    (Ctrl-C twice, or launch forwarding one more) must not interrupt ``destroy_node``."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):  # not the main thread (the node run from a test)
            pass


if __name__ == "__main__":
    sys.exit(main())
