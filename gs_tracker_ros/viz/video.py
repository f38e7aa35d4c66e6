"""Writing RGB frames to a video file and a PNG contact sheet."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from ..core.errors import InputError, OutputError
from ..core.output import AtomicOutput, check_output, write_bytes
from .overlay import outlined_text

log = logging.getLogger(__name__)


def _check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"video frames must be RGB (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    return frame


class VideoWriter:
    """Context manager writing RGB ``(H, W, 3) uint8`` frames to a video file, whole or not at all.

    Uses the 'mp4v' codec; if OpenCV cannot open that, it warns and falls back to Motion-JPEG in an
    ``.avi`` next to the requested path (see :attr:`path` for the file actually written).
    The frame size is fixed by the first frame (or ``frame_size``); all frames must match it.
    Frames go to a temporary file beside the target (:class:`~gs_tracker_ros.core.output.AtomicOutput`);
    :meth:`close` reopens it, checks that every frame is there (OpenCV's writer reports no write
    errors, so a full disk would otherwise leave a file that does not open) and renames it. Leaving
    the ``with`` block with an exception, or never closing the writer, leaves no file.

    Example::

        with VideoWriter("out/demo.mp4", fps=30) as vw:
            for img in frames:
                vw.write(img)

    Raises:
        InputError: the path is a directory or cannot be written, no codec could be opened, or a
            frame has the wrong type or size.
        OutputError: the finished video is incomplete (e.g. no space left on device).
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0, frame_size: tuple[int, int] | None = None,
                 fourcc: str = "mp4v") -> None:
        if not fps > 0:
            raise InputError(f"video fps must be > 0, got {fps}")
        self.requested_path = check_output(path, "video")
        self.path = self.requested_path  # the file actually written (may become .avi)
        self.fps = float(fps)
        self.fourcc = fourcc
        self.frame_count = 0
        self._size: tuple[int, int] | None = None  # (W, H)
        self._writer: cv2.VideoWriter | None = None
        self._output: AtomicOutput | None = None
        self._closed = False
        if frame_size is not None:
            self._open(int(frame_size[0]), int(frame_size[1]))

    def _start(self, path: Path, fourcc: str, width: int, height: int) -> bool:
        """Open OpenCV's writer on a temporary file for ``path``; False if the codec is unavailable."""
        output = AtomicOutput(path)
        writer = cv2.VideoWriter(str(output.tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height))
        if not writer.isOpened():
            writer.release()
            output.discard()
            return False
        self._writer, self._output, self.path = writer, output, path
        return True

    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        if self._start(self.requested_path, self.fourcc, width, height):
            return
        fallback = self.requested_path.with_suffix(".avi")
        msg = (f"could not open a '{self.fourcc}' video writer for {self.requested_path}; "
               f"writing Motion-JPEG to {fallback} instead")
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        log.warning(msg)
        if not self._start(fallback, "MJPG", width, height):
            raise InputError(f"cannot open a video writer for {self.requested_path} (tried '{self.fourcc}' and MJPG .avi)")

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

    def close(self, keep: bool = True) -> None:
        """Finish the file and move it to :attr:`path` (``keep=False``: remove it); idempotent.

        Raises :class:`OutputError` when the finished file does not hold every frame written."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._closed = True
        output, self._output = self._output, None
        if output is None:
            return
        if not keep:
            output.discard()
            return
        decoded = _frames_in(output.tmp)
        if decoded < self.frame_count:
            output.discard()
            raise OutputError(f"cannot write {self.path}: {_incomplete_cause(self.path)} "
                              f"({decoded} of {self.frame_count} frames readable)")
        output.commit()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        self.close(keep=exc_type is None)

    def __del__(self) -> None:  # never closed: no file (it may be incomplete)
        try:
            self.close(keep=False)
        except Exception:
            pass


def _frames_in(path: Path) -> int:
    """Frames a video file holds by its container (0 when OpenCV cannot open it)."""
    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def _incomplete_cause(path: Path) -> str:
    """Why a video came out incomplete, as far as can be told afterwards (OpenCV reports nothing)."""
    try:
        stats = os.statvfs(path.parent)
        if stats.f_bavail * stats.f_frsize < 1 << 20:
            return "no space left on device"
    except OSError:
        pass
    return "the video encoder could not write every frame (disk full or a file size limit?)"


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


def save_image(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB ``uint8`` image to ``path`` (format from the suffix: .png, .jpg, ...),
    atomically; returns the path."""
    path = Path(path)
    try:
        ok, data = cv2.imencode(path.suffix or ".png", cv2.cvtColor(_check_frame(rgb), cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot write image {path}: OpenCV has no encoder for '{path.suffix}' (use .png or .jpg)")
    return write_bytes(path, data.tobytes())


def save_contact_sheet(frames: Sequence[np.ndarray], path: str | os.PathLike, cols: int = 3,
                       labels: Sequence[str] | None = None, pad: int = 4) -> np.ndarray:
    """Write a PNG grid of RGB frames (see :func:`make_contact_sheet`); returns the sheet (RGB)."""
    path = check_output(path, "contact sheet")
    sheet = make_contact_sheet(frames, cols, labels, pad)
    save_image(path, sheet)
    return sheet


class OverlayOutput:
    """Where the drawn frames of a clip go: a video and/or a contact sheet, both optional.

    ``add(t, img)`` writes frame ``t`` to the video at ``video_path`` and keeps it for the PNG
    sheet at ``sheet_path`` when it is one of ``sheet_frames`` evenly spaced frames of
    ``num_frames`` (the frame index is in each frame's header, so the sheet has no labels).
    Used as a context manager: the video is kept and the sheet written only when the block
    finished without an error (else neither file is left).
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
            self.writer.close(keep=exc_type is None)
        if exc_type is None and self.sheet_path is not None:
            save_contact_sheet(self.shots, self.sheet_path, cols=3 if len(self.shots) > 4 else 2)
