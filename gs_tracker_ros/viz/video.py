"""Writing RGB frames to a video file and a PNG contact sheet."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..core.errors import InputError
from .overlay import outlined_text

log = logging.getLogger(__name__)


def _prepare_parent(path: Path) -> None:
    """Create the parent folder of ``path`` and check that a file can be written there."""
    if path.is_dir():
        raise InputError(f"output path {path} is a directory, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output folder {path.parent}: {err.strerror or err}") from err
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise InputError(f"output folder {path.parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"output file {path} exists and is not writable")


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"video frames must be RGB (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    return frame


class VideoWriter:
    """Context manager writing RGB ``(H, W, 3) uint8`` frames to a video file.

    Uses the 'mp4v' codec; if OpenCV cannot open that, it warns and falls back to Motion-JPEG in an
    ``.avi`` next to the requested path (see :attr:`path` for the file actually written).
    The frame size is fixed by the first frame (or ``frame_size``); all frames must match it.

    Example::

        with VideoWriter("out/demo.mp4", fps=30) as vw:
            for img in frames:
                vw.write(img)

    Raises:
        InputError: the path is a directory or cannot be written, no codec could be opened, or a
            frame has the wrong type or size.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, frame_size: tuple[int, int] | None = None,
                 fourcc: str = "mp4v") -> None:
        if not fps > 0:
            raise InputError(f"video fps must be > 0, got {fps}")
        self.requested_path = Path(path)
        self.path = self.requested_path  # the file actually written (may become .avi)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.frame_count = 0
        self._size: tuple[int, int] | None = None  # (W, H)
        self._writer: cv2.VideoWriter | None = None
        self._closed = False
        _prepare_parent(self.requested_path)
        if frame_size is not None:
            self._open(int(frame_size[0]), int(frame_size[1]))

    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        writer = cv2.VideoWriter(str(self.requested_path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
        if writer.isOpened():
            self._writer = writer
            return
        writer.release()
        fallback = self.requested_path.with_suffix(".avi")
        msg = (f"could not open a '{self.fourcc}' video writer for {self.requested_path}; "
               f"writing Motion-JPEG to {fallback} instead")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)
        writer = cv2.VideoWriter(str(fallback), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, (width, height))
        if not writer.isOpened():
            writer.release()
            raise InputError(f"cannot open a video writer for {self.requested_path} (tried '{self.fourcc}' and MJPG .avi)")
        self._writer = writer
        self.path = fallback

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB frame."""
        if self._closed:
            raise InputError(f"video {self.path} is already closed")
        frame = _check_frame(frame)
        h, w = frame.shape[:2]
        if self._writer is None:
            self._open(w, h)
        if (w, h) != self._size:
            raise InputError(f"frame size {w}x{h} differs from the video's {self._size[0]}x{self._size[1]}")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frame_count += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._closed = True

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort if the user forgot close()
        try:
            self.close()
        except Exception:
            pass


def make_contact_sheet(frames: Sequence[np.ndarray], cols: int = 3, labels: Sequence[str] | None = None,
                       pad: int = 4, background: tuple[int, int, int] = (24, 24, 24)) -> np.ndarray:
    """Arrange RGB frames in a grid (row-major) and return it as RGB ``uint8``.

    Frames of different sizes are placed in cells of the largest size; ``labels`` (one per frame)
    are written in each cell's top-left corner; ``pad`` px separate the cells.
    """
    if len(frames) == 0:
        raise InputError("contact sheet needs at least one frame")
    if cols < 1:
        raise InputError(f"contact sheet cols must be >= 1, got {cols}")
    if labels is not None and len(labels) != len(frames):
        raise InputError(f"{len(labels)} labels for {len(frames)} frames")
    imgs = [_check_frame(f) for f in frames]
    ch = max(f.shape[0] for f in imgs)
    cw = max(f.shape[1] for f in imgs)
    cols = min(cols, len(imgs))
    rows = (len(imgs) + cols - 1) // cols
    sheet = np.empty((rows * ch + (rows + 1) * pad, cols * cw + (cols + 1) * pad, 3), np.uint8)
    sheet[...] = background
    for k, img in enumerate(imgs):
        r, c = divmod(k, cols)
        y = pad + r * (ch + pad)
        x = pad + c * (cw + pad)
        sheet[y : y + img.shape[0], x : x + img.shape[1]] = img
        if labels is not None and labels[k]:
            org = (x + 6, y + img.shape[0] - 8)
            outlined_text(sheet, labels[k], org, 0.5, (255, 255, 255))
    return sheet


def save_contact_sheet(frames: Sequence[np.ndarray], path: str | os.PathLike, cols: int = 3,
                       labels: Sequence[str] | None = None, pad: int = 4) -> np.ndarray:
    """Write a PNG grid of RGB frames (see :func:`make_contact_sheet`); returns the sheet (RGB)."""
    path = Path(path)
    _prepare_parent(path)
    sheet = make_contact_sheet(frames, cols, labels, pad)
    try:
        ok = cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"could not write image {path} (is the extension .png?)")
    return sheet


class OverlayOutput:
    """Where the drawn frames of a clip go: a video and/or a contact sheet, both optional.

    ``add(t, img)`` writes frame ``t`` to the video at ``video_path`` and keeps it for the PNG
    sheet at ``sheet_path`` when it is one of ``sheet_frames`` evenly spaced frames of
    ``num_frames`` (the frame index is in each frame's header, so the sheet has no labels).
    Used as a context manager: the video is closed either way, the sheet written only when the
    block finished without an error.
    """

    def __init__(self, video_path: str | os.PathLike | None, sheet_path: str | os.PathLike | None,
                 num_frames: int, sheet_frames: int = 6, fps: float = 30.0) -> None:
        self.writer = VideoWriter(video_path, fps=fps) if video_path is not None else None
        self.sheet_path = sheet_path
        self.pick = set(np.linspace(0, num_frames - 1, min(sheet_frames, num_frames)).round().astype(int).tolist())
        self.shots: list[np.ndarray] = []

    @property
    def video_path(self) -> Path | None:
        return self.writer.path if self.writer is not None else None

    def add(self, t: int, img: np.ndarray) -> None:
        if self.writer is not None:
            self.writer.write(img)
        if self.sheet_path is not None and t in self.pick:
            self.shots.append(img)

    def __enter__(self) -> "OverlayOutput":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
        if exc_type is None and self.sheet_path is not None:
            save_contact_sheet(self.shots, self.sheet_path, cols=3 if len(self.shots) > 4 else 2)
