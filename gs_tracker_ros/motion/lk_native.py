"""The batched LK kernel (native/lk_batched.cpp, built by ``make setup``): forward and backward
pyramidal Lucas-Kanade for all points of many frame pairs in one call, on several threads.

It reproduces OpenCV's ``calcOpticalFlowPyrLK`` bit for bit (the same fixed-point sampling, float
sums in the same order, iterations, stopping rules and failure tests) on pyramids built once per
frame (:mod:`~gs_tracker_ros.motion.lk_pyramid`) instead of twice per call, and skips the
backward pass of a point whose forward pass failed (its result is unused). The call releases the
GIL.

The library is ``gs_tracker_ros/motion/libgs_lk.so`` (``GS_TRACKER_LK_LIBRARY`` overrides the
path); :func:`load_library` returns None where it is missing, and the LK source then runs OpenCV.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .lk_pyramid import LEVEL_DTYPE, FramePyramid

LIBRARY_NAME = "libgs_lk.so"
INTERFACE_VERSION = 2  # gs_lk_version() of a library this module can call


def library_path() -> Path:
    """Where the kernel library is looked for."""
    env = os.environ.get("GS_TRACKER_LK_LIBRARY")
    return Path(env) if env else Path(__file__).resolve().parent / LIBRARY_NAME


@lru_cache(maxsize=1)
def load_library() -> ctypes.CDLL | None:
    """The loaded kernel library, or None when it is not built (or of another interface version)."""
    path = library_path()
    if not path.is_file():
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    lib.gs_lk_version.restype = ctypes.c_int
    if lib.gs_lk_version() != INTERFACE_VERSION:
        return None
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.gs_lk_forward_backward.restype = ctypes.c_int
    lib.gs_lk_forward_backward.argtypes = [p, i, p, p, p, i, i, i, ctypes.c_double, ctypes.c_float, i, i, i,
                                           p, p, p, p, p]
    return lib


def default_threads() -> int:
    """Threads for the kernel when none is configured: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class LKSettings:
    """The LK iteration settings (as ``calcOpticalFlowPyrLK`` takes them).

    Attributes:
        window: window side, px (odd).
        max_iterations: iterations per pyramid level.
        epsilon: a level stops once a step is at most this long (px).
        min_eig_threshold: minimum structure-tensor eigenvalue per window pixel.
    """

    window: int
    max_iterations: int
    epsilon: float
    min_eig_threshold: float


@dataclass(frozen=True)
class LKPasses:
    """Raw forward and backward LK passes of N points (as OpenCV's two calls return them).

    Attributes:
        forward: ``(N, 2) float32`` px, the forward position in image b.
        forward_ok: ``(N,) bool`` the forward pass succeeded.
        forward_residual: ``(N,) float32`` grey levels, the mean absolute difference between the
            21 x 21 (``window``) level-0 windows at the start and at the forward position (OpenCV's
            LK error measure); ``inf`` where the forward pass failed; None where not asked for.
        backward: ``(N, 2) float32`` px, the backward position in image a (the start point where
            the backward pass did not run: it is skipped where the forward pass failed).
        backward_ok: ``(N,) bool`` the backward pass ran and succeeded.
    """

    forward: np.ndarray
    forward_ok: np.ndarray
    forward_residual: np.ndarray | None
    backward: np.ndarray
    backward_ok: np.ndarray


def forward_backward_many(pairs: Sequence[tuple[FramePyramid, FramePyramid, np.ndarray]], settings: LKSettings,
                          threads: int, backward: bool = True, simd: bool = True,
                          residual: bool = False) -> list[LKPasses]:
    """LK from pyramid a to pyramid b (and back, with ``backward``) for the points ``(N_i, 2)`` px
    of every pair ``(a, b, points)``, all in one kernel call on ``threads`` threads (``simd``
    False: the plain loops even where AVX2 is there, the same results); with ``residual`` also
    the forward passes' window residuals (an extra sampling of both windows per point).

    Every pyramid must have the same shape and window (one camera). Raises RuntimeError when the
    library is not built.
    """
    lib = load_library()
    if lib is None:
        raise RuntimeError(f"the batched LK kernel is not built ({library_path()} missing): run `make setup`")
    counts = [int(np.shape(p)[0]) for _, _, p in pairs]
    n = sum(counts)
    if n == 0:
        return [_empty_passes(residual) for _ in pairs]
    frames: dict[int, int] = {}
    tables = []
    index_a, index_b = [], []
    for (pa, pb, _), count in zip(pairs, counts):
        ids = []
        for pyr in (pa, pb):
            if id(pyr) not in frames:
                frames[id(pyr)] = len(tables)
                tables.append(pyr.levels)
            ids.append(frames[id(pyr)])
        index_a.append(np.full(count, ids[0], np.int32))
        index_b.append(np.full(count, ids[1], np.int32))
    num_levels = {t.shape[0] for t in tables}
    if len(num_levels) != 1:
        raise ValueError(f"pyramids of different sizes in one batch: {sorted(num_levels)} levels")
    levels = np.ascontiguousarray(np.stack(tables), LEVEL_DTYPE)
    fa = np.concatenate(index_a)
    fb = np.concatenate(index_b)
    pts = np.ascontiguousarray(np.concatenate([np.asarray(p, np.float32).reshape(-1, 2) for _, _, p in pairs]))
    landing = np.empty((n, 2), np.float32)
    back = np.empty((n, 2), np.float32)
    ok_f = np.empty(n, np.uint8)
    res = np.empty(n, np.float32) if residual else None
    ok_b = np.empty(n, np.uint8)
    rc = lib.gs_lk_forward_backward(
        levels.ctypes.data, levels.shape[1], fa.ctypes.data, fb.ctypes.data, pts.ctypes.data, n,
        int(settings.window), int(settings.max_iterations), float(settings.epsilon),
        float(settings.min_eig_threshold), int(backward), max(1, int(threads)), int(simd),
        landing.ctypes.data, ok_f.ctypes.data, None if res is None else res.ctypes.data, back.ctypes.data,
        ok_b.ctypes.data)
    if rc != 0:
        raise ValueError(f"gs_lk_forward_backward rejected its arguments (window {settings.window}, {n} points)")
    out = []
    start = 0
    for count in counts:
        sl = slice(start, start + count)
        out.append(LKPasses(landing[sl], ok_f[sl].astype(bool), None if res is None else res[sl], back[sl],
                            ok_b[sl].astype(bool)))
        start += count
    return out


def _empty_passes(residual: bool) -> LKPasses:
    z2, z = np.zeros((0, 2), np.float32), np.zeros(0, bool)
    return LKPasses(z2, z, np.zeros(0, np.float32) if residual else None, z2, z)
