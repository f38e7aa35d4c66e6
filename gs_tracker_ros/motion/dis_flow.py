"""Dense DIS optical flow (OpenCV) as a motion source, with a forward-backward variance."""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from ..core.clip_buffer import ClipBuffer
from .config import FlowConfig
from ..core.geometry import inside_image
from .base import MotionEstimate, MotionSource

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def sample_bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinearly sample ``field (h, w, C)`` at ``points (N, 2)`` (x, y in that field's pixels).

    Points outside the field are clamped to the border.
    """
    if points.shape[0] == 0:
        return np.zeros((0, field.shape[2]), np.float32)
    mapx = np.ascontiguousarray(points[None, :, 0], dtype=np.float32)
    mapy = np.ascontiguousarray(points[None, :, 1], dtype=np.float32)
    out = cv2.remap(field, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(points.shape[0], -1)


class DISFlowSource(MotionSource):
    """Motion from OpenCV DIS flow computed on downscaled grayscale frames.

    For points p in frame a: ``d = F_ab(p)`` (bilinear), forward-backward error
    ``e = |F_ab(p) + F_ba(p + d)|``, variance ``s2 = sigma0^2 + e^2`` and
    ``valid = e < fb_threshold`` and the landing point inside the image. All returned values are
    in full-resolution pixels. Flow fields are cached per frame pair (a few pairs at a time), so
    all points sharing a pair share one dense computation.
    """

    name = "dis"

    def __init__(self, config: FlowConfig | None = None, cache_pairs: int = 96) -> None:
        self.config = config or FlowConfig()
        self.config.validate()
        self.intervals = tuple(self.config.intervals)
        self._dis = cv2.DISOpticalFlow_create(_PRESETS[self.config.preset])
        self._flows: "OrderedDict[tuple[int, int], np.ndarray]" = OrderedDict()
        self._cache_pairs = cache_pairs

    def reset(self) -> None:
        self._flows.clear()

    def _small_gray(self, buffer: ClipBuffer, index: int) -> np.ndarray:
        scale = self.config.scale
        if scale == 1.0:
            return buffer.gray(index)

        def compute(rgb: np.ndarray) -> np.ndarray:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

        return buffer.cached(index, f"dis_gray_{scale}", compute)

    def flow(self, buffer: ClipBuffer, a: int, b: int) -> np.ndarray:
        """Dense flow ``(h, w, 2)`` from frame a to frame b, in downscaled pixels (cached)."""
        key = (a, b)
        cached = self._flows.get(key)
        if cached is not None:
            self._flows.move_to_end(key)
            return cached
        flow = self._dis.calc(self._small_gray(buffer, a), self._small_gray(buffer, b), None)
        self._flows[key] = flow
        while len(self._flows) > self._cache_pairs:
            self._flows.popitem(last=False)
        return flow

    def on_frame(self, buffer: ClipBuffer, index: int) -> None:
        # Pairs ending or starting at evicted frames can never be asked for again.
        for key in [k for k in self._flows if k[0] not in buffer or k[1] not in buffer]:
            del self._flows[key]

    def estimate(self, buffer: ClipBuffer, a: int, b: int, points: np.ndarray) -> MotionEstimate:
        s = self.config.scale
        pts = np.asarray(points, np.float32)
        small = (pts + 0.5) * s - 0.5
        f_ab = self.flow(buffer, a, b)
        f_ba = self.flow(buffer, b, a)
        d_small = sample_bilinear(f_ab, small)
        back = sample_bilinear(f_ba, small + d_small)
        fb_err = np.linalg.norm(d_small + back, axis=1) / s
        disp = d_small / s
        land = pts + disp
        inside = inside_image(land, buffer.shape)
        variance = self.config.sigma0**2 + fb_err**2
        valid = (fb_err < self.config.fb_threshold) & inside
        return MotionEstimate(disp.astype(np.float32), variance.astype(np.float32), valid, fb_err.astype(np.float32))
