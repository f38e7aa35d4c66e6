"""Fit the chain and track evidence models on generated scenes with exact ground truth.

The tracker gathers evidence per chain and per point on every frame
(:mod:`~gs_tracker_ros.tracking.evidence`); :func:`~gs_tracker_ros.core.evidence.fit_mixture`
turns evidence with known errors into a model of the spread when right and the probability of
being wrong. The errors come from two sources:

**Generated scenes** (:mod:`~gs_tracker_ros.synthetic`: textured layers cut from
``../shared/data/real_video`` frames moving with exact affine ground truth):

* a chain's error is the distance from its landing point to where the surface under its
  *starting* point really is on the new frame (the chain's own mistake, not the drift it
  inherited), and a chain whose starting surface is hidden on the new frame is wrong by
  definition (:data:`HIDDEN_CHAIN_ERROR_PX`);
* a point's error is the distance from its published position to its ground truth, on the frames
  where the ground truth says it is visible.

**Real video cycles** (``../shared/data/real_video`` and ``../shared/data/davis_unlabeled``, no
labels; each set weighs as much as the generated scenes in the track model's fit): a grid is tracked ``T`` frames
forward and its end positions back over the reversed frames; the round-trip residual ``r`` of a
point is the sum of two independent errors of about the same size, so the forward error is taken
as ``r / sqrt(2)`` (a point the round trip loses, or returns farther than
:data:`LOST_CYCLE_PX`, counts as wrong), and the point's evidence is the forward tracker's on its
last frame. Generated scenes alone teach the model only errors of a fraction of a pixel (rigid
textured layers are easy); real footage drifts by tens of pixels, and these samples carry that
scale. They label points only (a chain's own error needs ground truth under its start).

No labelled real video is used: badja_dev stays held out for judging the models (their
positions do not depend on the track model, so the label-free accuracy checks are unaffected). The data is collected with the tracker configurations ``configs`` (default: the live
profile, and the live profile with the dense DIS chain so that the chain model sees both kinds of
source); each run uses the inverse-variance fusion, whose chains do not depend on a chain model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..core.evidence import EvidenceModel, fit_mixture
from ..synthetic.config import SceneConfig
from ..synthetic.scene import SyntheticScene, make_scene
from ..tracking.config import TrackerConfig
from ..tracking.evidence import CHAIN_FEATURES, TRACK_FEATURES
from ..tracking.tracker import ProbabilisticTracker

HIDDEN_CHAIN_ERROR_PX = 1000.0  # a chain whose starting surface is hidden on the new frame: wrong
LOST_CYCLE_PX = 1000.0  # error given to a point the round trip loses
REAL_TEXTURES = "../shared/data/real_video"
CYCLE_SETS = ("../shared/data/real_video", "../shared/data/davis_unlabeled")
CYCLE_LENGTHS = (8, 16, 32, 48)  # frames of the forward passes of the real-video cycles

DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "live": {},
    "live+dis": {"sources": ["lk", "dis"], "flow.intervals": [1]},
}


@dataclass(frozen=True)
class FitData:
    """Samples with known errors: ``chain`` / ``track`` features ``{name: (M,)}`` and their errors
    ``chain_err`` / ``track_err`` ``(M,)`` px."""

    chain: dict[str, np.ndarray]
    chain_err: np.ndarray
    track: dict[str, np.ndarray]
    track_err: np.ndarray

    @staticmethod
    def concat(parts: Sequence["FitData"]) -> "FitData":
        def cat(dicts, keys):
            return {k: np.concatenate([d[k] for d in dicts]) for k in keys}

        return FitData(cat([p.chain for p in parts], CHAIN_FEATURES), np.concatenate([p.chain_err for p in parts]),
                       cat([p.track for p in parts], TRACK_FEATURES), np.concatenate([p.track_err for p in parts]))


def fit_scene(seed: int, width: int = 640, height: int = 360, num_frames: int = 48,
              real_textures: str = REAL_TEXTURES) -> SyntheticScene:
    """One generated scene of the fitting set (real-video textures, occlusions, an exit)."""
    return make_scene(SceneConfig(width=width, height=height, num_frames=num_frames, seed=seed,
                                  real_textures=real_textures))


def collect(tracker: ProbabilisticTracker, scene: SyntheticScene, points: int = 96, seed: int = 0) -> FitData:
    """Run ``tracker`` over ``scene`` with ``points`` queries on frame 0 and as many on the middle
    frame, and gather every valid chain's and every point's evidence with its exact error."""
    t_all = scene.num_frames
    queries = {0: scene.sample_queries(points, 0, seed=seed), t_all // 2: scene.sample_queries(points, t_all // 2,
                                                                                                  seed=seed + 1)}
    gt_of_id: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    chain_x: list[dict[str, np.ndarray]] = []
    chain_e: list[np.ndarray] = []
    track_x: list[dict[str, np.ndarray]] = []
    track_e: list[np.ndarray] = []
    tracker.reset()
    for t in range(t_all):
        state = tracker.step(scene.render(t))
        ev = tracker.evidence
        if ev is not None and ev.frame == t and len(ev.ids):
            rows = np.array([i in gt_of_id for i in ev.ids.tolist()], bool)
            gt = np.stack([gt_of_id[int(i)][0][t] for i in ev.ids[rows]]) if rows.any() else np.zeros((0, 2))
            seen = np.array([gt_of_id[int(i)][1][t] for i in ev.ids[rows]], bool)
            err = np.linalg.norm(state.xy[rows].astype(np.float64) - gt, axis=1)
            track_x.append({k: v[rows][seen] for k, v in ev.track.items()})
            track_e.append(err[seen])
            n_idx, c_idx = np.nonzero(ev.valid)
            if n_idx.size:
                start = ev.chains.source_xy[n_idx, c_idx]
                from_frame = t - ev.chains.interval[n_idx, c_idx].astype(np.int64)
                truth = np.full((n_idx.size, 2), np.nan)
                there = np.zeros(n_idx.size, bool)
                for s in np.unique(from_frame):
                    sel = from_frame == s
                    tracks, visible = scene.track(start[sel], int(s))
                    truth[sel], there[sel] = tracks[:, t], visible[:, t]
                cerr = np.where(there, np.linalg.norm(ev.chains.mu[n_idx, c_idx] - truth, axis=1), HIDDEN_CHAIN_ERROR_PX)
                chain_x.append({k: np.asarray(v)[n_idx, c_idx] for k, v in ev.chain.items()})
                chain_e.append(np.nan_to_num(cerr, nan=HIDDEN_CHAIN_ERROR_PX))
        if t in queries:
            ids = tracker.add_queries(queries[t])
            tracks, visible = scene.track(queries[t], t)
            gt_of_id.update({int(i): (tracks[j], visible[j]) for j, i in enumerate(ids)})

    def cat(parts: list[dict[str, np.ndarray]], keys: Iterable[str]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in keys}

    return FitData(cat(chain_x, CHAIN_FEATURES), np.concatenate(chain_e) if chain_e else np.zeros(0),
                   cat(track_x, TRACK_FEATURES), np.concatenate(track_e) if track_e else np.zeros(0))


def collect_all(scenes: int, configs: dict[str, dict[str, Any]] | None = None, num_frames: int = 48,
                progress: Callable[[str], None] | None = None) -> FitData:
    """:func:`collect` over ``scenes`` generated scenes (seeds 0..scenes-1) for every tracker
    configuration in ``configs`` (dotted keys on top of :class:`TrackerConfig`)."""
    from ..methods import build_probabilistic_tracker

    configs = DEFAULT_CONFIGS if configs is None else configs
    parts = []
    placeholder = EvidenceModel.constant(TRACK_FEATURES, 0.1, 4.0)  # positions do not depend on it
    for i in range(scenes):
        scene = fit_scene(i, num_frames=num_frames)
        for name, keys in configs.items():
            config = TrackerConfig().replace(**{**keys, "integration.fusion": "inverse_variance"})
            tracker = build_probabilistic_tracker(config, name=name, track_model=placeholder)
            parts.append(collect(tracker, scene, seed=i))
            if progress:
                progress(f"scene {i + 1}/{scenes} [{name}]: {parts[-1].chain_err.size} chains, "
                         f"{parts[-1].track_err.size} point-frames")
    return FitData.concat(parts)


def collect_cycle(tracker: ProbabilisticTracker, frames: np.ndarray, grid: int = 10,
                  lengths: Sequence[int] = CYCLE_LENGTHS) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Track features and forward-error estimates ``r / sqrt(2)`` px of a ``grid x grid`` point
    grid over ``frames`` (module doc), one sample per point and cycle length in ``lengths``."""
    from ..core.geometry import grid_points, inside_image

    t_all, h, w = frames.shape[:3]
    start = grid_points(w, h, grid)
    feats: list[dict[str, np.ndarray]] = []
    errs: list[np.ndarray] = []
    tracker.reset()
    ends: dict[int, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
    ids = None
    for t in range(max(lengths)):
        state = tracker.step(frames[t])
        if t == 0:
            ids = tracker.add_queries(start)
            continue
        if t + 1 in lengths:
            ev = tracker.evidence
            order = np.searchsorted(ev.ids, ids)
            xy = state.xy[np.searchsorted(state.ids, ids)].astype(np.float64)
            ends[t + 1] = (xy, {k: v[order] for k, v in ev.track.items()})
    for length, (xy, track) in ends.items():
        inside = inside_image(xy, (h, w))
        residual = np.full(len(xy), LOST_CYCLE_PX)
        if inside.any():
            tracker.reset()
            back_ids = None
            for t in range(length - 1, -1, -1):
                state = tracker.step(frames[t])
                if back_ids is None:
                    back_ids = tracker.add_queries(xy[inside])
            back = state.xy[np.searchsorted(state.ids, back_ids)].astype(np.float64)
            residual[inside] = np.minimum(np.linalg.norm(back - start[inside], axis=1), LOST_CYCLE_PX)
        feats.append(track)
        errs.append(np.where(residual >= LOST_CYCLE_PX, LOST_CYCLE_PX, residual / np.sqrt(2.0)))
    return {k: np.concatenate([f[k] for f in feats]) for k in TRACK_FEATURES}, np.concatenate(errs)


def collect_real_cycles(folder: str, configs: dict[str, dict[str, Any]] | None = None,
                        grid: int = 10, progress: Callable[[str], None] | None = None
                        ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`collect_cycle` over every clip of ``folder``, every ``max(CYCLE_LENGTHS)`` frames a
    new start, for each tracker configuration in ``configs``."""
    from ..core.frames import open_frames
    from ..core.paths import resolve_path
    from ..methods import build_probabilistic_tracker

    configs = DEFAULT_CONFIGS if configs is None else configs
    root = resolve_path(folder)
    clips = sorted(p for p in root.iterdir() if p.is_dir())
    placeholder = EvidenceModel.constant(TRACK_FEATURES, 0.1, 4.0)
    feats, errs = [], []
    span = max(CYCLE_LENGTHS)
    for clip in clips:
        frames = np.stack(list(open_frames(clip)))
        for first in range(0, len(frames) - span + 1, span):
            for name, keys in configs.items():
                config = TrackerConfig().replace(**{**keys, "integration.fusion": "inverse_variance"})
                tracker = build_probabilistic_tracker(config, name=name, track_model=placeholder)
                x, e = collect_cycle(tracker, frames[first:first + span], grid)
                feats.append(x)
                errs.append(e)
            if progress:
                progress(f"real video {clip.name} from frame {first}: {sum(len(e) for e in errs)} samples so far")
    if not errs:
        from ..core.errors import InputError

        raise InputError(f"--cycles: no clip of at least {span} frames in {folder}")
    return {k: np.concatenate([f[k] for f in feats]) for k in TRACK_FEATURES}, np.concatenate(errs)


def fit_models(data: FitData, cycles: Sequence[tuple[dict[str, np.ndarray], np.ndarray]],
               info: dict[str, Any]) -> tuple[EvidenceModel, EvidenceModel]:
    """``(chain model, track model)``: the chain model from the generated scenes' chains, the
    track model from their points plus every set of real-video ``cycles`` (features, errors), each
    source weighing the same in total (:func:`~gs_tracker_ros.core.evidence.fit_mixture`)."""
    chain = fit_mixture(data.chain, data.chain_err, CHAIN_FEATURES, max_variance=1024.0,
                        info={**info, "what": "chain"})
    parts = [(data.track, data.track_err), *cycles]
    x = {k: np.concatenate([p[0][k] for p in parts]) for k in TRACK_FEATURES}
    err = np.concatenate([p[1] for p in parts])
    weights = np.concatenate([np.full(len(p[1]), 1.0 / max(len(p[1]), 1)) for p in parts])
    track = fit_mixture(x, err, TRACK_FEATURES, max_variance=4096.0, weights=weights,
                        info={**info, "what": "track", "samples_per_source": [int(len(p[1])) for p in parts]})
    return chain, track


def summary(model: EvidenceModel, x: dict[str, np.ndarray], err: np.ndarray) -> dict[str, Any]:
    """How the model fits some data: coverage of the spread among the samples it calls right
    (p_out < 0.5), the share it calls wrong, and how p_out ranks the samples wrong by more than
    16 px (ROC AUC)."""
    from .calibration import roc_auc

    p, s2 = model.predict(x)
    right = p < 0.5
    sigma = np.sqrt(s2)
    out = {"samples": int(err.size), "called_wrong": float(np.mean(~right)),
           "auc_wrong_by_16px": roc_auc(p, err > 16.0)}
    if right.any():
        out["within_1sigma_of_right"] = float(np.mean(err[right] < sigma[right]))
        out["within_2sigma_of_right"] = float(np.mean(err[right] < 2 * sigma[right]))
    return out


def fit_evidence(out_dir: Path, scenes: int, num_frames: int, cycle_sets: Sequence[str], command: str) -> dict:
    """Collect, fit and write ``chain.json``, ``track.json`` and ``fit_log.json`` into ``out_dir``
    (progress on stderr). Returns the log."""
    from ..core.output import write_json, write_text

    def say(line: str) -> None:
        print(f"[fit-evidence] {line}", file=sys.stderr, flush=True)

    data = collect_all(scenes, num_frames=num_frames, progress=say)
    cycles = [collect_real_cycles(folder, progress=say) for folder in cycle_sets]
    info = {"command": command, "scenes": scenes, "frames": num_frames, "textures": REAL_TEXTURES,
            "cycle_sets": list(cycle_sets), "cycle_lengths": list(CYCLE_LENGTHS), "configs": DEFAULT_CONFIGS}
    chain, track = fit_models(data, cycles, info)
    log = {"chain": {**chain.info, "fit": summary(chain, data.chain, data.chain_err)},
           "track": {**track.info, "fit_generated": summary(track, data.track, data.track_err),
                     **{f"fit_{Path(folder).name}": summary(track, *c) for folder, c in zip(cycle_sets, cycles)}}}
    for model in (chain, track):
        log[model.info["what"]]["weights_out"] = dict(zip(model.features + ("intercept",), model.w_out))
        log[model.info["what"]]["weights_logvar"] = dict(zip(model.features + ("intercept",), model.w_logvar))
    write_text(out_dir / "chain.json", chain.to_json() + "\n")
    write_text(out_dir / "track.json", track.to_json() + "\n")
    write_json(out_dir / "fit_log.json", log)
    return log
