"""Configuration of long-term re-localisation: descriptors, keypoint observer, feature filter.

All distances are in pixels of the input frame, variances in px^2, similarities are cosine
similarities in [-1, 1]. These dataclasses are nested under ``TrackerConfig.relocalize`` (keys
such as ``relocalize.keypoints.threshold``).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, field
from typing import Literal

from ..core.config import check_settings, setting
from ..core.errors import check_range as _check

DescriptorChannels = Literal["gray", "lab"]
AlikedModel = Literal["aliked-t16", "aliked-n16", "aliked-n32"]
LearnedBackend = Literal["torch", "onnxruntime"]
DESCRIPTOR_CHANNELS = typing.get_args(DescriptorChannels)


@dataclass
class DescriptorConfig:
    """Classical multi-scale patch descriptor (no learned weights).

    A point's descriptor stacks one ``patch_size`` x ``patch_size`` patch per pyramid level in
    ``levels`` (level l = the frame blurred and downsampled by 2^l, so the patch covers
    ``patch_size * 2^l`` px); each patch is made zero-mean per channel and unit-norm, and the
    patches are concatenated and scaled to unit norm. The cosine similarity of two descriptors is
    then the mean over levels of the patches' normalised cross-correlation. Levels whose query
    patch has a standard deviation below ``min_contrast`` (grey levels) carry no information and
    are left out of that query's similarity.

    Attributes:
        patch_size: taps per patch side (odd).
        levels: pyramid levels used, ascending (0 = full resolution).
        channels: ``lab`` (CIE L*a*b*, L scaled to 0..255; default: colour texture is evidence the
            grey-level flow did not optimise, so it catches chains that locked onto a look-alike)
            or ``gray`` (intensity only).
        min_contrast: minimum patch standard deviation in grey levels for a level to count.
    """

    patch_size: int = setting(7, range=(3, 31), note="odd")
    levels: tuple[int, ...] = (0, 1, 2)
    channels: DescriptorChannels = "lab"
    min_contrast: float = setting(2.0, range=(0.0, 100.0), unit="grey levels")

    def validate(self) -> None:
        check_settings(self, "relocalize.descriptor.")
        _check(self.patch_size % 2 == 1, "relocalize.descriptor.patch_size", self.patch_size, "odd, in [3, 31]")
        levels = tuple(int(v) for v in self.levels)
        _check(len(levels) >= 1 and all(0 <= v <= 5 for v in levels) and len(set(levels)) == len(levels),
               "relocalize.descriptor.levels", self.levels, "1 to 6 distinct levels, each in [0, 5]")
        self.levels = tuple(sorted(levels))


@dataclass
class KeypointConfig:
    """Long-term keypoint observations (DESIGN step 5, ProTracker sec. 3.3).

    The query descriptor is matched against the current frame in a window around the point:
    centred on the median landing point of its valid chains (radius ``search_px``), or, for a
    point without any valid chain, on its last position with a radius growing by ``growth_px``
    per occluded frame up to ``max_search_px``. Windows wider than ``2 * 2^coarse_level`` px are
    first searched on pyramid level ``coarse_level``; its ``coarse_candidates`` best separated
    peaks are refined at full resolution and the winner is kept only if it beats the runner-up by
    ``uniqueness_margin`` (a repeated texture is no re-localisation). The sub-pixel position is
    the soft-argmax of the similarity map within ``softargmax_radius`` px of its peak, weights
    ``exp((s - s_peak) / softargmax_temperature)``; the confidence is the descriptor cosine
    similarity there.

    A match next to valid chains is fused with them (product of Gaussians, within the tracker's
    10 px gate) when its similarity exceeds ``threshold``; a point without a valid chain is
    re-localised at the match alone when it exceeds ``refind_threshold``. The variance is
    ``variance`` px^2, optionally scaled by the confidence.

    Defaults (see docs/ablation.md): re-localisation on (``visible_every = 0``: points that
    still have valid chains are not matched, because fusing classical keypoints into chain-tracked
    points cost ~3 delta_seg points on badja_dev and gained nothing on generated scenes);
    ``refind_threshold = 0.9`` because wrong re-localisations of classical descriptors reach
    similarities of 0.85-0.88 on both badja_dev and generated scenes (the paper's 0.7 is for
    learned DINO features, whose similarity scale differs).

    Attributes:
        enabled: use keypoint observations at all (False = "w/o keypoints" ablation).
        threshold: minimum cosine similarity of a keypoint fused with valid chains (paper: 0.7).
        refind_threshold: minimum similarity of a keypoint for a point without any valid chain,
            which is taken alone instead of being gated by chains; the larger of this and
            ``threshold`` applies.
        variance: keypoint variance in px^2 for a perfect match (paper: sigma_kp ~ 3 px).
        confidence_scaled_variance: divide the variance by ``(sim - thr) / (1 - thr)`` (thr = the
            threshold that applied, capped at 1), so a match barely above the threshold weighs
            little.
        search_px: search radius around the chains of a point that has valid chains.
        growth_px: radius growth per frame a point has been occluded.
        max_search_px: radius cap while occluded (320 px covers most of a 854x480 frame).
        coarse_level: pyramid level of the wide search (its patch covers ``patch_size * 2^l`` px).
        coarse_candidates: separated peaks of the wide search scored with the full descriptor (the
            best two are refined at full resolution).
        uniqueness_margin: the refined winner must exceed the runner-up by this much.
        softargmax_radius: half-width in px of the soft-argmax window around the peak.
        softargmax_temperature: soft-argmax temperature in similarity units.
        visible_every: a point with valid chains is matched every this many frames (ids are
            spread over the frames, so the cost per frame is flat) and the match is fused with
            its chains; 0 = never (keypoints only re-localise points without a valid chain).
            Points without a valid chain are searched every frame.
        max_searches_per_frame: at most this many points are searched per frame (occluded
            points first, taking turns); 0 = unlimited. Bounds the worst-case latency.
    """

    enabled: bool = True
    threshold: float = setting(0.7, range=(-1.0, 1.0), high_open=True)
    refind_threshold: float = setting(0.9, range=(-1.0, 1.0), high_open=True)
    variance: float = setting(9.0, range=(0.0, 1e4), low_open=True, unit="px^2")
    confidence_scaled_variance: bool = True
    search_px: float = setting(8.0, range=(1.0, 256.0), unit="px")
    growth_px: float = setting(8.0, range=(0.0, 256.0), unit="px")
    max_search_px: float = setting(320.0, range=(1.0, 1024.0), unit="px", note=">= search_px")
    coarse_level: int = setting(2, range=(0, 5))
    coarse_candidates: int = setting(4, range=(1, 16))
    uniqueness_margin: float = setting(0.05, range=(0.0, 1.0))
    softargmax_radius: int = setting(2, range=(1, 8), unit="px")
    softargmax_temperature: float = setting(0.02, range=(0.0, 1.0), low_open=True)
    visible_every: int = setting(0, range=(0, 64), unit="frames",
                                 note="0 = only points without a valid chain are searched")
    max_searches_per_frame: int = setting(8, range=(0, 100_000), note="0 = unlimited")

    def validate(self) -> None:
        check_settings(self, "relocalize.keypoints.")
        _check(self.search_px <= self.max_search_px, "relocalize.keypoints.max_search_px", self.max_search_px,
               f">= relocalize.keypoints.search_px ({self.search_px:g})")


@dataclass
class FeatureFilterConfig:
    """Feature-similarity filter on flow chains (DESIGN step 2, ProTracker sec. 3.1 / appendix).

    A valid chain whose landing point's descriptor has a cosine similarity to the query's
    descriptor below ``threshold`` is dropped; a point that was occluded on the previous frame
    is only brought back by a chain whose similarity reaches ``revive_threshold`` (hysteresis:
    a chain from an old state landing on something vaguely similar must not revive a hidden
    point). Queries without any informative descriptor level are never filtered.

    Defaults (see docs/ablation.md): the paper uses 0.3 for flow chains with learned features.
    With classical patch descriptors on real footage (badja_dev) the ground-truth position of a
    joint has a median similarity of only ~0.3 to its query, so 0.3 as the per-chain threshold
    drops half of the correct chains; we keep the paper's 0.3 for reviving a point and use 0.1
    to keep following one (badja_dev is flat for thresholds 0.0-0.2 and falls off above 0.3).
    ``threshold = 0.3, revive_threshold = 0.7`` (the paper's flow and keypoint values) is the
    strict profile: much better occlusion flags on sharp textures (generated scenes), worse on
    badja_dev.

    Appearance refresh: a point's look changes while it is tracked (a leg turns, the light
    changes), so after a while the correct chain lands on something unlike the query patch and is
    dropped. Every ``refresh_every`` frames the descriptor of each point tracked with confidence
    (visible on this frame and the previous one, at least ``refresh_min_chains`` valid chains
    after the filter) is taken at its fused position and kept as its *refreshed* descriptor,
    provided it is still similar to the query (``refresh_threshold``: a point that drifted onto
    the background does not rewrite its appearance). A chain's similarity is then the larger of
    its similarity to the query and to the refreshed descriptor. Chosen on the whole protocol
    (docs/accuracy.md): better on both badja_dev videos on every score and on the cycle check,
    over a plateau of settings (every 4-16 frames, gates 0.2-0.5); refreshing on every frame or
    every 2nd lets the template drift and is mixed. Its cost: on generated scenes (rigid
    textures, where the query patch stays valid) a patch refreshed a little off the true position
    lets later chains follow that drift (AJ ~1.6 lower there, occlusion accuracy unchanged).

    Attributes:
        enabled: apply the filter (False = "w/o feature filter" ablation).
        threshold: minimum cosine similarity of a chain's landing point to the query.
        revive_threshold: minimum similarity of a chain that brings back a point which was
            occluded on the previous frame (the larger of the two thresholds applies).
        refresh_every: frames between appearance refreshes (0 = compare with the query only).
        refresh_threshold: minimum similarity to the query of a refreshed descriptor.
        refresh_min_chains: valid chains (after the filter) a point needs on the frame to be
            refreshed.
    """

    enabled: bool = True
    threshold: float = setting(0.1, range=(-1.0, 1.0), high_open=True)
    revive_threshold: float = setting(0.3, range=(-1.0, 1.0), high_open=True)
    refresh_every: int = setting(8, range=(0, 10_000), unit="frames", note="0 = off")
    refresh_threshold: float = setting(0.3, range=(-1.0, 1.0))
    refresh_min_chains: int = setting(2, range=(1, 64))

    def validate(self) -> None:
        check_settings(self, "relocalize.filter.")


@dataclass
class LearnedMatchConfig:
    """Learned dense descriptors (ALIKED) matched in a window: an absolute observation per point.

    Every ``relocalize.every``-th frame a dense ALIKED descriptor map of the frame is computed at
    ``scale`` times the frame size; each point's query descriptor (sampled on its query frame) is
    compared by cosine similarity with every map pixel within ``search_px`` frame px of its
    previous position (``refind_search_px`` for a point that was occluded on the previous frame).
    The peak, refined to sub-pixel by a parabola through its neighbours, is an observation of
    variance ``variance`` px^2 when its similarity exceeds ``threshold`` (a point with valid
    chains fuses it within the tracker's 10 px gate; a point without takes it alone: re-found).

    Measured outside the repository on held-out real video, ALIKED matched this way was the best
    single component (and weak on fast motion, which the flow chains cover); its similarity is
    ~0.9 for visible and occluded points alike, so thresholds near 0.7 accept everything: 0.9.

    Attributes:
        enabled: use learned matches (replaces the classical keypoint observer).
        model_name: ``aliked-t16`` (64-d, faster) or ``aliked-n16`` (128-d).
        scale: the descriptor network runs on the frame resized by this factor.
        backend: ``torch`` or ``onnxruntime``.
        threads: intra-op threads of the descriptor network (0 = library default).
        threshold: minimum cosine similarity of a match.
        variance: px^2 of a match.
        search_px: window half-size in frame px around a visible point's previous position.
        refind_search_px: the same for a point that was occluded on the previous frame.
        filter_threshold: step 2 with the same descriptors: a valid chain whose landing point's
            similarity to the query is below this is dropped (-1 = off).
    """

    enabled: bool = False
    model_name: AlikedModel = "aliked-n16"
    scale: float = setting(0.5, range=(0.05, 1.0))
    backend: LearnedBackend = "torch"
    threads: int = setting(0, range=(0, 64), note="0 = the library's default")
    threshold: float = setting(0.9, range=(-1.0, 1.0), high_open=True)
    variance: float = setting(1.0, range=(0.0, 1e4), low_open=True, unit="px^2")
    search_px: float = setting(24.0, range=(1.0, 256.0), unit="px")
    refind_search_px: float = setting(64.0, range=(1.0, 512.0), unit="px", note=">= search_px")
    filter_threshold: float = setting(-1.0, range=(-1.0, 1.0), high_open=True, note="-1 = off")

    def validate(self) -> None:
        check_settings(self, "relocalize.learned.")
        _check(self.search_px <= self.refind_search_px, "relocalize.learned.refind_search_px", self.refind_search_px,
               f">= relocalize.learned.search_px ({self.search_px:g})")


@dataclass
class RelocalizeConfig:
    """Long-term re-localisation: shared descriptor, keypoint observer and chain filter.

    Attributes:
        every: run the keypoint observer (its window searches) on every ``every``-th frame only
            (1 = every frame). Default 2: 39 instead of 26 frames/s at 854x480 with 256 points on
            2 cores (see docs/ablation.md). The chains and the feature filter run on every frame.
    """

    every: int = setting(2, range=(1, 100), unit="frames")
    descriptor: DescriptorConfig = field(default_factory=DescriptorConfig)
    keypoints: KeypointConfig = field(default_factory=KeypointConfig)
    filter: FeatureFilterConfig = field(default_factory=FeatureFilterConfig)
    learned: LearnedMatchConfig = field(default_factory=LearnedMatchConfig)

    def validate(self) -> "RelocalizeConfig":
        check_settings(self, "relocalize.")
        self.descriptor.validate()
        self.keypoints.validate()
        self.filter.validate()
        self.learned.validate()
        return self

    @property
    def active(self) -> bool:
        """Whether any part needs query descriptors (keypoints or filter enabled)."""
        return bool(self.keypoints.enabled or self.filter.enabled or self.learned.enabled)
