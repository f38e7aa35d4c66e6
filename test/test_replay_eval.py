"""`gs-tracker bag replay-eval`: a bag played to the live node (separate process, over DDS) scores
the same as the in-process evaluation on the same data, with no dropped frames."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (make setup)")
rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")

from gs_tracker_ros.bag.groundtruth import load_bag_sequence
from gs_tracker_ros.bag.make import SyntheticOptions, make_bags
from gs_tracker_ros.evaluation.metrics import SCORE_KEYS
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.methods import make_tracker

pytestmark = pytest.mark.ros
TOL = 0.01


@pytest.fixture
def ros_process_env(ros_env, monkeypatch) -> dict[str, str]:
    """This process on the test's DDS domain (the node child inherits it), Fast DDS profile
    changes undone afterwards."""
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR"):
        monkeypatch.setenv(key, ros_env[key])
    monkeypatch.setenv("FASTDDS_DEFAULT_PROFILES_FILE", "")  # restored after the test
    return ros_env


def _in_process(bag: Path, method: str) -> dict:
    seq = load_bag_sequence(bag, with_frames=True).seq
    return evaluate_badja(lambda: make_tracker(method), [seq], progress=False)


def _assert_close(replayed: dict, reference: dict) -> None:
    for key in SCORE_KEYS:
        a, b = replayed[key], reference[key]
        if math.isnan(b):
            assert math.isnan(a), key
        else:
            assert abs(a - b) <= TOL, (key, a, b)


def test_replay_eval_on_badja_bag_matches_in_process_eval(shared_data, tmp_path, ros_process_env):
    from gs_tracker_ros.bag.replay_eval import ReplayOptions, run_replay
    from gs_tracker_ros.bag.score import score_recording

    bag = make_bags(shared_data / "badja_dev" / "dog", tmp_path / "dog", max_frames=20)[0]
    # timed replay (like a camera) at half the recorded 30 fps: room for a loaded 2-core machine
    opts = ReplayOptions(mode="timed", rate=0.5, record=tmp_path / "rec", log_dir=tmp_path / "logs",
                         startup_timeout_s=60, quiet=True)
    result, replays = run_replay([bag], opts)
    overall = result["overall"]
    assert overall["dropped_frames"] == 0, (tmp_path / "logs" / "node.log").read_text()[-2000:]
    assert overall["frames"] == 20
    assert 0 < overall["latency_ms_p50"] <= overall["latency_ms_p95"] < 2000
    reference = _in_process(bag, result["method"])
    _assert_close(overall, reference["overall"])
    _assert_close(result["sequences"]["dog"], reference["sequences"]["dog"])
    assert overall["counts"]["n_pairs"] == reference["overall"]["counts"]["n_pairs"] > 0
    # same schema as `gs-tracker eval --json`, plus the replay fields
    assert set(reference["overall"]) | {"dropped_frames", "latency_ms_p50", "latency_ms_p95", "frames"} \
        == set(overall)
    # the recorded bag scores the same
    again = score_recording([bag], [tmp_path / "rec"])
    for key in SCORE_KEYS:
        assert again["overall"][key] == pytest.approx(overall[key], nan_ok=True)
    assert again["overall"]["counts"] == overall["counts"]


def test_replay_eval_cli_lockstep_json_record_and_method(tmp_path, ros_process_env):
    bag = make_bags("synthetic", tmp_path / "syn",
                    synthetic=SyntheticOptions(width=160, height=120, frames=12, points=16))[0]
    out_json = tmp_path / "scores.json"
    cmd = [sys.executable, "-m", "gs_tracker_ros.cli.main", "bag", "replay-eval", str(bag), "--mode", "lockstep",
           "--method", "klt", "--json", str(out_json), "--record", str(tmp_path / "rec"), "--record-format", "mcap"]
    proc = subprocess.run(cmd, env=ros_process_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out_json.read_text())
    assert result["method"] == "klt"
    assert result["overall"]["dropped_frames"] == 0
    reference = _in_process(bag, "klt")
    _assert_close(result["overall"], reference["overall"])
    assert result["overall"]["counts"] == reference["overall"]["counts"]
    assert set(result) >= {"method", "overall", "sequences"} and "synthetic" in result["sequences"]
    assert "| overall |" in proc.stdout
    # `bag score` on the recording reproduces the numbers
    from gs_tracker_ros.cli.main import main as cli_main

    assert cli_main(["bag", "score", str(bag), str(tmp_path / "rec"), "--json", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["overall"]["counts"] == result["overall"]["counts"]


def test_replay_eval_reports_a_node_that_does_not_start(tmp_path, ros_process_env):
    from gs_tracker_ros.bag.replay_eval import ReplayError, ReplayOptions, replay_eval

    bag = make_bags("synthetic", tmp_path / "s", synthetic=SyntheticOptions(width=64, height=48, frames=3, points=2))[0]
    bad = [sys.executable, "-c", "import sys; print('node says no'); sys.exit(3)"]
    with pytest.raises(ReplayError, match=r"exited with status 3(.|\n)*node says no"):
        replay_eval([bag], ReplayOptions(node_cmd=bad, startup_timeout_s=20, quiet=True))


def test_replay_eval_refuses_unknown_node_parameters_in_one_line(tmp_path, ros_process_env):
    """Issue 26: `bag replay-eval -p no_such:=1` used to run (and exit 0) on the defaults. A name
    the CLI can check is refused before anything starts; a qos_overrides.* name that does not
    exist is refused by the node, and its one line is passed on."""
    bag = make_bags("synthetic", tmp_path / "s", synthetic=SyntheticOptions(width=64, height=48, frames=3, points=2))[0]
    for extra, needle in [
        ("max_trakcs:=5", "error: unknown parameter 'max_trakcs' (did you mean 'max_tracks'?)"),
        ("qos_overrides./image.subscription.durability:=volatile",
         "error: the tracker node refused to start: unknown parameter 'qos_overrides./image.subscription.durability' "
         "(did you mean 'qos_overrides./camera/image_raw.subscription.reliability'?)"),  # the bag's image topic
    ]:
        cmd = [sys.executable, "-m", "gs_tracker_ros.cli.main", "bag", "replay-eval", str(bag), "-p", extra,
               "--log-dir", str(tmp_path / "logs")]
        proc = subprocess.run(cmd, env=ros_process_env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
        assert len(errors) == 1, proc.stderr  # (besides the progress line "started the tracker node: ...")


def _children(pid: int) -> list[int]:
    """Pids of the direct children of ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_replay_closes_the_recorded_bag_and_stops_the_node(tmp_path, ros_process_env, sig):
    """Issue 9, item 6: an interrupted --record run used to write nothing (SIGINT) or leave the node
    running (SIGTERM). Now the bag holds what came back, is readable, and the node is gone."""
    import os
    import signal
    import time

    from gs_tracker_ros.bag.io import bag_info, read_custom_data
    from gs_tracker_ros.bag.score import REPLAY_METADATA_KEY

    bag = make_bags("synthetic", tmp_path / "syn",
                    synthetic=SyntheticOptions(width=160, height=120, frames=90, points=8))[0]
    rec = tmp_path / "rec"
    cmd = [sys.executable, "-m", "gs_tracker_ros.cli.main", "bag", "replay-eval", str(bag), "--rate", "0.2",
           "--method", "klt", "--record", str(rec)]
    log = tmp_path / "cli.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen(cmd, env=ros_process_env, stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while "node ready" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "node ready" in log.read_text(), log.read_text()
            time.sleep(2.0)  # a few frames into the replay
            children = _children(proc.pid)
            assert children, "the tracker node child was not found"
            proc.send_signal(getattr(signal, sig))
            rc = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = log.read_text()
    assert rc == 130, text
    assert "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("gs-tracker bag: interrupted: 0 of 1 sequence(s) finished, synthetic stopped after "), last
    assert f"recorded what came back -> {rec}" in last, last
    for pid in children:  # the node was stopped, not orphaned
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    info = bag_info(rec)  # closed and readable
    n_tracks = info.topics["/tracks"][1]
    assert 0 < n_tracks < 90, info.topics
    meta = json.loads(read_custom_data(rec)[REPLAY_METADATA_KEY])
    assert meta["interrupted"] is True and 0 < meta["frames_published"] < 90
