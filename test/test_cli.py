"""The gs-tracker command line as a user runs it: separate processes, real data."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.types import TrackStatus

REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=REPO, timeout=300):
    return subprocess.run([sys.executable, "-m", "gs_tracker_ros", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def davis_video(tmp_path_factory, request):
    data = REPO.parent / "shared" / "data" / "davis_unlabeled" / "car-roundabout"
    if not data.is_dir():
        pytest.skip(f"real video frames not found at {data}")
    path = tmp_path_factory.mktemp("video") / "car-roundabout.mp4"
    frames = sorted(data.glob("*.jpg"))[:30]
    first = cv2.imread(str(frames[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24.0, (first.shape[1], first.shape[0]))
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    return path


def test_track_real_video_writes_tracks_and_overlay(davis_video, tmp_path):
    out, overlay = tmp_path / "tracks.npz", tmp_path / "overlay.mp4"
    res = cli("track", davis_video, "--grid", 5, "--out", out, "--overlay", overlay)
    assert res.returncode == 0, res.stderr
    assert "25 tracks x 30 frames" in res.stdout
    data = np.load(out)
    assert data["tracks_xy"].shape == (25, 30, 2) and data["visible"].shape == (25, 30)
    assert np.isfinite(data["tracks_xy"]).all()
    status, xy = data["status"], data["tracks_xy"]
    assert [str(n) for n in data["status_names"]] == ["not_tracked", "visible", "occluded", "out_of_view"]
    assert status.shape == (25, 30) and np.array_equal(data["visible"], status == TrackStatus.VISIBLE)
    inside = (xy[..., 0] >= -0.5) & (xy[..., 0] < 853.5) & (xy[..., 1] >= -0.5) & (xy[..., 1] < 479.5)
    assert np.array_equal(~inside, status == TrackStatus.OUT_OF_VIEW)  # out of view = outside the image
    # the camera pans after the car: points leave through the left border and are marked so
    assert (status[:, -1] == TrackStatus.OUT_OF_VIEW).sum() >= 2
    # a camera following a car: most points move, but not wildly between frames, hidden or not
    step = np.linalg.norm(np.diff(xy, axis=1), axis=2)
    assert np.median(step) < 30
    # hidden points move with the scene: no jump beyond twice the 95th percentile of the visible
    # points' steps (~20 px/frame here; the lowest-variance failed chain jumped by up to 270 px)
    hidden = (status[:, 1:] != TrackStatus.VISIBLE) & (status[:, :-1] != TrackStatus.VISIBLE)
    seen = (status[:, 1:] == TrackStatus.VISIBLE) & (status[:, :-1] == TrackStatus.VISIBLE)
    assert hidden.sum() >= 20 and step[hidden].max() <= 2 * np.percentile(step[seen], 95)
    # p_lost: a probability on every tracked frame, 0 on the query frame; the hidden points are
    # doubted more than the visible ones
    p_lost = data["p_lost"]
    assert p_lost.shape == (25, 30) and np.all((p_lost >= 0) & (p_lost <= 1)) and np.all(p_lost[:, 0] == 0)
    assert p_lost[status != TrackStatus.VISIBLE].mean() > p_lost[status == TrackStatus.VISIBLE].mean()
    cap = cv2.VideoCapture(str(overlay))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    ok, frame = cap.read()
    cap.release()
    assert ok and n == 30 and frame.shape == (480, 854, 3)


def test_track_reseed_keeps_a_grid_dense_on_a_moving_camera(tmp_path):
    frames = REPO.parent / "shared" / "data" / "davis_unlabeled" / "parkour"
    if not frames.is_dir():
        pytest.skip(f"real video frames not found at {frames}")
    runs = {}
    for name, extra in (("plain", []), ("reseed", ["--reseed", "0.5"])):
        out = tmp_path / f"{name}.npz"
        res = cli("track", frames, "--grid", 6, "--max-frames", 60, "--out", out, *extra)
        assert res.returncode == 0, res.stderr
        runs[name] = np.load(out)
    plain, dense = runs["plain"], runs["reseed"]
    n_vis = (dense["status"] == TrackStatus.VISIBLE).sum(axis=0)
    # the camera pans away from the first grid: without re-seeding most points are gone ...
    assert (plain["status"][:, -1] == TrackStatus.VISIBLE).sum() < 0.5 * 36
    # ... with it, new points (new ids, placed on later frames) keep the grid at >= half its size
    assert len(dense["ids"]) > 36 and len(set(dense["ids"].tolist())) == len(dense["ids"])
    assert dense["query_frame"].max() > 0
    assert np.median(n_vis[10:]) >= 0.5 * 36 and n_vis[-1] > 2 * (plain["status"][:, -1] == TrackStatus.VISIBLE).sum()
    # rows are NOT_TRACKED (NaN) before their query frame and after the seeder removed them
    for row in range(len(dense["ids"])):
        qf = dense["query_frame"][row]
        assert np.all(dense["status"][row, :qf] == TrackStatus.NOT_TRACKED)
        tracked = dense["status"][row] != TrackStatus.NOT_TRACKED
        assert np.array_equal(tracked, np.isfinite(dense["tracks_xy"][row]).all(axis=1))
    removed = [r for r in range(len(dense["ids"])) if dense["status"][r, -1] == TrackStatus.NOT_TRACKED]
    assert removed, "the seeder removed no lost point"


def test_track_query_file_with_frames(tmp_path):
    frames = REPO.parent / "shared" / "data" / "davis_unlabeled" / "blackswan"
    if not frames.is_dir():
        pytest.skip(f"real frames not found at {frames}")
    qfile = tmp_path / "q.csv"
    qfile.write_text("# frame, x, y\n0, 400, 200\n5, 500.5, 250\n")
    out = tmp_path / "t.npz"
    res = cli("track", frames, "--queries", qfile, "--out", out, "--max-frames", 12, "--method", "klt")
    assert res.returncode == 0, res.stderr
    data = np.load(out)
    np.testing.assert_allclose(data["tracks_xy"][1, 5], [500.5, 250])
    assert np.isnan(data["tracks_xy"][1, 4]).all()
    assert data["query_frame"].tolist() == [0, 5]


def test_eval_on_badja_default_beats_classical_baselines(tmp_path):
    badja = REPO.parent / "shared" / "data" / "badja_dev"
    if not badja.is_dir():
        pytest.skip(f"BADJA data not found at {badja}")
    out = tmp_path / "scores.json"
    res = cli("eval", "--dataset", "badja", badja, "--method", "probfuse", "--method", "klt",
              "--method", "dis-chain", "--json", out, timeout=600)
    assert res.returncode == 0, res.stderr
    results = {r["method"]: r for r in json.loads(out.read_text())["results"]}
    for r in results.values():
        assert set(r["sequences"]) == {"bear", "dog", "horsejump-high", "horsejump-low"}
        for key in ("delta_seg", "delta_3px", "delta_avg", "OA", "AJ"):
            assert 0.0 <= r["overall"][key] <= 1.0
        assert r["overall"]["ms_per_frame"] > 0
    # paired differences against the first method, per video and pooled, printed and in the JSON
    diffs = {d["method"]: d for d in json.loads(out.read_text())["differences"]}
    assert set(diffs) == {"klt", "dis-chain"} and "Paired differences" in res.stdout
    for name, d in diffs.items():
        assert d["against"] == "probfuse"
        for video in ("bear", "dog", "horsejump-high", "horsejump-low", "pooled"):
            scores = results[name]["overall" if video == "pooled" else "sequences"]
            scores = scores if video == "pooled" else scores[video]
            ref = results["probfuse"]["overall"] if video == "pooled" else results["probfuse"]["sequences"][video]
            got = d["differences"][video]["delta_seg"]
            assert got["diff"] == pytest.approx(scores["delta_seg"] - ref["delta_seg"])
            assert got["low"] <= got["diff"] <= got["high"]
    ours = results["probfuse"]["overall"]
    for base in ("klt", "dis-chain"):
        for key in ("delta_seg", "delta_avg", "AJ"):
            assert ours[key] > results[base]["overall"][key], (key, base, ours, results[base]["overall"])


def test_eval_query_jitter_on_a_real_video(tmp_path):
    badja = REPO.parent / "shared" / "data" / "badja_dev"
    if not badja.is_dir():
        pytest.skip(f"BADJA data not found at {badja}")
    out = tmp_path / "jitter.json"
    figure = tmp_path / "jitter.png"
    res = cli("eval", "--dataset", "badja", badja / "dog", "--method", "klt", "--method", "dis-chain-fast",
              "--query-jitter", 1, "--jitter-runs", 2, "--json", out, "--jitter-plot", figure)
    assert res.returncode == 0, res.stderr
    image = cv2.imread(str(figure))
    assert image is not None and image.shape[1] > 500 and image.std() > 10  # a drawn figure, not a blank
    assert "Query jitter" in res.stdout and "| klt | **pooled** |" in res.stdout.split("Query jitter")[1]
    for r in json.loads(out.read_text())["results"]:
        jit = r["query_jitter"]
        assert (jit["runs"], jit["amplitude_px"], list(jit["sequences"])) == (2, 1.0, ["dog"])
        for key in ("delta_seg", "delta_avg", "AJ"):
            stats = jit["overall"][key]
            assert len(stats["values"]) == 2 and stats["min"] <= stats["mean"] <= stats["max"]
            assert abs(stats["mean"] - r["overall"][key]) < 0.15  # one px moves a score, not the scale


def test_eval_single_method_json_schema(tmp_path):
    badja = REPO.parent / "shared" / "data" / "badja_dev"
    if not badja.is_dir():
        pytest.skip(f"BADJA data not found at {badja}")
    out = tmp_path / "klt.json"
    res = cli("eval", "--dataset", "badja", badja / "dog", "--method", "klt", "--json", out)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert data["method"] == "klt" and list(data["sequences"]) == ["dog"]
    assert {"delta_seg", "delta_3px", "delta_avg", "OA", "AJ", "ms_per_frame"} <= set(data["overall"])


def test_eval_variant_is_scored_beside_its_method_and_paired(tmp_path):
    """--variant runs the first method again with extra settings on the same clips; its paired
    difference is exactly zero when the settings change nothing, and not when they change tracks."""
    masks = REPO.parent / "shared" / "data" / "davis_masks"
    if not (masks / "goat").is_dir():
        pytest.skip(f"mask data not found at {masks}")
    clip = tmp_path / "masks"
    clip.mkdir()
    (clip / "goat").symlink_to(masks / "goat", target_is_directory=True)
    out = tmp_path / "v.json"
    res = cli("eval", "--dataset", "masks", clip, "--mask-frames", masks.parent / "davis_unlabeled",
              "--variant", "same:integration.outlier_px=" + str(_default("integration.outlier_px")),
              "--variant", "short:integration.intervals=[1,2]", "--json", out)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["results"]] == ["probfuse", "probfuse[same]", "probfuse[short]"]
    scores = [{k: v for k, v in r["overall"].items() if k != "ms_per_frame"} for r in data["results"]]
    assert scores[1] == scores[0]
    diffs = {row["method"]: row["differences"]["pooled"]["mask_stay"] for row in data["differences"]}
    assert diffs["probfuse[same]"]["diff"] == 0.0
    assert scores[2] != scores[0]
    assert "probfuse[short]" in res.stdout


def _default(key):
    from gs_tracker_ros.tracking.config import TrackerConfig

    value = TrackerConfig().to_dict()
    for part in key.split("."):
        value = value[part]
    return value


def test_parse_variant_keeps_bracketed_commas():
    from gs_tracker_ros.cli.eval_cmd import parse_variant

    assert parse_variant("dis12: flow.intervals=[1,2], flow.sigma0=0.25") == (
        "dis12", ["flow.intervals=[1,2]", "flow.sigma0=0.25"])


@pytest.mark.parametrize("make_args, message", [
    (lambda d: ["track", d / "missing.mp4", "--grid", "3", "--out", d / "o.npz"], "does not exist"),
    (lambda d: ["track", d / "empty", "--grid", "3", "--out", d / "o.npz"], "no image"),
    (lambda d: ["track", d / "junk.mp4", "--grid", "3", "--out", d / "o.npz"], "junk.mp4"),
    (lambda d: ["track", d / "frames", "--queries", d / "nan.txt", "--out", d / "o.npz"], "NaN"),
    (lambda d: ["track", d / "frames", "--queries", d / "far.txt", "--out", d / "o.npz"], "outside"),
    (lambda d: ["track", d / "frames", "--grid", "3", "--out", d / "o.npz", "--set", "integration.rho=2"],
     "integration.rho"),
    (lambda d: ["track", d / "frames", "--grid", "3", "--out", d / "o.npz", "--method", "magic"], "unknown method"),
    (lambda d: ["track", d / "frames", "--queries", d / "far.txt", "--out", d / "o.npz", "--reseed", "0.5"],
     "--reseed needs --grid"),
    (lambda d: ["track", d / "frames", "--grid", "3", "--out", d / "o.npz", "--reseed", "1.5"], "--reseed must be"),
    (lambda d: ["eval", "--dataset", "badja", d / "nowhere"], "nowhere"),
    (lambda d: ["eval", "--dataset", "kitti", d], "unknown dataset"),
    (lambda d: ["eval", "--dataset", "cycle", d, "--query-jitter", "1"],
     "--query-jitter moves the queries of labelled videos: use --dataset badja"),
    (lambda d: ["eval", "--dataset", "badja", d, "--query-jitter", "1", "--jitter-runs", "0"],
     "--jitter-runs must be in [1, 100], got 0"),
    (lambda d: ["eval", "--dataset", "badja", d, "--jitter-plot", d / "j.png"],
     "--jitter-plot draws the jittered scores: add --query-jitter PX (e.g. 1)"),
    (lambda d: ["eval", "--dataset", "badja", d, "--query-jitter", "nan"],
     "--query-jitter must be a finite number of px >= 0, got nan"),
    (lambda d: ["eval", "--dataset", "cycle", d, "--variant", "lk.doubt_px=0.5"],
     "--variant expects NAME:KEY=VALUE[,KEY=VALUE...], got 'lk.doubt_px=0.5'"),
    (lambda d: ["eval", "--dataset", "cycle", d, "--variant", "x:lk.doubt_px"], "--variant x: each setting is KEY=VALUE"),
    (lambda d: ["eval", "--dataset", "cycle", d, "--variant", "x:lk.doubt_px=-1"], "lk.doubt_px"),
    # issue 9: each of these was a traceback or a multi-line message, or came only after tracking
    (lambda d: ["track", d / "frames", "--grid", "0", "--out", d / "o.npz"], "--grid must be in [1, 200], got 0"),
    (lambda d: ["eval", "--dataset", "badja", d / "cut_gt"], "gt.npz: File is not a zip file (truncated or corrupt"),
    (lambda d: ["bag", "make", d / "cut_gt", "--out", d / "bag"], "gt.npz: File is not a zip file"),
    (lambda d: ["track", d / "frames", "--grid", "3", "--out", d / "o.npz", "--config", d / "bad.yaml"],
     "bad.yaml is not valid YAML: line 2, column 3: expected ',' or ']'"),
    (lambda d: ["export", d / "junk.pt", "--onnx", d / "x.onnx"],
     "junk.pt: corrupt, truncated or not a PyTorch checkpoint"),
    (lambda d: ["track", d / "frames", "--queries", d / "late.txt", "--out", d / "o.npz"],
     "query point(s) on frame 7, but frames has 3 frames (0 to 2)"),
    (lambda d: ["track", d / "frames", "--grid", "3", "--out", d / "nan.txt" / "o.npz"], "nan.txt is not a folder"),
    (lambda d: ["track", d / "frames", "--grid", "3", "--out", d / "o.npz", "--overlay", d / "empty"],
     "empty is a folder; give a file name"),
])
def test_user_errors_give_one_clear_line(tmp_path, make_args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.mp4").write_bytes(b"this is not a video")
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:03d}.png"), rng.integers(0, 255, (64, 80, 3), dtype=np.uint8))
    (tmp_path / "nan.txt").write_text("10 nan\n")
    (tmp_path / "far.txt").write_text("10 500\n")
    (tmp_path / "late.txt").write_text("0 10 10\n7 20 20\n")
    (tmp_path / "bad.yaml").write_text("integration: [1, 2\nlk: 3\n")
    (tmp_path / "junk.pt").write_bytes(rng.integers(0, 255, 4000, dtype=np.uint8).tobytes())
    gt = REPO.parent / "shared" / "data" / "badja_dev" / "dog" / "gt.npz"
    (tmp_path / "cut_gt").mkdir()
    if gt.is_file():  # the first half of a real gt.npz (the zip directory is at the end)
        data = gt.read_bytes()
        (tmp_path / "cut_gt" / "gt.npz").write_bytes(data[:len(data) // 2])
    elif any(Path(str(a)).name == "cut_gt" for a in make_args(tmp_path)):  # (the args are full paths)
        pytest.skip(f"BADJA data not found at {gt.parent}")
    res = cli(*make_args(tmp_path))
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    assert message in res.stderr, res.stderr
    assert res.stderr.strip().count("\n") <= 1, res.stderr
    assert "weights_only" not in res.stderr  # never advise loading a checkpoint unsafely
    assert "tracking " not in res.stderr  # refused before any frame was tracked


def test_truncated_video_warns_with_both_frame_counts(tmp_path):
    """An AVI cut in half: its header still says 30 frames, 14 or so decode."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    rng = np.random.default_rng(1)
    for _ in range(30):
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    res = cli("track", cut, "--grid", 2, "--out", tmp_path / "o.npz", "--method", "klt")
    assert res.returncode == 0, res.stderr
    decoded = np.load(tmp_path / "o.npz")["tracks_xy"].shape[1]
    assert 0 < decoded < 30
    warning = [ln for ln in res.stderr.splitlines() if "warning:" in ln]
    assert warning == [f"gs-tracker track: warning: video file {cut}: the container says 30 frames but only "
                       f"{decoded} decode (truncated or damaged file); using those {decoded}"], res.stderr
    res = cli("track", path, "--grid", 2, "--out", tmp_path / "o.npz", "--method", "klt")
    assert res.returncode == 0 and "warning" not in res.stderr, res.stderr  # the whole file: no warning
