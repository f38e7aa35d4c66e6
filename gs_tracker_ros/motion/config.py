"""Settings of the classical motion sources: dense DIS flow and sparse pyramidal Lucas-Kanade.

Distances in pixels of the input frame. Validation raises :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from ..core.config import check_settings, setting
from ..core.errors import check_range as _check

DisPreset = Literal["ultrafast", "fast", "medium"]
LKBackend = Literal["batched", "opencv"]
DIS_PRESETS = typing.get_args(DisPreset)
LK_BACKENDS = typing.get_args(LKBackend)
BackwardCheck = Literal["all", "doubt"]


@dataclass
class FlowConfig:
    """Dense DIS optical flow (OpenCV) with a forward-backward consistency check.

    Attributes:
        preset: DIS preset, one of ``ultrafast``, ``fast``, ``medium`` (slower, more accurate).
            Default ``medium``: the best single flow chain measured on real footage.
        scale: flow is computed on frames resized by this factor (0 < scale <= 1) for speed;
            displacements are returned in full-resolution pixels. Default 1 (full resolution).
        sigma0: base standard deviation of a flow estimate in px (``s2 = sigma0^2 + e_fb^2``).
        fb_threshold: a chain is invalid when the forward-backward error exceeds this (px).
        intervals: the chain intervals the ``dis`` source is used for when it is fused with others
            (a dense field in both directions per frame pair is costly: default the
            frame-to-frame chain only).
    """

    preset: DisPreset = "medium"
    scale: float = setting(1.0, range=(0.05, 1.0))
    sigma0: float = setting(0.5, range=(0.0, 50.0), low_open=True, runtime=True, unit="px")
    fb_threshold: float = setting(2.0, range=(0.0, 1000.0), low_open=True, runtime=True, unit="px")
    intervals: tuple[int, ...] = (1,)

    def validate(self) -> None:
        check_settings(self, "flow.")
        _check(len(self.intervals) >= 1 and all(1 <= int(k) <= 256 for k in self.intervals), "flow.intervals",
               self.intervals, "non-empty, each in [1, 256]")


@dataclass
class LKConfig:
    """Sparse pyramidal Lucas-Kanade at the point positions, forward-backward checked.

    Attributes:
        window: LK window side in px (odd).
        levels: pyramid levels above the full-resolution image (3, as the klt baseline and
            OpenCV's samples: 5 levels scored lower on both badja_dev videos).
        max_iterations: LK iterations per pyramid level (stops earlier at ``epsilon`` px updates).
        epsilon: LK stops iterating on a level once an update is smaller than this (px).
        min_eig_threshold: OpenCV's minimum-eigenvalue test (the window's smaller structure-tensor
            eigenvalue divided by its pixel count): windows below it fail. Default 1e-5, a tenth of
            OpenCV's 1e-4: smooth regions (sky, blurred road) are then still followed, the
            forward-backward check and the chain filter judging the result; better on the cycle
            check and the generated scenes, badja_dev unchanged (docs/accuracy.md).
        sigma0: base standard deviation of an LK estimate in px.
        fb_threshold: a chain is invalid when the forward-backward error exceeds this (px).
        backend: ``batched`` (default): the project's LK kernel (native/, built by ``make setup``),
            pyramids built once per frame and all chains of a frame in one multi-threaded call;
            ``opencv``: ``cv2.calcOpticalFlowPyrLK`` per chain and direction, the reference. The tracks are the same to the bit (docs/performance.md); where the kernel
            is not built, ``batched`` runs OpenCV (with one warning). The ``klt`` baseline always
            runs OpenCV.
        threads: threads of the batched kernel (0: one per CPU core this process may use).
        backward_check: ``all`` (default): every chain is checked by LK back to its start, its
            variance ``sigma0^2 + e^2`` from that residual ``e``; ``doubt``: only the chains of a
            point whose forward landings (all its chains of the frame) do not agree within
            ``doubt_px`` of their mean, or that has a single chain; an agreeing chain takes its
            distance to that mean as ``e`` (issue 28; the backward passes it skips: about half on the
            generated bench scene, about 30 % on real footage, davis_unlabeled).
        doubt_px: with ``backward_check: doubt``, how far a chain's landing may lie from the mean
            landing of the point's chains before they are checked backwards (px; 0.5, as measured).
        doubt_residual: with ``backward_check: doubt``, the chains of a point are also checked
            backwards when one of its forward passes ends on a window that differs from its start
            window by more than this mean absolute grey-level difference (OpenCV's LK error): chains
            that agree on a changed window (an occluder, a reflection) are not trusted unchecked.
            255: off. Default 8, chosen on the accuracy protocols (docs/performance.md): with it
            the option no longer lowers davis_masks (mask-stay -0.9 -> -0.2 against checking all).
    """

    window: int = setting(21, range=(3, 101))
    levels: int = setting(3, range=(0, 6))
    max_iterations: int = setting(20, range=(1, 100))
    epsilon: float = setting(0.03, range=(0.0, 1.0), low_open=True, unit="px")
    min_eig_threshold: float = setting(1.0e-5, range=(0.0, 1.0))
    sigma0: float = setting(0.5, range=(0.0, 50.0), low_open=True, runtime=True, unit="px")
    fb_threshold: float = setting(16.0, range=(0.0, 1000.0), low_open=True, runtime=True, unit="px")
    backend: LKBackend = "batched"
    threads: int = setting(0, range=(0, 256), note="0: one per core")
    backward_check: BackwardCheck = "all"
    doubt_px: float = setting(0.5, range=(0.0, 100.0), unit="px")
    doubt_residual: float = setting(8.0, range=(0.0, 255.0), unit="grey levels", note="255: off")

    def validate(self, section: str = "lk") -> None:
        """Raise :class:`ConfigError` naming ``section.field`` for a value out of range."""
        p = section + "."
        check_settings(self, p)
        _check(self.window % 2 == 1, p + "window", self.window, "odd, in [3, 101]")


def klt_baseline_lk() -> LKConfig:
    """LK settings of the ``klt`` baseline, as OpenCV's own samples and most users run it:
    21 px window, 3 pyramid levels, 30 iterations / 0.01 px, OpenCV's minimum-eigenvalue
    threshold (1e-4), and the customary 1 px
    forward-backward check (a point failing it is reported occluded for that frame only); OpenCV's
    own LK (``backend`` opencv: the baseline is what OpenCV users get)."""
    return LKConfig(window=21, levels=3, max_iterations=30, epsilon=0.01, min_eig_threshold=1.0e-4,
                    fb_threshold=1.0, backend="opencv")
