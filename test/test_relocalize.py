"""Long-term re-localisation: descriptors, soft-argmax, keypoint observer, feature filter, tracker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.clip_buffer import ClipBuffer
from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.relocalize import (
    DescriptorConfig,
    FeatureFilterConfig,
    FeatureSimilarityFilter,
    KeypointConfig,
    LongTermObserver,
    QueryBank,
    RelocalizeConfig,
)
from gs_tracker_ros.relocalize import descriptors as D
from gs_tracker_ros.evaluation.ablation import ABLATIONS, ablation_configs
from gs_tracker_ros.methods import build_relocalizer
from gs_tracker_ros.synthetic import make_occlusion_reveal_scene

REPO = Path(__file__).resolve().parents[1]

# The paper's thresholds (0.3 per chain, 0.7 to come back) with keypoints fused every frame: the
# profile for sharp textures. The shipped defaults are tuned to real footage (docs/ablation.md).
PAPER_PROFILE = {
    "relocalize.filter.threshold": 0.3,
    "relocalize.filter.revive_threshold": 0.7,
    "relocalize.keypoints.visible_every": 1,
}


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random colour texture, RGB uint8 (structure at 2-16 px)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for sigma, amp in ((1.0, 40.0), (3.0, 60.0), (8.0, 60.0)):
        noise = rng.normal(0.0, 1.0, (h, w, 3)).astype(np.float32)
        blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
        img += amp * blurred / (blurred.std() + 1e-6)
    return np.clip(128.0 + img, 0, 255).astype(np.uint8)


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``img`` translated by (dx, dy) px (content at p moves to p + d), bicubic, reflected border."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


def _bank_on(frames: list[np.ndarray], qxy: np.ndarray, config: DescriptorConfig | None = None,
             extra_levels: tuple[int, ...] = (2,)) -> tuple[ClipBuffer, QueryBank, np.ndarray]:
    buf = ClipBuffer(8)
    for f in frames:
        buf.push(f)
    bank = QueryBank(config or DescriptorConfig(), extra_levels=extra_levels)
    ids = np.arange(len(qxy), dtype=np.int64)
    bank.add(buf, 0, ids, qxy)
    return buf, bank, ids


# ---------------------------------------------------------------------------------------- soft-argmax
def test_soft_argmax_exact_on_a_quadratic_peak():
    """exp(s / T) of a quadratic peak is a sampled Gaussian: its centroid is the true sub-pixel peak."""
    centres = np.array([[7.0, 7.0], [7.3, 6.6], [6.55, 7.45], [8.2, 5.9]])  # (x, y) in cells
    yy, xx = np.mgrid[0:15, 0:15]
    maps = np.stack([0.9 - 0.02 * ((xx - cx) ** 2 + (yy - cy) ** 2) for cx, cy in centres]).astype(np.float64)
    xy, peak = D.soft_argmax(maps, radius=4, temperature=0.02)
    np.testing.assert_allclose(xy, centres, atol=1e-3)
    np.testing.assert_allclose(peak, [maps[i, int(round(c[1])), int(round(c[0]))] for i, c in enumerate(centres)])


def test_soft_argmax_mask_nan_and_empty_rows():
    maps = np.zeros((3, 9, 9))
    maps[0, 2, 2] = 1.0  # global peak, masked out below
    maps[0, 6, 5] = 0.8
    maps[1] = np.nan  # no candidate at all
    maps[2, 4, 4] = np.nan
    maps[2, 1, 7] = 0.5
    mask = np.ones_like(maps, bool)
    mask[0, 2, 2] = False
    xy, peak = D.soft_argmax(maps, radius=1, temperature=1e-3, mask=mask)
    np.testing.assert_allclose(xy[0], [5.0, 6.0], atol=1e-6)
    assert np.all(np.isnan(xy[1])) and np.isnan(peak[1])
    np.testing.assert_allclose(xy[2], [7.0, 1.0], atol=1e-6)


# ---------------------------------------------------------------------------------------- descriptors
def test_cosine_similarity_properties():
    img = _texture(120, 160, seed=1)
    other = _texture(120, 160, seed=2)
    brighter = np.clip(img.astype(np.float32) * 0.7 + 40, 0, 255).astype(np.uint8)  # gain + offset
    flat = np.full_like(img, 90)
    cfg = DescriptorConfig()
    cfg.validate()
    xy = np.array([[50.0, 60.0], [100.0, 40.0]])
    pyr = D.build_pyramid(img, cfg.channels, 2)
    q = D.describe(pyr, xy, cfg.levels, cfg.patch_size)
    w = D.level_weights(q.contrast, cfg.min_contrast)
    same = D.cosine_similarity(q, w, D.describe(pyr, xy, cfg.levels, cfg.patch_size))
    np.testing.assert_allclose(same, 1.0, atol=1e-3)
    gain = D.cosine_similarity(q, w, D.describe(D.build_pyramid(brighter, cfg.channels, 2), xy, cfg.levels, 7))
    assert np.all(gain > 0.97), gain  # normalised patches: brightness and contrast do not matter
    diff = D.cosine_similarity(q, w, D.describe(D.build_pyramid(other, cfg.channels, 2), xy, cfg.levels, 7))
    assert np.all(diff < 0.5), diff
    fq = D.describe(D.build_pyramid(flat, cfg.channels, 2), xy, cfg.levels, 7)
    fw = D.level_weights(fq.contrast, cfg.min_contrast)
    assert not fw.any()  # a flat query has no informative level ...
    assert np.all(np.isnan(D.cosine_similarity(fq, fw, q)))  # ... and no similarity


def test_similarity_map_peaks_at_the_descriptor_location():
    img = _texture(96, 96, seed=3)
    cfg = DescriptorConfig()
    cfg.validate()
    pyr = D.build_pyramid(img, cfg.channels, 2)
    q = D.describe(pyr, np.array([[40.0, 50.0]]), cfg.levels, 7)
    w = D.level_weights(q.contrast, cfg.min_contrast)
    maps, used = D.similarity_maps(pyr, q, w, np.array([[43, 47]]), radius=6)
    assert used[0]
    iy, ix = np.unravel_index(np.nanargmax(maps[0]), maps[0].shape)
    assert (ix - 6 + 43, iy - 6 + 47) == (40, 50)
    # levels 1 and 2 are evaluated on their own pixel grid and resampled: close to, not exactly, 1
    assert maps[0, iy, ix] > 0.93
    fine = q.subset((0,))
    maps0, _ = D.similarity_maps(pyr, fine, D.level_weights(fine.contrast, 2.0), np.array([[43, 47]]), radius=6)
    assert maps0[0, iy, ix] == pytest.approx(1.0, abs=1e-3)  # full resolution: the exact NCC


def test_pyramid_is_computed_once_per_frame(monkeypatch):
    calls = []
    real = D.build_pyramid
    monkeypatch.setattr(D, "build_pyramid", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr("gs_tracker_ros.relocalize.bank.build_pyramid", D.build_pyramid)
    img = _texture(64, 64, seed=4)
    buf, bank, ids = _bank_on([img, _shift(img, 1, 0)], np.array([[30.0, 30.0]]))
    filt = FeatureSimilarityFilter(FeatureFilterConfig(), bank)
    obs = LongTermObserver(KeypointConfig(visible_every=1), bank)
    landing = np.array([[[31.0, 30.0], [31.2, 30.1]]])
    valid = filt.filter(buf, 1, ids, landing, np.ones((1, 2), bool))
    obs.observe(buf, 1, ids, np.array([[30.0, 30.0]]))
    obs.observe(buf, 1, ids, np.array([[30.0, 30.0]]))
    assert valid.all()
    assert len(calls) == 2  # frame 0 (query) and frame 1, shared by the filter and the observer


# ---------------------------------------------------------------------------------------- observer
def test_search_finds_a_subpixel_translation_locally_and_far_away():
    img = _texture(200, 260, seed=5)
    d = np.array([0.3, -0.4])
    far = np.array([37.0, 21.0])
    near_frame = _shift(img, *d)
    far_frame = _shift(img, *(far + d))
    q = np.array([[80.0, 90.0], [120.0, 70.0], [150.0, 120.0]])
    buf, bank, ids = _bank_on([img, near_frame, far_frame], q)
    obs = LongTermObserver(KeypointConfig(), bank)
    rows = bank.rows(ids)
    # soft-argmax on real NCC maps: ~0.1 px mean error, < 0.35 px worst case (measured)
    found, sim = obs.search(buf, 1, rows, q + [2.0, -1.0], np.full(3, 6.0))  # local, full resolution
    np.testing.assert_allclose(found, q + d, atol=0.35)
    assert np.all(sim > 0.9)
    found, sim = obs.search(buf, 2, rows, q, np.full(3, 80.0))  # wide: coarse proposals, refined
    np.testing.assert_allclose(found, q + far + d, atol=0.35)
    assert np.all(sim > 0.9)


def test_keypoint_validity_uses_the_cosine_threshold(monkeypatch):
    img = _texture(80, 80, seed=6)
    q = np.array([[20.0, 20.0], [40.0, 40.0], [60.0, 20.0], [20.0, 60.0]])
    buf, bank, ids = _bank_on([img, img], q)
    obs = LongTermObserver(KeypointConfig(threshold=0.7, refind_threshold=0.9, visible_every=1), bank)
    sims = np.array([0.69, 0.71, 0.89, 0.91])
    monkeypatch.setattr(obs, "search", lambda buffer, frame, rows, centre, radius: (centre.copy(), sims[rows]))
    has_chain = np.array([True, True, False, False])
    obs.record(1, ids, has_chain)  # the tracker's step: which points kept a valid chain
    assert bank.lost.tolist() == [0, 0, 1, 1]
    out = obs.observe(buf, 1, ids, q, has_chain)
    # next to chains: > threshold; alone (re-localisation): > refind_threshold
    assert out.valid.tolist() == [False, True, False, True]
    assert bank.lost.tolist() == [0, 0, 1, 0]  # the re-found point counts as visible again
    # confidence-scaled variance: sigma_kp^2 / ((sim - thr) / (1 - thr))
    assert out.variance[1] == pytest.approx(9.0 / (0.01 / 0.3))
    assert out.variance[3] == pytest.approx(9.0 / (0.01 / 0.1))


def test_search_budget_bounds_the_work_per_frame(monkeypatch):
    img = _texture(120, 120, seed=7)
    q = np.stack(np.meshgrid(np.arange(20, 110, 10.0), np.arange(20, 70, 10.0)), -1).reshape(-1, 2)
    buf, bank, ids = _bank_on([img] * 4, q)
    obs = LongTermObserver(KeypointConfig(max_searches_per_frame=8), bank)
    seen = []
    monkeypatch.setattr(obs, "search", lambda buffer, frame, rows, centre, radius: (
        seen.append(rows.copy()) or (centre.copy(), np.zeros(len(rows)))))
    for frame in (1, 2, 3):
        none = np.zeros(len(ids), bool)  # every point occluded
        obs.record(frame, ids, none)
        obs.observe(buf, frame, ids, q, none)
    assert [len(r) for r in seen] == [8, 8, 8]
    assert len(np.unique(np.concatenate(seen))) == 24  # occluded points take turns


# ---------------------------------------------------------------------------------------- filter
def test_filter_rejects_a_chain_landing_on_a_different_texture():
    a, b = _texture(100, 200, seed=8), _texture(100, 200, seed=9)
    frame0 = a.copy()
    frame1 = a.copy()
    frame1[:, 100:] = b[:, 100:]  # the right half now shows another surface
    q = np.array([[50.0, 50.0], [150.0, 50.0]])
    buf, bank, ids = _bank_on([frame0, frame1], q)
    filt = FeatureSimilarityFilter(FeatureFilterConfig(threshold=0.3), bank)
    landing = np.array([[[50.0, 50.0], [150.0, 50.0], [50.0, 50.0]],   # same texture, other texture, invalid
                        [[150.0, 50.0], [50.0, 50.0], [150.0, 50.0]]])  # query 1: its own spot is now texture b
    valid = np.array([[True, True, False], [True, True, True]])
    out = filt.filter(buf, 1, ids, landing, valid)
    assert out[0].tolist() == [True, False, False]
    assert not out[1, 0] and not out[1, 2]
    assert bank.lost.tolist() == [0, 0]  # the filter is pure: the bank is the observer's to keep
    off = FeatureSimilarityFilter(FeatureFilterConfig(enabled=False), bank)
    assert (off.filter(buf, 1, ids, landing, valid) == valid).all()


def test_filter_needs_more_evidence_to_revive_an_occluded_point(monkeypatch):
    img = _texture(60, 60, seed=10)
    buf, bank, ids = _bank_on([img, img], np.array([[30.0, 30.0]]))
    filt = FeatureSimilarityFilter(FeatureFilterConfig(threshold=0.3, revive_threshold=0.7), bank)
    monkeypatch.setattr(filt, "similarity", lambda *a: np.array([[0.5]]))
    one = np.ones((1, 1), bool)
    assert filt.filter(buf, 1, ids, np.zeros((1, 1, 2)), one).all()  # visible: 0.5 > 0.3 keeps it
    bank.lost[:] = 3
    assert not filt.filter(buf, 1, ids, np.zeros((1, 1, 2)), one).any()  # occluded: 0.5 < 0.7
    assert bank.lost.tolist() == [3]  # read, not written


def _rotated(img: np.ndarray, centre: tuple[float, float], degrees: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def test_appearance_refresh_keeps_a_slowly_turning_point_similar():
    # the texture turns about the point, which never moves: by frame 28 (56 degrees) the point's
    # look is far from the query patch, but close to what it was four frames earlier
    img = _texture(120, 120, seed=12)
    q = np.array([[60.0, 60.0]])

    def similarities(degrees_per_frame: float, every: int) -> list[float]:
        buf = ClipBuffer(32)
        buf.push(img)
        bank = QueryBank(DescriptorConfig(), extra_levels=(2,))
        ids = np.arange(1)
        bank.add(buf, 0, ids, q)
        filt = FeatureSimilarityFilter(FeatureFilterConfig(refresh_every=every), bank)
        out = []
        for k in range(1, 29):
            buf.push(_rotated(img, (60.0, 60.0), degrees_per_frame * k))
            out.append(float(filt.similarity(buf, k, ids, q[:, None], np.ones((1, 1), bool))[0, 0]))
            filt.refresh(buf, k, ids, q, np.ones(1, bool), np.full(1, 4))
        return out

    assert similarities(2.0, 0)[-1] < 0.3 < 0.9 < min(similarities(2.0, 4))
    # faster: once the look is no longer refresh_threshold-similar to the query the refreshes stop
    # (a drifting point cannot rewrite its appearance), and the similarity decays again
    fast = similarities(4.0, 4)
    assert min(fast[:16]) > 0.8 and fast[-1] < 0.3


def test_appearance_refresh_only_from_steady_similar_points_on_its_frames():
    a = _texture(100, 200, seed=8)
    b = 255 - a  # every patch the negative of the query's: similarity -1
    q = np.array([[50.0, 50.0], [150.0, 50.0], [50.0, 30.0], [150.0, 30.0]])
    buf, bank, ids = _bank_on([a, b], q)
    filt = FeatureSimilarityFilter(FeatureFilterConfig(refresh_every=2, refresh_min_chains=2), bank)
    before = bank.recent.blocks.copy()
    np.testing.assert_array_equal(before, bank.query(np.arange(4))[0].blocks)  # starts as the query's
    steady = np.array([True, True, False, True])
    chains = np.array([2, 2, 2, 1])
    filt.refresh(buf, 1, ids, q, steady, chains)  # frame 1 is not a refresh frame
    np.testing.assert_array_equal(bank.recent.blocks, before)
    buf.push(a)  # frame 2: the original texture again, described 3 px right of the queries
    filt.refresh(buf, 2, ids, q + [3.0, 0.0], steady, chains)
    changed = np.any(bank.recent.blocks != before, axis=(1, 2))
    assert changed.tolist() == [True, True, False, False]  # not steady / too few chains: kept
    seen = bank.describe(buf, 2, q[:2] + [3.0, 0.0])
    np.testing.assert_array_equal(bank.recent.blocks[:2], seen.blocks)
    # a point that drifted onto another surface does not rewrite its appearance
    buf.push(b)
    kept = bank.recent.blocks.copy()
    buf.push(b)
    filt.refresh(buf, 4, ids, q, np.ones(4, bool), np.full(4, 3))
    np.testing.assert_array_equal(bank.recent.blocks, kept)
    # rows stay aligned with the bank's ids through add and remove
    bank.add(buf, 4, np.array([7]), np.array([[100.0, 60.0]]))
    bank.remove(np.array([1]))
    assert bank.recent.blocks.shape[0] == len(bank) == 4
    np.testing.assert_array_equal(bank.recent.blocks[[0, 1, 2]], kept[[0, 2, 3]])
    np.testing.assert_array_equal(bank.recent.blocks[3], bank.query(np.array([3]))[0].blocks[0])


def test_tracker_refreshes_its_filter_with_the_fused_positions():
    calls = []

    class Recording:
        chain_similarity = None  # compares no appearance

        def filter(self, buffer, frame, query_ids, landing, valid):
            return valid

        def refresh(self, buffer, frame, query_ids, xy, steady, chains):
            calls.append((frame, xy.copy(), steady.copy(), chains.copy()))

    from gs_tracker_ros.methods import build_sources
    from gs_tracker_ros.tracking.tracker import ProbabilisticTracker

    img = _texture(120, 160, seed=4)
    cfg = TrackerConfig()
    tracker = ProbabilisticTracker(cfg, build_sources(cfg), chain_filter=Recording())
    tracker.step(img)
    tracker.add_queries(np.array([[60.0, 60.0], [100.0, 50.0]]))
    states = [tracker.step(_shift(img, float(k), 0.0)) for k in range(1, 6)]
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5]
    for (frame, xy, steady, chains), state in zip(calls, states):
        np.testing.assert_allclose(xy, state.xy, atol=1e-4)
        assert steady.all()
    # chains from t-1, t-2, t-4 as their source frames exist (t-8 not yet)
    assert [int(c[3][0]) for c in calls] == [1, 2, 2, 3, 3]


# ---------------------------------------------------------------------------------------- full tracker
@pytest.mark.parametrize("seed", [0, 3])
def test_occluded_patch_is_flagged_and_refound_after_the_reveal(seed):
    occ = make_occlusion_reveal_scene(seed=seed, noise_std=1.0)
    scene = occ.scene
    centre = occ.patch_queries.mean(axis=0)
    query = occ.patch_queries[[int(np.argmin(np.linalg.norm(occ.patch_queries - centre, axis=1)))]]
    gt, gt_vis = scene.track(query, np.zeros(1, np.int64))
    tracker = make_tracker("probfuse", TrackerConfig().replace(**PAPER_PROFILE))
    assert tracker.chain_filter is not None and tracker.observer is not None
    xy, vis = [], []
    for t, frame in enumerate(scene.frames()):
        state = tracker.step(frame)
        if t == 0:
            tracker.add_queries(query)
            state = tracker.state()
        xy.append(state.xy[0].copy())
        vis.append(bool(state.visible[0]))
    xy, vis = np.array(xy), np.array(vis)
    err = np.linalg.norm(xy - gt[0], axis=1)
    hidden = np.array(list(occ.hidden))
    assert not gt_vis[0, hidden].any()
    assert (~vis[hidden]).mean() >= 0.8, f"visible on {vis[hidden].sum()} of {hidden.size} hidden frames"
    after = np.arange(occ.reveal_frame, occ.reveal_frame + 5)
    assert np.any(vis[after] & (err[after] <= 3.0)), f"errors after the reveal: {err[after].round(1)}"
    tail = np.arange(occ.reveal_frame, scene.num_frames)
    assert vis[tail].all() and np.median(err[tail]) <= 3.0  # and it stays found


def test_reset_and_remove_keep_the_bank_in_step():
    occ = make_occlusion_reveal_scene(seed=1, num_frames=40, hidden_frames=10)
    frames = list(occ.scene.frames())
    tracker = make_tracker("probfuse")
    bank = tracker.observer.bank
    tracker.step(frames[0])
    ids = tracker.add_queries(occ.patch_queries[:5])
    for f in frames[1:4]:
        tracker.step(f)
    tracker.remove_queries(ids[[1, 3]])
    assert bank.ids.tolist() == ids[[0, 2, 4]].tolist() and bank.lost.shape == (3,)
    tracker.step(frames[4])
    tracker.reset()
    assert len(bank) == 0
    tracker.step(frames[5])
    tracker.add_queries(occ.patch_queries[:2])
    tracker.step(frames[6])
    with pytest.raises(KeyError):
        bank.rows(np.array([999]))


# ---------------------------------------------------------------------------------------- config
def test_config_defaults_validation_and_switches():
    cfg = TrackerConfig()
    r = cfg.relocalize
    assert r.keypoints.enabled and r.filter.enabled and r.descriptor.channels == "lab"
    assert r.keypoints.variance == 9.0 and r.keypoints.threshold == 0.7
    via_dict = TrackerConfig.from_dict({"relocalize": {"filter": {"threshold": 0.3},
                                                       "descriptor": {"levels": "2,0,1"}}})
    assert via_dict.relocalize.filter.threshold == 0.3 and via_dict.relocalize.descriptor.levels == (0, 1, 2)
    for key, bad in (("relocalize.filter.threshold", 1.5), ("relocalize.keypoints.variance", 0.0),
                     ("relocalize.descriptor.patch_size", 8), ("relocalize.descriptor.channels", "hsv"),
                     ("relocalize.keypoints.max_search_px", 2.0), ("relocalize.keypoints.visible_every", -1)):
        with pytest.raises(ConfigError, match=key.split(".")[-1]):
            cfg.replace(**{key: bad})
    off = cfg.replace(**{"relocalize.keypoints.enabled": False, "relocalize.filter.enabled": False})
    assert build_relocalizer(off.relocalize) == (None, None)
    tracker = make_tracker("probfuse", off)
    assert tracker.chain_filter is None and tracker.observer is None
    f, o = build_relocalizer(RelocalizeConfig())
    assert f.bank is o.bank


def test_ablation_variants_switch_one_part_each():
    variants = dict(ablation_configs(TrackerConfig()))
    assert list(variants) == [label for label, _ in ABLATIONS]
    assert not variants["w/o keypoints"].relocalize.keypoints.enabled
    assert variants["w/o keypoints"].relocalize.filter.enabled
    assert not variants["w/o feature filter"].relocalize.filter.enabled
    assert not variants["w/o probabilistic"].integration.probabilistic
    refresh = variants["w/o appearance refresh"].relocalize.filter
    assert refresh.enabled and refresh.refresh_every == 0 and TrackerConfig().relocalize.filter.refresh_every > 0
    assert variants["full"].to_dict() == TrackerConfig().to_dict()


def test_eval_ablation_cli_prints_the_table(shared_data, tmp_path):
    seq = shared_data / "badja_dev" / "dog"
    out = tmp_path / "ablation.json"
    res = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "badja", str(seq),
                          "--ablation", "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for label, _ in ABLATIONS:
        assert f"| {label} |" in res.stdout
    rows = json.loads(out.read_text())["results"]
    assert [r["method"] for r in rows] == [label for label, _ in ABLATIONS]
    # what each part adds, against "full", with the bootstrap intervals
    diffs = json.loads(out.read_text())["differences"]
    assert [d["method"] for d in diffs] == [label for label, _ in ABLATIONS][:-1]
    assert all(d["against"] == "full" and set(d["differences"]) == {"dog", "pooled"} for d in diffs)
    assert "what each part adds" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "badja", str(seq),
                          "--ablation", "--method", "klt"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--ablation" in bad.stderr


def test_unique_rows_matches_numpy_row_unique():
    from gs_tracker_ros.relocalize.feature_filter import unique_rows

    rng = np.random.default_rng(3)
    for trial in range(60):
        m = int(rng.integers(0, 300))
        keys = np.stack([rng.integers(0, 40, m), rng.integers(-8, 30, m), rng.integers(-8, 30, m)], axis=1)
        if trial % 4 == 0 and m:
            keys[rng.random(m) < 0.5] = keys[0]  # many duplicates of one row
        if trial % 7 == 0 and m:
            keys[:, 1] = rng.integers(-2**40, 2**40, m)  # packed would overflow: numpy's path
        first, inverse = unique_rows(keys)
        if m == 0:
            assert first.size == 0 and inverse.size == 0
            continue
        _, f_np, i_np = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        assert np.array_equal(first, f_np) and np.array_equal(inverse, i_np.reshape(-1))


def test_grey_descriptor_pyramid_reuses_the_buffers_grey_image(monkeypatch):
    rgb = _texture(96, 80, seed=5)  # colour texture
    buf = ClipBuffer(4)
    buf.push(rgb)
    conversions = []
    real = cv2.cvtColor
    monkeypatch.setattr(cv2, "cvtColor", lambda *a, **k: conversions.append(a[1]) or real(*a, **k))
    grey = buf.gray(0)
    pyr = D.frame_pyramid(buf, 0, "gray", 2)
    assert conversions == [cv2.COLOR_RGB2GRAY]  # converted once, for the LK chains and the descriptors
    assert np.shares_memory(pyr[0], grey)
    monkeypatch.setattr(cv2, "cvtColor", real)
    expected = D.build_pyramid(rgb, "gray", 2)
    assert len(pyr) == 3 and all(np.array_equal(a, b) and a.shape == b.shape for a, b in zip(pyr, expected))
