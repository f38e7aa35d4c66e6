"""Tests for gs_tracker_ros.core.frames: videos, image folders, arrays and their errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.core.frames import FrameSource, open_frames

W, H, T = 64, 48, 5


def _frames() -> np.ndarray:
    """T distinct RGB frames: each a flat colour whose red channel encodes the index."""
    out = np.zeros((T, H, W, 3), np.uint8)
    for t in range(T):
        out[t, :, :, 0] = 40 * t + 20  # R
        out[t, :, :, 2] = 200  # B
    return out


def _write_video(path: Path, frames: np.ndarray, fps: float = 10.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (W, H))
    assert writer.isOpened()
    for rgb in frames:
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def _write_folder(folder: Path, frames: np.ndarray) -> None:
    folder.mkdir()
    for t, rgb in enumerate(frames):
        # names chosen so that plain string sorting would get the order wrong
        cv2.imwrite(str(folder / f"frame{t * 5}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_video(tmp_path: Path) -> None:
    frames = _frames()
    path = tmp_path / "clip.mp4"
    _write_video(path, frames)
    src = open_frames(path)
    assert isinstance(src, FrameSource)
    assert src.size == (W, H) and src.fps == pytest.approx(10.0) and len(src) == T
    assert src.name == "clip"
    out = list(src)
    assert len(out) == T
    for t, f in enumerate(out):
        assert f.shape == (H, W, 3) and f.dtype == np.uint8
        # lossy codec: compare channel means; RGB order must be right (R varies, B = 200)
        assert abs(f[..., 0].mean() - frames[t, ..., 0].mean()) < 12
        assert abs(f[..., 2].mean() - 200) < 12
    assert len(list(src)) == T  # iterable more than once


def test_video_options(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, _frames())
    src = open_frames(str(path), max_frames=2, resize=(32, 24))
    out = list(src)
    assert len(src) == 2 and len(out) == 2 and src.size == (32, 24)
    assert out[0].shape == (24, 32, 3)


def test_folder(tmp_path: Path) -> None:
    frames = _frames()
    _write_folder(tmp_path / "imgs", frames)
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    src = open_frames(tmp_path / "imgs")
    assert src.name == "imgs" and src.fps is None and len(src) == T and src.size == (W, H)
    out = list(src)
    np.testing.assert_array_equal(np.stack(out), frames)  # PNG is lossless, order is numeric
    assert len(open_frames(tmp_path / "imgs", max_frames=3)) == 3


def test_arrays() -> None:
    frames = _frames()
    src = open_frames(frames)
    assert len(src) == T and src.size == (W, H) and src.fps is None
    np.testing.assert_array_equal(np.stack(list(src)), frames)
    src = open_frames(list(frames), max_frames=2, resize=(W * 2, H * 2))
    out = list(src)
    assert len(out) == 2 and out[0].shape == (H * 2, W * 2, 3) and out[0].dtype == np.uint8


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_frames(tmp_path / "nope.mp4")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(InputError, match="no images"):
        open_frames(tmp_path / "empty")


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"this is not a video")
    with pytest.raises(InputError, match="bad.mp4"):
        open_frames(path)
    txt = tmp_path / "notes.txt"
    txt.write_text("hello")
    with pytest.raises(InputError, match="cannot"):
        open_frames(txt)


def test_video_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    writer.release()  # header only, or nothing at all
    with pytest.raises(InputError, match="no frames|cannot open"):
        open_frames(path)


@pytest.mark.parametrize(
    "array, problem",
    [
        (np.zeros((3, H, W), np.uint8), "shape"),
        (np.zeros((3, H, W, 4), np.uint8), "shape"),
        (np.zeros((3, H, W, 3), np.float32), "uint8"),
        (np.zeros((0, H, W, 3), np.uint8), "empty"),
        ([], "empty"),
        ([np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 1, 3), np.uint8)], "shape"),
        ([np.zeros((H, W, 3), np.uint16)], "uint8"),
        ([np.zeros((H, W), np.uint8)], "shape"),
    ],
)
def test_bad_arrays(array, problem: str) -> None:
    with pytest.raises(InputError, match=problem):
        open_frames(array)


def test_unsupported_type_and_options(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported"):
        open_frames(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="max_frames"):
        open_frames(_frames(), max_frames=0)
    with pytest.raises(InputError, match="resize"):
        open_frames(_frames(), resize=(0, 10))


def test_unreadable_image_in_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs", _frames())
    (tmp_path / "imgs" / "frame7.png").write_bytes(b"garbage, not a png")
    src = open_frames(tmp_path / "imgs")
    with pytest.raises(InputError, match="frame7.png"):
        list(src)


def test_mixed_sizes_in_folder(tmp_path: Path) -> None:
    _write_folder(tmp_path / "imgs", _frames())
    cv2.imwrite(str(tmp_path / "imgs" / "frame99.png"), np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(InputError, match="frame99.png"):
        list(open_frames(tmp_path / "imgs"))
    assert len(list(open_frames(tmp_path / "imgs", resize=(W, H)))) == T + 1
