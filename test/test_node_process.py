"""gs_tracker_node as a process, started and stopped the way users (and launch) do it: bad
command lines, typos in parameters (refused), signals during start-up and repeated signals at
shutdown.
Each case is a real ``gs_tracker_node`` executable (the venv's console script)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")

pytestmark = [pytest.mark.ros, pytest.mark.slow]

EXE = Path(sys.executable).parent / "gs_tracker_node"
READY = "tracking with method"  # the node's start-up log line once it spins


def _exe() -> str:
    if not EXE.is_file():
        pytest.skip(f"{EXE} missing: run `make setup`")
    return str(EXE)


def _run(args, env, cwd, timeout=60):
    out = subprocess.run([_exe(), "--ros-args", *args], env=env, cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("content, needle", [
    (None, "params file not found: "),
    ("/**/gs_tracker_node:\n  ros__parameters:\n    max_tracks: [1, 2\n    method: klt\n",
     "is not valid YAML: line 4, column 11: expected ',' or ']'"),
    ("- just\n- a list\n", "must map node names to {ros__parameters: {...}}"),
    ("/**/gs_tracker_node:\n  ros__parameters:\n    x: [1, abc]\n", "Couldn't parse params file"),
    # issue 26: random bytes used to end the process silently with exit 0 (the UnicodeDecodeError
    # before rclpy.init was taken for an interrupted start-up)
    (bytes(range(128, 256)) * 3, "is not text (byte 0x80 at offset 0 is not UTF-8)"),
], ids=["missing", "malformed", "not-a-mapping", "rcl-rejects", "binary"])
def test_bad_params_file_is_one_line_exit_2(ros_env, tmp_path, content, needle):
    path = tmp_path / "params.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    rc, text = _run(["--params-file", str(path)], ros_env, tmp_path)
    assert rc == 2, text
    assert "Traceback" not in text and needle in text and str(path) in text, text
    assert len(text.strip().splitlines()) == 1, text


def test_any_other_start_up_failure_is_one_line_and_non_zero(monkeypatch, capsys):
    """Whatever fails before the node spins (here an unexpected error while checking the command
    line) ends the process with exit 1 and one line, never silently with 0."""
    from gs_tracker_ros.ros import parameters, run_node

    def broken(argv):
        raise RuntimeError("simulated failure\nwith a second line")

    monkeypatch.setattr(parameters, "check_params_files", broken)
    monkeypatch.setattr(run_node, "_ignore_further_signals", lambda: None)  # keep pytest's Ctrl-C
    rc = run_node.run(["gs_tracker_node", "--ros-args"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert err.strip() == "[FATAL] [gs_tracker_node]: cannot start: RuntimeError: simulated failure", err


def _start(args, env, log: Path):
    f = open(log, "wb")
    proc = subprocess.Popen([_exe(), "--ros-args", *args], env=env, stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, f


def _wait_for_line(log: Path, needle: str, proc, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if needle in text or proc.poll() is not None:
            return text
        time.sleep(0.05)
    return log.read_text(errors="replace")


def _finish(proc, f, timeout_s: float = 15.0):
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return None
    finally:
        f.close()


def _catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``sig`` (SigCgt in /proc/PID/status)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except OSError:
        pass
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_start_up_exits_0_without_traceback(ros_env, tmp_path, sig):
    """The signal arrives while the node imports numpy / OpenCV / rclpy / the tracker (about half a
    second). It is sent once the entry point runs (run_node's first statement installs a SIGTERM
    handler): before that, in the interpreter's own start-up (a few tens of ms), no code of the
    package can run."""
    for k, delay in enumerate((0.0, 0.15, 0.35, 0.9)):
        log = tmp_path / f"node_{k}.log"
        proc, f = _start(["-r", f"__ns:=/early{k}"], ros_env, log)
        deadline = time.monotonic() + 20
        while not _catches(proc.pid, signal.SIGTERM) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(sig)
        t_sent = time.monotonic()
        rc = _finish(proc, f)
        text = log.read_text(errors="replace")
        assert rc == 0, (f"signal sent {delay} s after the handler was installed; exit {rc} after "
                         f"{time.monotonic() - t_sent:.1f} s", text)
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, (delay, text)


TYPO_FILE = "/**/gs_tracker_node:\n  ros__parameters:\n    tracker:\n      outler_px: 3.0\n"


@pytest.mark.parametrize("args, file, needle", [
    (["-p", "no_such:=1"], None, "unknown parameter 'no_such'; "),
    (["-p", "max_trakcs:=5", "-p", "no_such:=1"], None,
     "unknown parameters 'max_trakcs' (did you mean 'max_tracks'?), 'no_such'; "),
    ([], TYPO_FILE, "unknown parameter 'tracker.outler_px' (did you mean 'tracker.integration.outlier_px'?)"),
    (["-r", "image:=/cam/image_raw", "-p", "qos_overrides./cam/image_raw.subscription.durability:=volatile"], None,
     "unknown parameter 'qos_overrides./cam/image_raw.subscription.durability' (did you mean "
     "'qos_overrides./cam/image_raw.subscription.history'?)"),  # (image_qos auto sets the reliability)
], ids=["-p", "two-with-hint", "params-file", "qos-override-policy"])
def test_unknown_parameters_are_refused_with_the_closest_name(ros_env, tmp_path, args, file, needle):
    """Issue 26: a typo used to be a warning, and the node ran on the defaults."""
    if file is not None:
        (tmp_path / "typo.yaml").write_text(file)
        args = [*args, "--params-file", str(tmp_path / "typo.yaml")]
    rc, text = _run(args, ros_env, tmp_path)
    assert rc == 2, text
    assert needle in text and "cannot start: " in text and "Traceback" not in text, text
    assert len(text.strip().splitlines()) == 1, text


def test_parameters_for_all_nodes_warn_and_repeated_sigint_still_exits_0(ros_env, tmp_path):
    """A '/**' section is meant for every node the file is given to: a name that is not ours is
    a warning there (with the closest name), and the node runs."""
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    robot_radius: 0.3\n    max_trakcs: 5\n"
                      "/**/gs_tracker_node:\n  ros__parameters:\n    max_tracks: 7\n")
    log = tmp_path / "node.log"
    proc, f = _start(["--params-file", str(params)], ros_env, log)
    try:
        text = _wait_for_line(log, READY, proc)
        assert READY in text, text
        for needle in ("ignoring parameter 'robot_radius' from a params-file section for all nodes (/**)",
                       "ignoring parameter 'max_trakcs' (did you mean 'max_tracks'?) from a params-file section"):
            assert needle in text, text
        # Ctrl-C under launch can arrive twice: the second one lands in the shutdown
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGTERM)
    finally:
        rc = _finish(proc, f)
    text = log.read_text(errors="replace")
    assert rc == 0, text
    assert time.monotonic() - t0 < 10.0
    assert "Traceback" not in text, text
    assert "another node is already on the graph" not in text, text  # alone on its domain


def test_a_node_of_the_same_name_on_the_graph_is_reported(ros_env, ros_context, tmp_path):
    """Issue 26: two nodes named /ns/gs_tracker_node ran side by side without a word."""
    import random

    import rclpy

    ns = f"/clash_{random.SystemRandom().getrandbits(32):08x}"
    other = rclpy.create_node("gs_tracker_node", namespace=ns, context=ros_context)
    log = tmp_path / "node.log"
    proc, f = _start(["-r", f"__ns:={ns}"], ros_env, log)
    try:
        needle = f"another node is already on the graph as '{ns}/gs_tracker_node', the name this node (pid {proc.pid})"
        text = _wait_for_line(log, needle, proc, timeout_s=30.0)
        assert needle in text and "-r __node:=gs_tracker_node_2" in text, text
        assert text.count("another node is already on the graph") == 1, text
        proc.send_signal(signal.SIGINT)
    finally:
        rc = _finish(proc, f)
        other.destroy_node()
    assert rc == 0, log.read_text(errors="replace")


def test_sigterm_on_a_running_node_exits_0(ros_env, tmp_path):
    log = tmp_path / "node.log"
    proc, f = _start([], ros_env, log)
    try:
        assert READY in _wait_for_line(log, READY, proc)
        proc.send_signal(signal.SIGTERM)
    finally:
        rc = _finish(proc, f)
    text = log.read_text(errors="replace")
    assert rc == 0 and "Traceback" not in text, text


def test_a_failed_configure_ends_start_up_with_exit_2(ros_env, tmp_path):
    """autostart runs the lifecycle configure; a tracker that cannot be built (here: the gmae
    method with a missing checkpoint) ends the process with the reason."""
    rc, text = _run(["-p", "method:=gmae", "-p", f"tracker.engine.model_path:={tmp_path / 'missing.pt'}"],
                    ros_env, tmp_path)
    assert rc == 2, text
    assert f"cannot start: checkpoint not found: {tmp_path / 'missing.pt'}" in text and "Traceback" not in text, text
