"""The fault suite (issue 26): nothing written half, nothing lost, nothing silent.

Each command runs as a user runs it, in its own process. A full disk is simulated without root
by a file-size limit on that process (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored, so a write past
the limit fails with ``EFBIG`` as a full disk fails with ``ENOSPC``); a read-only folder is a
folder without write permission, or, where the tests run as root (which ignores permission bits),
a folder under sysfs, where nobody can create files. Every failure must be one line and exit
status 2, before the work where it can be known before, and leave no partial file behind.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def gs(*args, fsize: int | None = None, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``gs-tracker ARGS`` in a new process; ``fsize``: the largest file it may write (bytes)."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "gs_tracker_ros", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit_file_size if fsize else None)


def error_line(res: subprocess.CompletedProcess, *needles: str) -> str:
    """The one error line of a command that failed as a user error (status 2, no traceback)."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and errors[0] == res.stderr.strip().splitlines()[-1], res.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def texture_frames(folder: Path, count: int = 8, size: tuple[int, int] = (160, 120), seed: int = 0) -> Path:
    """``count`` PNG frames of a blurred random texture sliding 2 px per frame (trackable, and
    large once encoded: overlays and sheets of it are tens of kB)."""
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    rng = np.random.default_rng(seed)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (h, w + 2 * count, 3), dtype=np.uint8), (3, 3), 0)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:05d}.png"), tex[:, 2 * i:2 * i + w])
    return folder


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    return texture_frames(tmp_path_factory.mktemp("faults") / "clip")


@pytest.fixture
def unwritable(tmp_path) -> Path:
    """A folder in which this process cannot create files."""
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        (ro / "probe").write_text("x")  # root ignores the permission bits
    except OSError:
        yield ro
        ro.chmod(0o755)
        return
    (ro / "probe").unlink()
    ro.chmod(0o755)
    sysfs = Path("/sys")
    try:
        (sysfs / "gs_tracker_probe").write_text("x")
    except OSError:
        yield sysfs / "gs_tracker_test"  # nobody, root included, creates files or folders there
        return
    pytest.skip("no folder here refuses writes to this user")


def tiny_train_config(folder: Path, data: Path, **run) -> Path:
    """A training config small enough to run ~40 steps a second on one CPU thread."""
    cfg = {
        "model": dict(img_size=32, num_frames=4, enc_dim=32, enc_depth=1, enc_heads=2, dec_dim=32, dec_depth=1,
                      dec_heads=2, gaussian_grid=4),
        "data": {"paths": [str(data)], "holdout": [], "preload_short": 40, "max_stride": 2},
        "optim": {"steps": 3, "batch_size": 2, "warmup": 2},
        "run": dict({"log_every": 1, "ckpt_every": 1000, "eval_every": 1000, "eval_clips": 0}, **run),
    }
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


# --------------------------------------------------------------------------- the helper itself
def test_atomic_output_leaves_nothing_on_a_full_disk(tmp_path, monkeypatch):
    from gs_tracker_ros.core.errors import OutputError
    from gs_tracker_ros.core.output import AtomicOutput, write_json

    target = tmp_path / "scores.json"
    target.write_text('{"old": true}')

    def full_disk(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OutputError, match=r"cannot write .*scores.json: no space left on device"):
        write_json(target, {"new": True})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
    with pytest.raises(RuntimeError):
        with AtomicOutput(tmp_path / "bag", folder=True) as tmp:
            tmp.mkdir()
            (tmp / "bag.db3").write_bytes(b"half")
            raise RuntimeError("the writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]
    with AtomicOutput(tmp_path / "bag", folder=True) as tmp:  # a folder keeps its name while written
        tmp.mkdir()
        (tmp / f"{tmp.name}.db3").write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "scores.json"]
    assert (tmp_path / "bag" / "bag.db3").read_bytes() == b"whole"


def test_check_output_refuses_a_folder_nobody_can_write(unwritable):
    from gs_tracker_ros.core.errors import OutputError
    from gs_tracker_ros.core.output import check_output

    with pytest.raises(OutputError, match="cannot"):
        check_output(unwritable / "x.json", "--json")


# --------------------------------------------------------------------------- full disk
def test_track_out_on_a_full_disk(frames, tmp_path):
    res = gs("track", frames, "--grid", "4", "--out", tmp_path / "tracks.npz", fsize=1000)
    error_line(res, f"cannot write {tmp_path / 'tracks.npz'}: file too large")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option,name", [("--overlay", "overlay.mp4"), ("--sheet", "sheet.png")])
