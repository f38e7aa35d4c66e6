"""Bounded rolling buffer of recent frames (the "clip"), plus frames pinned by live queries."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import cv2
import numpy as np

from .errors import InputError


class ClipBuffer:
    """Keeps the last ``capacity`` frames and any frames explicitly pinned (query frames).

    Frames are addressed by their absolute index (0, 1, 2, ... in arrival order). Each entry
    holds the RGB frame and a small per-frame cache that motion sources fill lazily (grayscale,
    downscaled images, features); it is dropped with the frame, so memory stays bounded by
    ``capacity + len(pinned)`` frames.
    """

    def __init__(self, capacity: int = 33) -> None:
        if capacity < 2:
            raise InputError(f"ClipBuffer capacity must be >= 2, got {capacity}")
        self.capacity = int(capacity)
        self._frames: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self._cache: dict[int, dict[str, Any]] = {}
        self._pins: dict[int, int] = {}  # frame index -> pin count
        self._latest = -1
        self.shape: tuple[int, int] | None = None  # (H, W)

    # ------------------------------------------------------------------ frames
    def push(self, frame: np.ndarray) -> int:
        """Append a frame (RGB uint8 HxWx3); returns its absolute index."""
        frame = validate_frame(frame)
        hw = frame.shape[:2]
        if self.shape is not None and hw != self.shape:
            raise InputError(
                f"frame size changed from {self.shape[1]}x{self.shape[0]} to {hw[1]}x{hw[0]}; "
                "reset the tracker before changing resolution"
            )
        self.shape = hw
        self._latest += 1
        self._frames[self._latest] = frame
        self._cache[self._latest] = {}
        self._evict()
        return self._latest

    def _evict(self) -> None:
        oldest_kept = self._latest - self.capacity + 1
        for idx in list(self._frames.keys()):
            if idx >= oldest_kept:
                break
            if self._pins.get(idx, 0) > 0:
                continue
            del self._frames[idx]
            del self._cache[idx]

    @property
    def latest(self) -> int:
        """Index of the newest frame, -1 when empty."""
        return self._latest

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, index: int) -> np.ndarray:
        try:
            return self._frames[index]
        except KeyError:
            raise KeyError(f"frame {index} is no longer buffered") from None

    def cached(self, index: int, key: str, compute: Callable[[np.ndarray], Any]) -> Any:
        """Per-frame cache: ``compute(rgb)`` runs once per (frame, key)."""
        cache = self._cache[index]
        if key not in cache:
            cache[key] = compute(self.frame(index))
        return cache[key]

    def gray(self, index: int) -> np.ndarray:
        """Grayscale uint8 version of a buffered frame (cached)."""
        return self.cached(index, "gray", lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))

    # ------------------------------------------------------------------ pins
    def pin(self, index: int) -> None:
        """Keep frame ``index`` past the rolling window (e.g. a query frame)."""
        if index not in self._frames:
            raise KeyError(f"cannot pin frame {index}: not buffered")
        self._pins[index] = self._pins.get(index, 0) + 1

    def unpin(self, index: int) -> None:
        n = self._pins.get(index, 0) - 1
        if n <= 0:
            self._pins.pop(index, None)
            self._evict()
        else:
            self._pins[index] = n

    def clear(self) -> None:
        self._frames.clear()
        self._cache.clear()
        self._pins.clear()
        self._latest = -1
        self.shape = None


def validate_frame(frame: np.ndarray) -> np.ndarray:
    """Return ``frame`` as a contiguous RGB uint8 (H, W, 3) array or raise ``InputError``.

    Grayscale (H, W) or (H, W, 1) frames are expanded to three channels.
    """
    if not isinstance(frame, np.ndarray):
        raise InputError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InputError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"frame must be HxWx3 RGB (or HxW gray), got shape {frame.shape}")
    if frame.shape[0] < 16 or frame.shape[1] < 16:
        raise InputError(f"frame too small: {frame.shape[1]}x{frame.shape[0]} (minimum 16x16)")
    return np.ascontiguousarray(frame)
