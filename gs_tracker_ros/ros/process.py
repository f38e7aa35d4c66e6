"""The tracker node (or any command) as a child process, its output in a log file.

One helper for every caller that starts the node in another process: ``bag replay-eval`` /
``bag latency`` / ``demo`` and the tests. The child gets its own session (process group), so
stopping it also stops what it started (e.g. ``ros2 launch``'s children).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

NODE_MODULE = "gs_tracker_ros.ros.run_node"


class NodeProcess:
    """``cmd`` running with ``env``; stdout and stderr go to ``log_path``."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str], log_path: str | os.PathLike,
                 cwd: str | os.PathLike | None = None) -> None:
        self.cmd = list(cmd)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(cwd) if cwd else None, start_new_session=True)

    @classmethod
    def node(cls, ros_args: Sequence[str], env: dict[str, str], log_path: str | os.PathLike,
             cwd: str | os.PathLike | None = None, executable: str | None = None) -> "NodeProcess":
        """``gs_tracker_node --ros-args ROS_ARGS`` (``executable``, default this interpreter running
        :data:`NODE_MODULE`)."""
        exe = [executable] if executable else [sys.executable, "-m", NODE_MODULE]
        return cls([*exe, "--ros-args", *ros_args], env, log_path, cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        """Everything the child has written so far."""
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines of the log (for error messages)."""
        return "\n".join(self.log_text().strip().splitlines()[-lines:])

    def rss_mb(self) -> float:
        """Resident set size of the child in MiB (from /proc/PID/status)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        raise RuntimeError("VmRSS not found")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGINT (the node's clean shutdown) and up to ``timeout_s`` for it to exit, then SIGTERM
        (3 s), then SIGKILL to the child's process group; always reaps the child and closes the
        log. Returns the exit code when the child ended by itself or on SIGINT, None when it needed
        SIGTERM or SIGKILL."""
        rc = self.proc.poll()  # already ended by itself
        try:
            if rc is None:
                rc = self._signal_and_wait(signal.SIGINT, timeout_s)
            if rc is None:
                self._signal_and_wait(signal.SIGTERM, 3.0)
        finally:
            if self.proc.poll() is None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    self.proc.kill()
                self.proc.wait(5)
            self._log.close()
        return rc

    def _signal_and_wait(self, sig: int, wait_s: float) -> int | None:
        """Send ``sig``; the exit code if the child ends within ``wait_s``, else None."""
        try:
            self.proc.send_signal(sig)
            return self.proc.wait(wait_s)
        except ProcessLookupError:
            return self.proc.poll()
        except subprocess.TimeoutExpired:
            return None