def test_track_overlay_and_sheet_on_a_full_disk(frames, tmp_path, option, name):
    res = gs("track", frames, "--grid", "4", "--out", tmp_path / "tracks.npz", option, tmp_path / name, fsize=8000)
    error_line(res, f"cannot write {tmp_path / name}: ")
    assert f"-> {tmp_path / name}" not in res.stdout  # no false success
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.npz"]  # written whole before the overlay
    assert np.load(tmp_path / "tracks.npz")["tracks_xy"].shape == (16, 8, 2)


def test_eval_json_on_a_full_disk(frames, tmp_path):
    res = gs("eval", "--dataset", "cycle", frames, "--frames", "4", "--grid", "8", "--method", "klt",
             "--json", tmp_path / "scores.json", fsize=300)
    error_line(res, f"cannot write {tmp_path / 'scores.json'}: file too large")
    assert list(tmp_path.iterdir()) == []


def test_json_to_a_full_device(frames):
    full = Path("/dev/full")
    if not full.is_char_device():
        pytest.skip("no /dev/full here")
    res = gs("eval", "--dataset", "cycle", frames, "--frames", "4", "--grid", "2", "--method", "klt", "--json", full)
    error_line(res, "cannot write /dev/full: no space left on device")
    assert full.is_char_device()  # written in place, never replaced by a file


def test_bag_make_on_a_full_disk(frames, tmp_path):
    res = gs("bag", "make", frames, "--out", tmp_path / "clip_bag", fsize=100_000)
    error_line(res, f"cannot write bag {tmp_path / 'clip_bag'}: ")
    assert list(tmp_path.iterdir()) == []


def test_bag_make_overwrite_keeps_the_old_bag_on_a_full_disk(frames, tmp_path):
    assert gs("bag", "make", frames, "--out", tmp_path / "b", "--max-frames", "2").returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    res = gs("bag", "make", frames, "--out", tmp_path / "b", "--overwrite", fsize=100_000)
    error_line(res, "cannot write bag")
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


def test_export_onnx_on_a_full_disk(tmp_path):
    res = gs("export", REPO / "checkpoints" / "gmae_tiny.pt", "--onnx", tmp_path / "gmae.onnx", "--no-verify",
             fsize=1_000_000)
    error_line(res, f"cannot write {tmp_path / 'gmae.onnx'}: file too large")
    assert list(tmp_path.iterdir()) == []


def test_train_checkpoint_on_a_full_disk(frames, tmp_path):
    cfg = tiny_train_config(tmp_path, frames.parent)
    res = gs("train", cfg, "--out", tmp_path / "run", "--steps", "1", fsize=20_000)
    error_line(res, f"cannot write {tmp_path / 'run' / 'last.pt'}: file too large")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml", "log.jsonl"]


def test_figure_on_a_full_disk(tmp_path):
    code = ("import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt\n"
            "from gs_tracker_ros.viz.figure_file import save_figure\n"
            "fig, ax = plt.subplots(); ax.plot(range(100))\n"
            f"save_figure(fig, {str(tmp_path / 'fig.png')!r})\n")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert res.returncode == 1 and f"OutputError: cannot write {tmp_path / 'fig.png'}: file too large" in res.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- outputs checked first
def test_outputs_are_checked_before_the_work(frames, tmp_path, unwritable):
    quick = 30  # each refusal comes before any frame is rendered, tracked or replayed
    t0 = time.monotonic()
    res = gs("eval", "--dataset", "cycle", frames, "--frames", "4", "--method", "klt", "--json", unwritable / "s.json")
    error_line(res, "--json")
    assert res.stdout == ""  # no score table: nothing was run
    res = gs("bench", "--quick", "--json", unwritable / "bench.json")
    error_line(res, "--json")
    assert "rendering" not in res.stderr
    res = gs("export", REPO / "checkpoints" / "gmae_tiny.pt", "--onnx", unwritable / "gmae.onnx")
    error_line(res, "--onnx")
    res = gs("train", tiny_train_config(tmp_path, frames.parent), "--out", unwritable / "run")
    error_line(res, "--out")
    assert "training GMAE" not in res.stdout
    assert gs("bag", "make", "synthetic", "--out", tmp_path / "bag", "--frames", "3", "--points", "4").returncode == 0
    for option in ("--json", "--record"):
        res = gs("bag", "replay-eval", tmp_path / "bag", option, unwritable / "out")
        error_line(res, option)
        assert "started the tracker node" not in res.stderr
    res = gs("bag", "make", frames, "--out", unwritable / "bag")
    error_line(res, "--out")
    assert time.monotonic() - t0 < 9 * quick


