"""Frame inputs: video files, image folders and in-memory arrays behind one iterable.

``open_frames(source)`` checks the source eagerly (it exists, it decodes, its frame size) and
returns a :class:`FrameSource`; iterating it yields RGB ``uint8 (H, W, 3)`` frames lazily, and can
be repeated (each iteration starts from the first frame again). A video that decodes fewer frames
than its container announces (a truncated file) yields what decodes and warns with both numbers
(:class:`~gs_tracker_ros.core.errors.InputWarning`).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Iterator, Sequence, Union

import cv2
import numpy as np

from .errors import InputError, InputWarning

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

FrameInput = Union[str, os.PathLike, np.ndarray, Sequence[np.ndarray]]


def _natural_key(name: str) -> list:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", name)]


def list_images(folder: Path) -> list[Path]:
    """Image files (jpg/jpeg/png/bmp, any case) directly inside ``folder``, in natural order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: _natural_key(p.name))


def read_image_rgb(path: Path) -> np.ndarray:
    """Read one image file as RGB uint8 ``(H, W, 3)``; raise :class:`InputError` naming the file."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # handles non-ASCII paths, unlike imread
    except OSError as err:
        raise InputError(f"cannot read image file {path}: {err}") from None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"cannot decode image file {path} (corrupt or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameSource:
    """Iterable of RGB uint8 frames with a little metadata.

    Attributes:
        name: short name of the source (file stem, folder name or ``"array"``).
        fps: frames per second when the container says so, else ``None``.
        size: ``(W, H)`` in pixels of the frames yielded (after ``resize``).

    ``len()`` is the number of frames when it is known (folders, arrays and videos whose
    container reports a frame count, capped by ``max_frames``); otherwise ``len()`` raises
    ``TypeError``. :attr:`num_frames` gives the same information as ``int | None``.
    """

    def __init__(
        self,
        name: str,
        size: tuple[int, int],
        fps: float | None,
        num_frames: int | None,
        max_frames: int | None,
        resize: tuple[int, int] | None,
    ) -> None:
        self.name = name
        self.size = size
        self.fps = fps
        self.max_frames = max_frames
        self.resize = resize
        if num_frames is not None and max_frames is not None:
            num_frames = min(num_frames, max_frames)
        self.num_frames = num_frames

    def __len__(self) -> int:
        if self.num_frames is None:
            raise TypeError(f"frame count of {self.name!r} is unknown")
        return self.num_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        count = 0
        for frame in self._raw_frames():
            if self.max_frames is not None and count >= self.max_frames:
                return
            yield self._finish(frame)
            count += 1

    def _raw_frames(self) -> Iterator[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, rgb: np.ndarray) -> np.ndarray:
        if self.resize is not None and (rgb.shape[1], rgb.shape[0]) != self.resize:
            w, h = self.resize
            shrink = w < rgb.shape[1] and h < rgb.shape[0]
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return np.ascontiguousarray(rgb)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, size={self.size}, fps={self.fps}, "
            f"num_frames={self.num_frames})"
        )


class VideoFrames(FrameSource):
    """Frames decoded from a video file by ``cv2.VideoCapture`` (re-opened on every iteration)."""

    def __init__(self, path: Path, max_frames: int | None, resize: tuple[int, int] | None) -> None:
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                raise InputError(f"cannot open video file {path}: OpenCV cannot decode it")
            ok, first = cap.read()
            if not ok or first is None:
                raise InputError(f"video file {path} yields no frames (empty or undecodable)")
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        finally:
            cap.release()
        size = resize or (int(first.shape[1]), int(first.shape[0]))
        super().__init__(
            path.stem, size, fps if fps > 0 else None, count if count > 0 else None, max_frames, resize
        )
        self.path = path

    def _raw_frames(self) -> Iterator[np.ndarray]:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise InputError(f"cannot open video file {self.path}")
        decoded = 0
        try:
            while True:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                if bgr.ndim == 2:
                    bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
                decoded += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
        # Reached only when decoding stopped by itself (not when the caller stopped at max_frames).
        if self.num_frames is not None and decoded < self.num_frames:
            warnings.warn(f"video file {self.path}: the container says {self.num_frames} frames but only "
                          f"{decoded} decode (truncated or damaged file); using those {decoded}",
                          InputWarning, stacklevel=2)


class FolderFrames(FrameSource):
    """Frames read from the image files of a folder, in natural (numeric-aware) name order.

    All images must have the size of the first one unless ``resize`` is given.
    """

    def __init__(self, folder: Path, max_frames: int | None, resize: tuple[int, int] | None) -> None:
        files = list_images(folder)
        if not files:
            raise InputError(
                f"folder {folder} contains no images (looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        first = read_image_rgb(files[0])
        self.native_size = (int(first.shape[1]), int(first.shape[0]))
        super().__init__(folder.name, resize or self.native_size, None, len(files), max_frames, resize)
        self.folder = folder
        self.files = files

    def _raw_frames(self) -> Iterator[np.ndarray]:
        for path in self.files:
            rgb = read_image_rgb(path)
            if self.resize is None and (rgb.shape[1], rgb.shape[0]) != self.native_size:
                raise InputError(
                    f"image {path} is {rgb.shape[1]}x{rgb.shape[0]} but the folder's first image is "
                    f"{self.native_size[0]}x{self.native_size[1]}: the images of a folder must all have "
                    "one size (resize them, or move the odd one out)"
                )
            yield rgb


class ArrayFrames(FrameSource):
    """Frames from a ``(T, H, W, 3) uint8`` array or a list of ``(H, W, 3) uint8`` arrays."""

    def __init__(
        self, frames: Sequence[np.ndarray], max_frames: int | None, resize: tuple[int, int] | None
    ) -> None:
        h, w = frames[0].shape[:2]
        super().__init__("array", resize or (int(w), int(h)), None, len(frames), max_frames, resize)
        self.frames = frames

    def _raw_frames(self) -> Iterator[np.ndarray]:
        yield from self.frames


def _check_array_frames(source: np.ndarray | Sequence[np.ndarray]) -> Sequence[np.ndarray]:
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[3] != 3:
            raise InputError(f"frame array must have shape (T, H, W, 3), got {source.shape}")
        if source.dtype != np.uint8:
            raise InputError(f"frame array must be uint8 RGB, got dtype {source.dtype}")
        if source.shape[0] == 0:
            raise InputError("frame array is empty (T = 0)")
        return source
    frames = list(source)
    if not frames:
        raise InputError("frame list is empty")
    shape0 = None
    for i, f in enumerate(frames):
        if not isinstance(f, np.ndarray):
            raise InputError(f"frame {i} of the list is a {type(f).__name__}, not a numpy array")
        if f.ndim != 3 or f.shape[2] != 3:
            raise InputError(f"frame {i} of the list must have shape (H, W, 3), got {f.shape}")
        if f.dtype != np.uint8:
            raise InputError(f"frame {i} of the list must be uint8 RGB, got dtype {f.dtype}")
        if shape0 is None:
            shape0 = f.shape
        elif f.shape != shape0:
            raise InputError(f"frame {i} of the list has shape {f.shape}, frame 0 has {shape0}")
    return frames


def _check_options(max_frames: int | None, resize: tuple[int, int] | None) -> tuple[int | None, tuple[int, int] | None]:
    if max_frames is not None:
        if isinstance(max_frames, bool) or int(max_frames) != max_frames or max_frames < 1:
            raise InputError(f"max_frames must be a positive integer, got {max_frames!r}")
        max_frames = int(max_frames)
    if resize is not None:
        try:
            w, h = (int(v) for v in resize)
        except (TypeError, ValueError):
            raise InputError(f"resize must be (W, H) in pixels, got {resize!r}") from None
        if w < 1 or h < 1:
            raise InputError(f"resize must be positive (W, H), got {resize!r}")
        resize = (w, h)
    return max_frames, resize


def open_frames(
    source: FrameInput | FrameSource,
    max_frames: int | None = None,
    resize: tuple[int, int] | None = None,
) -> FrameSource:
    """Open a video file, an image folder or frame arrays as a :class:`FrameSource`.

    Args:
        source: path to a video file (anything ``cv2.VideoCapture`` decodes), path to a folder
            of ``.jpg/.jpeg/.png/.bmp`` images (natural name order), a ``(T, H, W, 3) uint8``
            RGB array, or a list of ``(H, W, 3) uint8`` RGB arrays. A ``FrameSource`` is
            returned unchanged when no option is given.
        max_frames: yield at most this many frames.
        resize: ``(W, H)`` in pixels to resize every frame to.

    Raises:
        InputError: the path does not exist, the folder has no images, the file cannot be
            decoded or yields no frames, the arrays have an unsupported shape or dtype, or an
            image inside a folder cannot be read (raised while iterating, naming the file).
    """
    max_frames, resize = _check_options(max_frames, resize)
    if isinstance(source, FrameSource):
        if max_frames is None and resize is None:
            return source
        raise InputError("max_frames/resize cannot be applied to an already opened FrameSource")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.exists():
            raise InputError(f"input path does not exist: {path}")
        if path.is_dir():
            return FolderFrames(path, max_frames, resize)
        return VideoFrames(path, max_frames, resize)
    if isinstance(source, (np.ndarray, list, tuple)):
        return ArrayFrames(_check_array_frames(source), max_frames, resize)
    raise InputError(
        f"unsupported frame source of type {type(source).__name__}: expected a video path, an "
        "image folder, a (T, H, W, 3) uint8 array or a list of (H, W, 3) uint8 arrays"
    )
