"""rosbag2 tools: `gs-tracker bag make` round trips (sqlite3 and mcap), ground truth in bags,
clear errors for bad inputs and damaged bags, and `bag play` over DDS to another process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rosbags", reason="rosbags not installed (make setup)")

from gs_tracker_ros.bag.groundtruth import GT_QUERIES_TOPIC, GT_TRACKS_TOPIC, load_bag_sequence
from gs_tracker_ros.bag.io import BagError, bag_info, image_cdr_to_rgb, iter_messages
from gs_tracker_ros.bag.make import SyntheticOptions, make_bags
from gs_tracker_ros.cli.main import main as cli_main

FORMATS = ("sqlite3", "mcap")


def _frames(n: int = 5, w: int = 48, h: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.fixture
def frame_folder(tmp_path: Path) -> tuple[Path, np.ndarray]:
    frames = _frames()
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):  # PNG: lossless, so the bag must hold exactly these pixels
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    return folder, frames


def _images(bag: Path, topic: str = "/camera/image_raw"):
    out = []
    for _, msgtype, log_ns, raw in iter_messages(bag, [topic]):
        assert msgtype == "sensor_msgs/msg/Image"
        stamp, rgb = image_cdr_to_rgb(raw)
        out.append((log_ns, stamp, rgb))
    return out


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = cli_main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ---------------------------------------------------------------------------- make: round trips
@pytest.mark.parametrize("fmt", FORMATS)
def test_make_from_folder_round_trip_bit_exact(frame_folder, tmp_path, fmt, capsys):
    folder, frames = frame_folder
    bag = tmp_path / f"bag_{fmt}"
    rc, out, err = _cli(["bag", "make", str(folder), "--out", str(bag), "--format", fmt, "--fps", "20",
                         "--frame-id", "cam_optical", "--topic", "/cam/image"], capsys)
    assert rc == 0, err
    info = bag_info(bag)
    assert info.storage == fmt
    assert info.topics == {"/cam/image": ("sensor_msgs/msg/Image", len(frames))}
    back = _images(bag, "/cam/image")
    assert len(back) == len(frames)
    for (log_ns, stamp, rgb), want in zip(back, frames):
        assert rgb.dtype == np.uint8 and np.array_equal(rgb, want)
        assert log_ns == stamp
    stamps = np.array([s for _, s, _ in back])
    assert np.all(np.diff(stamps) > 0)
    np.testing.assert_allclose(np.diff(stamps), 1e9 / 20, atol=1)
    assert stamps[0] == 1_700_000_000 * 10**9
    from gs_tracker_ros.bag.io import deserialize

    raw = next(iter_messages(bag, ["/cam/image"]))[3]
    msg = deserialize(raw, "sensor_msgs/msg/Image")
    assert (msg.encoding, msg.header.frame_id, msg.step, msg.width, msg.height) == ("rgb8", "cam_optical", 48 * 3, 48, 32)


def test_bag_cdr_is_rclpy_compatible(frame_folder, tmp_path):
    rclpy_ser = pytest.importorskip("rclpy.serialization", reason="rclpy not installed")
    from sensor_msgs.msg import Image

    folder, frames = frame_folder
    bag = make_bags(folder, tmp_path / "b")[0]
    raw = next(iter_messages(bag, ["/camera/image_raw"]))[3]
    msg = rclpy_ser.deserialize_message(raw, Image)
    assert (msg.width, msg.height, msg.encoding) == (48, 32, "rgb8")
    assert np.array_equal(np.frombuffer(bytes(msg.data), np.uint8).reshape(32, 48, 3), frames[0])
    # and the other way round (padding bytes may differ, the content may not)
    from gs_tracker_ros.bag.io import deserialize

    back = deserialize(rclpy_ser.serialize_message(msg), "sensor_msgs/msg/Image")
    assert (back.width, back.height, back.step, back.encoding) == (48, 32, 144, "rgb8")
    assert np.array_equal(back.data, frames[0].reshape(-1))


def test_make_from_video_uses_its_frame_rate(tmp_path):
    from gs_tracker_ros.core.frames import open_frames
    from gs_tracker_ros.viz.video import VideoWriter

    frames = np.zeros((6, 32, 48, 3), np.uint8)
    frames[:, :, :, 1] = np.arange(6)[:, None, None] * 40
    with VideoWriter(tmp_path / "clip.mp4", fps=12.0) as vw:
        for f in frames:
            vw.write(f)
    video = vw.path
    bag = make_bags(video, tmp_path / "vbag", storage="mcap")[0]
    back = _images(bag)
    decoded = list(open_frames(video))  # the bag holds what the decoder yields, bit-exact
    assert len(back) == len(decoded) == 6
    assert all(np.array_equal(rgb, want) for (_, _, rgb), want in zip(back, decoded))
    np.testing.assert_allclose(np.diff([s for _, s, _ in back]), 1e9 / 12, atol=1)


@pytest.mark.parametrize("fmt", FORMATS)
def test_make_synthetic_ground_truth_round_trip(tmp_path, fmt):
    from gs_tracker_ros.bag.make import make_synthetic_sequence

    opts = SyntheticOptions(width=96, height=64, frames=6, points=12, seed=3)
    bag = make_bags("synthetic", tmp_path / "syn", storage=fmt, synthetic=opts)[0]
    _, want = make_synthetic_sequence(opts)
    got = load_bag_sequence(bag, with_frames=True)
    seq = got.seq
    assert seq.name == "synthetic" and seq.image_hw == (64, 96)
    assert np.array_equal(got.point_ids, np.arange(12))
    assert np.array_equal(seq.tracks_xy, want.tracks_xy) and np.array_equal(seq.visible, want.visible)
    assert seq.annotated.all() and np.array_equal(seq.query_frame, want.query_frame)
    assert np.array_equal(seq.query_xy, want.query_xy)
    assert np.isnan(seq.mask_area).all()
    assert all(np.array_equal(a, b) for a, b in zip(seq.frames, want.frames))
    counts = {t: n for t, (_, n) in bag_info(bag).topics.items()}
    assert counts == {"/camera/image_raw": 6, GT_TRACKS_TOPIC: 6, GT_QUERIES_TOPIC: 1}


def test_make_synthetic_grid_queries(tmp_path):
    opts = SyntheticOptions(width=80, height=48, frames=3, grid=4)
    seq = load_bag_sequence(make_bags("synthetic", tmp_path / "g", synthetic=opts)[0]).seq
    assert seq.num_points == 16 and (seq.query_frame == 0).all()
    assert len(np.unique(seq.query_xy[:, 0])) == 4 and len(np.unique(seq.query_xy[:, 1])) == 4


def test_make_badja_dataset_one_bag_per_sequence_with_gt(shared_data, tmp_path, capsys):
    from gs_tracker_ros.bag.make import _truncate
    from gs_tracker_ros.evaluation.badja import load_badja_sequence

    out = tmp_path / "badja_bags"
    rc, _, err = _cli(["bag", "make", str(shared_data / "badja_dev"), "--out", str(out), "--max-frames", "9",
                       "--format", "mcap"], capsys)
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["bear", "dog", "horsejump-high", "horsejump-low"]
    for name in ("bear", "dog", "horsejump-high", "horsejump-low"):
        want = _truncate(load_badja_sequence(shared_data / "badja_dev" / name), 9)
        got = load_bag_sequence(out / name, with_frames=True)
        seq = got.seq
        assert seq.name == name and seq.num_frames == 9
        assert np.array_equal(got.point_ids, want.joint_ids)  # ids = BADJA joint index
        assert np.array_equal(seq.annotated, want.annotated)
        a = want.annotated
        assert np.array_equal(seq.tracks_xy[:, a], want.tracks_xy[:, a])
        assert np.array_equal(seq.visible[:, a], want.visible[:, a])
        assert np.array_equal(seq.query_frame, want.query_frame) and np.array_equal(seq.query_xy, want.query_xy)
        assert np.array_equal(seq.mask_area, want.mask_area)
        assert all(np.array_equal(x, y) for x, y in zip(seq.frames, want.frames))


# ---------------------------------------------------------------------------- errors
def test_make_bad_inputs_give_clear_errors(tmp_path, frame_folder, capsys):
    folder, _ = frame_folder
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["bag", "make", str(tmp_path / "nope"), "--out", str(tmp_path / "o1")], "does not exist"),
        (["bag", "make", str(folder), "--out", str(tmp_path / "o2"), "--fps", "0"], "--fps must be a frame rate in (0, "),
        (["bag", "make", str(empty), "--out", str(tmp_path / "o3")], "no images"),
        (["bag", "make", str(tmp_path), "--out", str(tmp_path / "o3")], "no gt.npz"),
        (["bag", "make", str(folder), "--out", str(tmp_path / "o4"), "--grid", "3"], "only applies"),
    ]
    (tmp_path / "not_video.mp4").write_bytes(b"\x00garbage")
    cases.append((["bag", "make", str(tmp_path / "not_video.mp4"), "--out", str(tmp_path / "o5")], "not_video.mp4"))
    for args, needle in cases:
        rc, _, err = _cli(args, capsys)
        assert rc == 2, (args, err)
        assert needle in err and "Traceback" not in err, err
    make_bags(folder, tmp_path / "exists")
    rc, _, err = _cli(["bag", "make", str(folder), "--out", str(tmp_path / "exists")], capsys)
    assert rc == 2 and "already exists" in err
    rc, _, err = _cli(["bag", "make", str(folder), "--out", str(tmp_path / "exists"), "--overwrite"], capsys)
    assert rc == 0, err


def _damage(bag: Path, fmt: str) -> Path:
    data_file = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    blob = data_file.read_bytes()
    data_file.write_bytes(blob[: len(blob) // 3])  # truncated mid-file
    return data_file


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_bag_gives_clear_error_naming_the_file(frame_folder, tmp_path, fmt, capsys):
    folder, _ = frame_folder
    bag = make_bags(folder, tmp_path / f"bag_{fmt}", storage=fmt)[0]
    _damage(bag, fmt)
    with pytest.raises(BagError, match=str(bag)):
        list(iter_messages(bag))
    for args in (["bag", "info", str(bag)], ["bag", "play", str(bag), "--wait-for-subscribers", "0"]):
        rc, _, err = _cli(args, capsys)
        assert rc == 2, err
        assert str(bag) in err and "Traceback" not in err, err


def test_corrupt_or_missing_bags_give_clear_errors(tmp_path, capsys):
    not_bag = tmp_path / "empty_dir"
    not_bag.mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9")
    for path, needle in ((tmp_path / "missing", "not found"), (not_bag, "no metadata.yaml"), (garbage, "garbage")):
        rc, _, err = _cli(["bag", "info", str(path)], capsys)
        assert rc == 2 and needle in err and "Traceback" not in err, err
    rc, _, err = _cli(["bag", "replay-eval", str(not_bag)], capsys)
    assert rc == 2 and "Traceback" not in err, err


def test_bag_without_ground_truth_is_refused_by_replay_eval(frame_folder, tmp_path, capsys):
    folder, _ = frame_folder
    bag = make_bags(folder, tmp_path / "plain")[0]
    rc, _, err = _cli(["bag", "replay-eval", str(bag)], capsys)
    assert rc == 2 and "no ground truth" in err, err


# ---------------------------------------------------------------------------- play over DDS
_LISTENER = textwrap.dedent("""
    import json, sys, time, hashlib
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    topic, expect, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("test_bag_listener")
    got = []
    node.create_subscription(Image, topic, lambda m: got.append((time.monotonic(), m)),
                             QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
    print("READY", flush=True)
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({
        "n": len(got),
        "stamps": [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in got],
        "sha": [hashlib.sha256(bytes(m.data)).hexdigest() for _, m in got],
        "span_s": (got[-1][0] - got[0][0]) if got else 0.0,
        "encoding": got[0][1].encoding if got else ""}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
""")


@pytest.mark.ros
def test_play_reaches_a_subscriber_in_another_process(frame_folder, tmp_path, ros_env, monkeypatch):
    import hashlib

    pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")
    from gs_tracker_ros.bag.play import play_bag

    folder, frames = frame_folder
    bag = make_bags(folder, tmp_path / "play_bag", storage="mcap", fps=10.0)[0]
    for key in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR"):
        monkeypatch.setenv(key, ros_env[key])
    child = subprocess.Popen([sys.executable, "-c", _LISTENER, "/remapped/image", str(len(frames)), "30"],
                             env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "READY"
        t0 = time.monotonic()
        stats = play_bag(bag, rate=2.0, remap=["/camera/image_raw:=/remapped/image"], wait_subscribers_s=20,
                         domain_id=int(ros_env["ROS_DOMAIN_ID"]), quiet=True)
        assert stats["published"] == len(frames)
        assert stats["per_topic"] == {"/remapped/image": len(frames)}
        # 5 frames at 10 fps played at rate 2: 4 gaps of 50 ms
        assert stats["wall_s"] >= 0.19
        out, err = child.communicate(timeout=40)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    got = json.loads(out.strip().splitlines()[-1])
    assert got["n"] == len(frames), (got, err)
    assert got["encoding"] == "rgb8"
    stamps = [s for _, s, _ in _images(bag)]
    assert got["stamps"] == stamps
    assert got["sha"] == [hashlib.sha256(f.tobytes()).hexdigest() for f in frames]
    assert got["span_s"] >= 0.1  # timing honoured on the receiving side too
    assert time.monotonic() - t0 < 60


def test_bags_recorded_before_p_lost_still_read(tmp_path):
    """A bag whose PointTrack definition has no p_lost (recorded before 2026-12-05) reads in the
    current layout: same ids, positions, variance and visibility, p_lost NaN (not estimated)."""
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from gs_tracker_ros.bag.groundtruth import parse_tracks
    from gs_tracker_ros.bag.typestore import LEGACY_POINT_TRACK, TRACK_TYPE, TRACKS_TYPE

    old = get_typestore(Stores.ROS2_KILTED)
    types = get_types_from_msg(LEGACY_POINT_TRACK, TRACK_TYPE)
    types.update(get_types_from_msg("std_msgs/Header header\ngs_tracker_ros/PointTrack[] tracks\n", TRACKS_TYPE))
    old.register(types)
    Header, Time = old.types["std_msgs/msg/Header"], old.types["builtin_interfaces/msg/Time"]
    track = old.types[TRACK_TYPE](id=7, x=1.5, y=2.25, variance=4.0, visible=True, status=1)
    msg = old.types[TRACKS_TYPE](header=Header(stamp=Time(sec=3, nanosec=5), frame_id="cam"), tracks=[track])
    path = tmp_path / "old_bag"
    with Writer(path, version=9) as writer:
        conn = writer.add_connection("/tracks", TRACKS_TYPE, typestore=old)
        writer.write(conn, 3_000_000_005, old.serialize_cdr(msg, TRACKS_TYPE))
    (_, msgtype, _, raw), = list(iter_messages(path))
    got = parse_tracks(raw)
    assert msgtype == TRACKS_TYPE and got.stamp_ns == 3_000_000_005 and got.frame_id == "cam"
    assert got.ids.tolist() == [7] and got.xy.tolist() == [[1.5, 2.25]] and got.variance.tolist() == [4.0]
    assert got.visible.tolist() == [True] and np.isnan(got.p_lost).all()