def test_inputs_are_checked_before_the_work(tmp_path):
    junk = tmp_path / "not_a_checkpoint"
    junk.write_text("junk")
    t0 = time.monotonic()
    res = gs("bench", "--quick", "--encoder-model", junk)
    error_line(res, "not_a_checkpoint", "not a PyTorch checkpoint")
    assert "rendering" not in res.stderr and time.monotonic() - t0 < 60
    error_line(gs("bench", "--quick", "--method", "no_such"), "unknown method 'no_such'")


# --------------------------------------------------------------------------- training: signals, resume
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_train_saves_last_pt_on_a_signal_and_resumes(frames, tmp_path, sig):
    cfg = tiny_train_config(tmp_path, frames.parent)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gs_tracker_ros", "train", str(cfg), "--out", str(out),
                             "--steps", "100000"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "log.jsonl").is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert f"saved {out / 'last.pt'}" in err and "--resume" in err, err
    blob = __import__("torch").load(out / "last.pt", weights_only=True)
    step = int(blob["step"])
    assert step >= 1 and "optimizer" in blob
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    res = gs("train", cfg, "--out", out, "--resume", "--steps", step + 2)
    assert res.returncode == 0, res.stderr
    assert f"resumed from {out / 'last.pt'} at step {step}" in res.stdout


def test_train_resume_with_a_junk_last_pt(frames, tmp_path):
    cfg = tiny_train_config(tmp_path, frames.parent)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_text("junk")
    res = gs("train", cfg, "--out", tmp_path / "run", "--resume")
    error_line(res, "--resume", "last.pt", "not a PyTorch checkpoint")
    assert "training GMAE" not in res.stdout
    torch = pytest.importorskip("torch")
    torch.save({"format": "gs_tracker_ros.gmae/1", "model_config": {}, "model": {}}, tmp_path / "run" / "last.pt")
    error_line(gs("train", cfg, "--out", tmp_path / "run", "--resume"), "not a training checkpoint")


def test_train_refuses_a_negative_time_limit(frames, tmp_path):
    res = gs("train", tiny_train_config(tmp_path, frames.parent), "--out", tmp_path / "run", "--max-minutes", "-1")
    error_line(res, "--max-minutes", "-1")


# --------------------------------------------------------------------------- bag make checks
@pytest.mark.parametrize("extra,needle", [
    (["--fps", "inf"], "--fps must be a frame rate"),
    (["--fps", "1e12"], "--fps must be a frame rate"),
    (["--fps", "nan"], "--fps must be a frame rate"),
    (["--start-time", "1e12"], "--start-time must be in [0, 2147483647]"),
    (["--start-time", "nan"], "--start-time must be in"),
    (["--start-time", "-1"], "--start-time must be in"),
    (["--start-time", "2147483646", "--fps", "0.1"], "would pass 2147483647 s"),
    (["--topic", "bad topic!"], "is not a valid ROS topic name"),
    (["--topic", "/camera/1st"], "is not a valid ROS topic name"),
    (["--points", "5"], "--points only applies to the 'synthetic' input"),
])
def test_bag_make_validates_before_writing(frames, tmp_path, extra, needle):
    error_line(gs("bag", "make", frames, "--out", tmp_path / "bag", *extra), needle)
    assert list(tmp_path.iterdir()) == []


def test_bag_make_stamps_stay_strictly_increasing_at_the_highest_fps(frames, tmp_path):
    from gs_tracker_ros.bag.io import iter_messages

    assert gs("bag", "make", frames, "--out", tmp_path / "bag", "--fps", "1e6", "--topic", "cam/img").returncode == 0
    stamps = [t for topic, _, t, _ in iter_messages(tmp_path / "bag") if topic == "/cam/img"]
    assert len(stamps) == 8 and np.all(np.diff(stamps) > 0)


# --------------------------------------------------------------------------- one line, not a traceback
def test_bad_inputs_are_one_line(frames, tmp_path):
    np.save(tmp_path / "q.npy", np.array([["a", "b"]]))
    error_line(gs("track", frames, "--queries", tmp_path / "q.npy", "--out", tmp_path / "o.npz"),
               "cannot read query file", "must hold numbers")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00\x81 not text")
    error_line(gs("track", frames, "--grid", "3", "--config", tmp_path / "bin.yaml", "--out", tmp_path / "o.npz"),
               "bin.yaml is not UTF-8 text")
    error_line(gs("train", tmp_path / "bin.yaml"), "bin.yaml is not UTF-8 text")
    error_line(gs("export", REPO / "checkpoints" / "gmae_tiny.pt", "--onnx", tmp_path / "x.onnx", "--opset", "999"),
               "--opset must be in [17, ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin.yaml", "q.npy"]


# --------------------------------------------------------------------------- one config file for node and CLI
def test_the_node_params_file_configures_the_cli(frames, tmp_path):
    from gs_tracker_ros.cli.common import load_config

    params = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())
    node = params["/**/gs_tracker_node"]["ros__parameters"]
    config = load_config(REPO / "config" / "tracker.yaml", []).config
    assert config.max_tracks == node["max_tracks"]
    assert config.lk.window == node["tracker"]["lk"]["window"]
    assert list(config.sources) == node["tracker"]["sources"]
    (tmp_path / "dotted.yaml").write_text("/robot1/gs_tracker_node:\n  ros__parameters:\n"
                                          "    tracker.lk.window: 15\n    method: klt\n")
    assert load_config(tmp_path / "dotted.yaml", []).config.lk.window == 15
    res = gs("track", frames, "--grid", "3", "--config", "config/tracker.yaml", "--out", tmp_path / "t.npz")
    assert res.returncode == 0, res.stderr
    (tmp_path / "other.yaml").write_text("/camera_driver:\n  ros__parameters:\n    fps: 30\n")
    error_line(gs("track", frames, "--grid", "3", "--config", tmp_path / "other.yaml", "--out", tmp_path / "o.npz"),
               "a ROS parameters file without a section for gs_tracker_node")


def test_params_file_node_name_is_the_nodes():
    pytest.importorskip("rclpy", reason="the ROS 2 wheels are not installed")
    from gs_tracker_ros.ros import node, params_file, run_node

    assert params_file.NODE_NAME == node.NODE_NAME == run_node.NODE_NAME


# --------------------------------------------------------------------------- wrong words
def test_out_names_say_what_is_written(frames, tmp_path):
    res = gs("track", frames, "--grid", "3", "--out", tmp_path / "noext")
    assert res.returncode == 0, res.stderr
    assert f"tracks -> {tmp_path / 'noext.npz'}" in res.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noext.npz"]
    before = sorted(p.name for p in frames.iterdir())
    error_line(gs("track", frames, "--grid", "3", "--out", frames / "00000.png"), "give a name ending in .npz")
    assert sorted(p.name for p in frames.iterdir()) == before


def test_grid_is_checked_against_max_tracks(frames, tmp_path):
    res = gs("track", frames, "--grid", "65", "--out", tmp_path / "o.npz")
    error_line(res, "--grid 65 places 4225 points but max_tracks is 4096", "--grid 64 or less")
    assert "tracking" not in res.stderr
    res = gs("track", frames, "--grid", "65", "--set", "max_tracks=4225", "--out", tmp_path / "o.npz")
    assert res.returncode == 0, res.stderr
    assert "max_tracks" in gs("track", "--help").stdout


def test_query_frame_far_away_reports_its_value(frames, tmp_path):
    (tmp_path / "q.txt").write_text("1e20 10 10\n")
    error_line(gs("track", frames, "--queries", tmp_path / "q.txt", "--out", tmp_path / "o.npz"),
               "row 1 is on frame 1e+20")


def test_mixed_sizes_error_names_no_missing_option(frames, tmp_path):
    folder = texture_frames(tmp_path / "mixed", count=3)
    cv2.imwrite(str(folder / "00003.png"), np.zeros((40, 50, 3), np.uint8))
    line = error_line(gs("track", folder, "--grid", "3", "--out", tmp_path / "o.npz"), "00003.png is 50x40")
    assert "resize=" not in line
