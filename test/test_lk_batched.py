"""The batched LK kernel (native/, gs_tracker_ros/motion/lk_native.py) against OpenCV's LK: the same
status and, where a pass succeeds, the same position to the bit."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.clip_buffer import ClipBuffer
from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.motion import lk_native
from gs_tracker_ros.motion import lk_pyramid, lucas_kanade
from gs_tracker_ros.motion.base import MotionEstimate, MotionSource
from gs_tracker_ros.motion.config import LKConfig
from gs_tracker_ros.motion.lk_native import LKSettings, forward_backward_many
from gs_tracker_ros.motion.lk_pyramid import PyramidPool, build_pyramid, pyramid_levels
from gs_tracker_ros.motion.lucas_kanade import LucasKanadeSource, fb_result, lk_forward_backward, lk_params

needs_kernel = pytest.mark.skipif(lk_native.load_library() is None,
                                  reason="the LK kernel is not built (make setup builds it)")

CONFIG = LKConfig()  # the live profile's LK: 21 px window, 3 levels, 20 iterations / 0.03 px, 1e-5


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random grey texture (uint8)."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 2.0)
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def moved(img: np.ndarray, dx: float, dy: float, angle: float = 0.0) -> np.ndarray:
    h, w = img.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def settings(config: LKConfig = CONFIG) -> LKSettings:
    return LKSettings(config.window, config.max_iterations, config.epsilon, config.min_eig_threshold)


def opencv_passes(a: np.ndarray, b: np.ndarray, pts: np.ndarray, config: LKConfig = CONFIG):
    params = lk_params(config)
    p0 = np.ascontiguousarray(pts.reshape(-1, 1, 2), np.float32)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(a, b, p0, None, **params)
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(b, a, p1, None, **params)
    return p1.reshape(-1, 2), st1.ravel() == 1, p0b.reshape(-1, 2), st2.ravel() == 1


def kernel_passes(a: np.ndarray, b: np.ndarray, pts: np.ndarray, config: LKConfig = CONFIG, threads: int = 2,
                  simd: bool = True, residual: bool = False):
    pa, pb = build_pyramid(a, config.window, config.levels), build_pyramid(b, config.window, config.levels)
    return forward_backward_many([(pa, pb, pts)], settings(config), threads, simd=simd, residual=residual)[0]


def assert_matches_opencv(a, b, pts, config: LKConfig = CONFIG, simd: bool = True):
    """Forward and backward passes: the same status as OpenCV's and, where it succeeded, the same
    float32 position (the kernel adds the same values in the same order)."""
    p1, st1, p0b, st2 = opencv_passes(a, b, pts, config)
    ours = kernel_passes(a, b, pts, config, simd=simd)
    assert np.array_equal(st1, ours.forward_ok)
    assert st1.any()
    assert np.array_equal(p1[st1], ours.forward[st1]), np.abs(p1[st1] - ours.forward[st1]).max()
    assert np.array_equal(st2[st1], ours.backward_ok[st1])
    both = st1 & st2
    assert np.array_equal(p0b[both], ours.backward[both])
    return ours


@needs_kernel
@pytest.mark.parametrize("simd", [True, False], ids=["simd", "plain-loops"])
def test_forward_residual_is_opencvs_lk_error(simd):
    """The kernel's forward residual (mean absolute grey-level difference of the windows) is the
    error OpenCV's LK returns, where the pass succeeded; inf where it failed."""
    a = texture(200, 260, 11)
    b = moved(a, 4.2, 1.9, angle=2.0)
    b[60:140, 90:170] = 200  # a flat occluder: large residuals where windows land on it
    rng = np.random.default_rng(11)
    pts = np.stack([rng.uniform(-5, 265, 900), rng.uniform(-5, 205, 900)], 1).astype(np.float32)
    _, ok, err = lucas_kanade.lk_one_way(a, b, pts, lk_params(CONFIG))
    ours = kernel_passes(a, b, pts, simd=simd, residual=True)
    assert np.array_equal(ok, ours.forward_ok) and ok.sum() > 500 and (~ok).any()
    plain = kernel_passes(a, b, pts, simd=simd)
    assert plain.forward_residual is None  # computed only when asked
    assert np.array_equal(plain.forward, ours.forward)
    np.testing.assert_allclose(ours.forward_residual[ok], err[ok], rtol=1e-6, atol=1e-5)
    assert np.isinf(ours.forward_residual[~ok]).all() and np.isinf(err[~ok]).all()
    assert err[ok].max() > 20 > np.median(err[ok])  # it separates the occluded windows


@needs_kernel
@pytest.mark.parametrize("seed,shift", [(0, (2.3, -1.7)), (1, (7.6, 4.2)), (2, (-15.2, 9.9))])
def test_kernel_matches_opencv_on_random_textures(seed, shift):
    a = texture(240, 320, seed)
    b = moved(a, *shift, angle=1.5)
    rng = np.random.default_rng(seed)
    pts = np.stack([rng.uniform(0, 320, 1500), rng.uniform(0, 240, 1500)], 1).astype(np.float32)
    ours = assert_matches_opencv(a, b, pts)
    inner = (pts[:, 0] > 40) & (pts[:, 0] < 280) & (pts[:, 1] > 40) & (pts[:, 1] < 200) & ours.forward_ok
    # and it tracks: the landing points follow the true motion inside the image
    assert np.median(np.abs(ours.forward[inner] - pts[inner] - np.asarray(shift))) < 1.5


@needs_kernel
def test_kernel_matches_opencv_on_a_generated_scene():
    from gs_tracker_ros.synthetic.config import SceneConfig
    from gs_tracker_ros.synthetic.scene import make_scene

    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
              for f in make_scene(SceneConfig(width=320, height=240, num_frames=9, seed=3)).frames()]
    rng = np.random.default_rng(3)
    pts = np.stack([rng.uniform(-5, 325, 800), rng.uniform(-5, 245, 800)], 1).astype(np.float32)
    for k in (1, 4, 8):
        assert_matches_opencv(frames[0], frames[k], pts)


@needs_kernel
@pytest.mark.parametrize("simd", [True, False], ids=["simd", "plain-loops"])
@pytest.mark.parametrize("window,levels", [(7, 1), (9, 2), (15, 0), (21, 3), (23, 3), (31, 4)])
def test_kernel_matches_opencv_with_other_settings(window, levels, simd):
    # windows below one vector block, with one to three blocks, with and without leftover columns;
    # the AVX2 build and the plain loops (what a CPU without AVX2 runs)
    config = LKConfig(window=window, levels=levels, max_iterations=30, epsilon=0.01, min_eig_threshold=1e-4)
    a = texture(200, 260, 5)
    b = moved(a, 3.4, -2.2)
    rng = np.random.default_rng(5)
    pts = np.stack([rng.uniform(0, 260, 600), rng.uniform(0, 200, 600)], 1).astype(np.float32)
    assert_matches_opencv(a, b, pts, config, simd=simd)


@needs_kernel
def test_edge_cases_near_and_outside_the_borders_as_opencv():
    a = texture(120, 160, 7)
    b = moved(a, 4.0, 3.0)
    xs = [-40.0, -21.0, -10.5, -0.5, 0.0, 0.25, 9.9, 10.0, 149.5, 159.0, 159.9, 170.0, 181.0, 500.0]
    pts = np.array([(x, y) for x in xs for y in (-30.0, -0.3, 0.0, 60.0, 119.0, 119.9, 131.0, 200.0)], np.float32)
    pts = np.concatenate([pts, [[np.nan, 50.0], [50.0, np.inf], [3e9, 10.0], [-1e12, -1e12]]]).astype(np.float32)
    p1, st1, p0b, st2 = opencv_passes(a, b, pts)
    ours = assert_matches_opencv(a, b, pts)
    assert not ours.forward_ok[-4:].any()
    # the LKResult (what the tracker sees) agrees too
    with np.errstate(invalid="ignore"):  # inf - inf for the infinite start points
        ref = fb_result(pts, p1, st1, p0b, st2)
        res = fb_result(pts, ours.forward, ours.forward_ok, ours.backward, ours.backward_ok)
    assert np.array_equal(ref.converged, res.converged)


@needs_kernel
def test_tiny_images_smaller_than_the_window():
    a = texture(16, 16, 8)  # the smallest frame the tracker accepts; the window is 21 px
    b = moved(a, 0.6, -0.4)
    assert pyramid_levels(a.shape, 21, 3) == 1
    pts = np.array([[8.0, 8.0], [2.5, 13.2], [15.0, 0.0], [20.0, 8.0]], np.float32)
    assert_matches_opencv(a, b, pts)


@needs_kernel
def test_zero_points_and_empty_pairs():
    a = texture(64, 64, 9)
    pa = build_pyramid(a, 21, 3)
    out = forward_backward_many([(pa, pa, np.zeros((0, 2), np.float32)), (pa, pa, np.zeros((0, 2)))], settings(), 2)
    assert [p.forward.shape for p in out] == [(0, 2), (0, 2)]
    assert forward_backward_many([], settings(), 2) == []
    buf = ClipBuffer(4)
    buf.push(np.dstack([a] * 3))
    buf.push(np.dstack([a] * 3))
    src = LucasKanadeSource(CONFIG)
    est = src.estimate_many(buf, [(0, 1, np.zeros((0, 2), np.float32))])[0]
    assert est.displacement.shape == (0, 2) and est.valid.shape == (0,)
    assert src.estimate_many(buf, []) == []


@needs_kernel
def test_thread_count_and_simd_do_not_change_a_bit():
    a = texture(240, 320, 10)
    b = moved(a, -6.3, 2.8, angle=-2.0)
    rng = np.random.default_rng(10)
    pts = np.stack([rng.uniform(-10, 330, 2000), rng.uniform(-10, 250, 2000)], 1).astype(np.float32)
    ref = kernel_passes(a, b, pts, threads=1, simd=False)
    for threads, simd in ((1, True), (2, True), (3, True), (2, False)):
        got = kernel_passes(a, b, pts, threads=threads, simd=simd)
        for field in ("forward", "forward_ok", "backward", "backward_ok"):
            assert np.array_equal(getattr(ref, field), getattr(got, field)), (threads, simd, field)


@needs_kernel
def test_pyramid_levels_as_opencv():
    for h, w in ((480, 854), (16, 16), (44, 500), (45, 90), (100, 100), (300, 47)):
        for window, levels in ((21, 3), (9, 5), (15, 0)):
            img = np.zeros((h, w), np.uint8)
            max_level, _ = cv2.buildOpticalFlowPyramid(img, (window, window), levels)
            assert pyramid_levels((h, w), window, levels) == max_level + 1, (h, w, window, levels)


def _buffer(frames: list[np.ndarray]) -> ClipBuffer:
    buf = ClipBuffer(16)
    for g in frames:
        buf.push(np.dstack([g] * 3))
    return buf


@needs_kernel
def test_pyramids_are_built_once_per_frame_and_shared_by_chains(monkeypatch):
    frames = [texture(120, 160, 20)] + [moved(texture(120, 160, 20), 1.5 * i, 0.5 * i) for i in range(1, 5)]
    buf = _buffer(frames)
    src = LucasKanadeSource(CONFIG)
    assert src.batched and src.batches
    built = []
    real = lk_pyramid.build_pyramid
    monkeypatch.setattr(lk_pyramid, "build_pyramid", lambda *a, **k: built.append(1) or real(*a, **k))
    for i in range(len(frames)):
        src.on_frame(buf, i)
    assert len(built) == len(frames)
    pts = np.array([[40.0, 40.0], [80.0, 60.0], [120.0, 90.0]], np.float32)
    pairs = [(4 - k, 4, pts) for k in (1, 2, 4)]
    many = src.estimate_many(buf, pairs)
    again = [src.estimate(buf, a, b, p) for a, b, p in pairs]
    assert len(built) == len(frames)  # every chain and direction reused the cached pyramids
    assert src.pyramid(buf, 4) is src.pyramid(buf, 4)
    for x, y in zip(many, again):
        assert isinstance(x, MotionEstimate)
        assert np.array_equal(x.displacement, y.displacement) and np.array_equal(x.valid, y.valid)
        assert np.array_equal(x.variance, y.variance)


@needs_kernel
def test_batched_source_matches_the_opencv_source():
    frames = [texture(160, 200, 30)] + [moved(texture(160, 200, 30), 2.1 * i, -1.3 * i, i) for i in range(1, 9)]
    buf = _buffer(frames)
    batched, opencv = LucasKanadeSource(LKConfig(backend="batched")), LucasKanadeSource(LKConfig(backend="opencv"))
    rng = np.random.default_rng(30)
    pts = np.stack([rng.uniform(0, 200, 300), rng.uniform(0, 160, 300)], 1).astype(np.float32)
    pairs = [(8 - k, 8, pts) for k in (1, 2, 4, 8)]
    for i in range(len(frames)):
        batched.on_frame(buf, i)
        opencv.on_frame(buf, i)
    for x, y in zip(batched.estimate_many(buf, pairs), opencv.estimate_many(buf, pairs)):
        assert np.array_equal(x.valid, y.valid)
        assert np.array_equal(x.displacement, y.displacement) and np.array_equal(x.variance, y.variance)


def test_default_estimate_many_calls_estimate_per_pair():
    class Const(MotionSource):
        def estimate(self, buffer, a, b, points):
            n = len(points)
            return MotionEstimate(np.full((n, 2), b - a, np.float32), np.ones(n, np.float32), np.ones(n, bool))

    out = Const().estimate_many(None, [(0, 2, np.zeros((3, 2))), (1, 2, np.zeros((1, 2)))])
    assert [e.displacement[0, 0] for e in out] == [2, 1] and [len(e.valid) for e in out] == [3, 1]
    assert Const.batches is False
    assert LucasKanadeSource(LKConfig(backend="opencv")).batches is False


def test_backend_setting_validated_and_missing_kernel_falls_back_to_opencv(monkeypatch, caplog):
    with pytest.raises(ConfigError, match="lk.backend"):
        LKConfig(backend="cuda").validate()
    with pytest.raises(ConfigError, match="lk.threads"):
        LKConfig(threads=-1).validate()
    monkeypatch.setattr(lucas_kanade, "load_library", lambda: None)
    with caplog.at_level(logging.WARNING):
        src = LucasKanadeSource(LKConfig(backend="batched"))
    assert not src.batched and "not built" in caplog.text
    a = texture(80, 100, 40)
    buf = _buffer([a, moved(a, 1.0, 2.0)])
    src.on_frame(buf, 0)
    src.on_frame(buf, 1)
    pts = np.array([[50.0, 40.0]], np.float32)
    ref = lk_forward_backward(buf.gray(0), buf.gray(1), pts, lk_params(src.config))
    est = src.estimate(buf, 0, 1, pts)
    assert np.array_equal(est.displacement, ref.landing - pts)
    assert not LucasKanadeSource(LKConfig(backend="opencv")).batched


def test_klt_baseline_stays_on_opencv():
    from gs_tracker_ros.baselines.klt import KLTTracker
    from gs_tracker_ros.motion.config import klt_baseline_lk

    assert klt_baseline_lk().backend == "opencv"
    KLTTracker()
    with pytest.raises(ConfigError, match="klt.backend"):
        KLTTracker(LKConfig(backend="batched"))


@needs_kernel
def test_live_profile_tracks_are_the_same_with_either_backend():
    from gs_tracker_ros.core.geometry import first_grid_points
    from gs_tracker_ros.methods import make_tracker
    from gs_tracker_ros.synthetic.config import SceneConfig
    from gs_tracker_ros.synthetic.scene import make_scene
    from gs_tracker_ros.tracking.config import TrackerConfig

    frames = list(make_scene(SceneConfig(width=320, height=240, num_frames=14, seed=4)).frames())
    tracks = {}
    for backend in ("opencv", "batched"):
        config = TrackerConfig()
        config.lk.backend = backend
        tracker = make_tracker("probfuse", config)
        assert tracker.sources[0].batched == (backend == "batched")
        tracker.step(frames[0])
        tracker.add_queries(first_grid_points(320, 240, 100))
        states = [tracker.step(f) for f in frames[1:]]
        tracks[backend] = (np.stack([s.xy for s in states]), np.stack([s.visible for s in states]))
    assert np.array_equal(tracks["opencv"][0], tracks["batched"][0])
    assert np.array_equal(tracks["opencv"][1], tracks["batched"][1])


@needs_kernel
def test_pyramids_of_dropped_frames_lend_their_buffers_to_new_ones():
    import gc

    pool = PyramidPool(capacity=2)
    frames = [texture(90, 120, 50 + i) for i in range(6)]
    first = pool.build(frames[0], 21, 3)
    kept = [np.array(b) for b in first.buffers]
    old_ids = [b.ctypes.data for b in first.buffers]
    del first
    gc.collect()
    assert len(pool) == 1
    second = pool.build(frames[1], 21, 3)
    assert [b.ctypes.data for b in second.buffers] == old_ids and len(pool) == 0  # the same memory, reused
    fresh = build_pyramid(frames[1], 21, 3)
    assert all(np.array_equal(a, b) for a, b in zip(second.buffers, fresh.buffers))
    assert not all(np.array_equal(a, b) for a, b in zip(second.buffers, kept))
    pyramids = [pool.build(f, 21, 3) for f in frames]
    del pyramids
    gc.collect()
    assert len(pool) == 2  # at most `capacity` sets are kept
    small = pool.build(texture(40, 50, 60), 21, 3)  # another size: new buffers of the right shape
    assert small.buffers[0].shape == (40 + 42, 50 + 42)


@pytest.mark.parametrize("backend", ["batched", "opencv"])
def test_backward_check_doubt_checks_only_the_points_whose_chains_disagree(backend):
    if backend == "batched" and lk_native.load_library() is None:
        pytest.skip("the batched LK kernel is not built (make setup)")
    # frame i: the texture moved by i * (2.1, -1.3) px, every 3rd frame blurred (chains then differ)
    step = np.array([2.1, -1.3], np.float32)
    frames = [moved(texture(160, 200, 31), *(i * step)) for i in range(9)]
    frames = [cv2.GaussianBlur(f, (0, 0), 1.5) if i % 3 == 1 else f for i, f in enumerate(frames)]
    buf = _buffer(frames)
    rng = np.random.default_rng(31)
    pts = np.stack([rng.uniform(10, 190, 300), rng.uniform(10, 150, 300)], 1).astype(np.float32)
    # the chains of a point start from where it is on frames 7, 6, 4 and 0, and all end on frame 8
    pairs = [(8 - k, 8, pts + (8 - k) * step) for k in (1, 2, 4, 8)]
    ids = [np.arange(len(pts))] * len(pairs)
    every = LucasKanadeSource(LKConfig(backend=backend))
    # (doubt_residual off: this test is about the landings; the residual has its own test)
    doubt = LucasKanadeSource(LKConfig(backend=backend, backward_check="doubt", doubt_px=0.5, doubt_residual=255.0))
    assert doubt.batches  # the tracker hands it every chain of a frame, with the point ids
    for i in range(len(frames)):
        every.on_frame(buf, i)
        doubt.on_frame(buf, i)
    checked = every.estimate_many(buf, pairs)
    # without point ids there is nothing to compare: every chain is checked
    for x, y in zip(doubt.estimate_many(buf, pairs), checked):
        assert np.array_equal(x.variance, y.variance) and np.array_equal(x.valid, y.valid)
    skipped = doubt.estimate_many(buf, pairs, ids)
    valid = np.stack([e.valid for e in checked], 1)
    steady = valid.all(axis=1)  # all four chains valid when checked: the forward landings are known
    landing = np.stack([p + e.displacement for (_, _, p), e in zip(pairs, checked)], 1)  # (N, 4, 2)
    spread = np.linalg.norm(landing - landing.mean(axis=1, keepdims=True), axis=2)
    agree = steady & (spread <= 0.5).all(axis=1)
    apart = steady & ~(spread <= 0.5).all(axis=1)
    assert agree.sum() > 50 and apart.sum() > 10, (agree.sum(), apart.sum())
    for c, (x, y) in enumerate(zip(skipped, checked)):
        # the same forward passes
        assert np.array_equal(x.displacement[steady], y.displacement[steady])
        # agreeing chains: no backward pass, e = the distance to the mean landing
        assert x.valid[agree].all()
        np.testing.assert_allclose(x.variance[agree], 0.5**2 + spread[agree, c] ** 2, rtol=1e-5, atol=1e-6)
        # chains of a point in doubt: checked backwards exactly as always
        assert np.array_equal(x.variance[apart], y.variance[apart]) and np.array_equal(x.valid[apart], y.valid[apart])
    with pytest.raises(ConfigError, match="backward_check"):
        LKConfig(backward_check="some").validate()


@pytest.mark.parametrize("backend", ["batched", "opencv"])
def test_doubt_residual_checks_agreeing_chains_whose_windows_changed(backend):
    """Chains that agree on an occluder are not trusted unchecked: with lk.doubt_residual a point
    whose forward window changed by more than that many grey levels is checked backwards."""
    if backend == "batched" and lk_native.load_library() is None:
        pytest.skip("the batched LK kernel is not built (make setup)")
    step = np.array([1.6, 0.9], np.float32)
    frames = [moved(texture(160, 200, 41), *(i * step)) for i in range(5)]
    last = frames[4].copy()
    cover = np.zeros(last.shape, bool)
    cover[:, 100:] = True
    last[cover] = moved(texture(160, 200, 42), 0, 0)[cover]  # a new textured surface on the right half
    frames[4] = last
    buf = _buffer(frames)
    rng = np.random.default_rng(41)
    pts = np.stack([rng.uniform(20, 180, 300), rng.uniform(20, 140, 300)], 1).astype(np.float32)
    pairs = [(4 - k, 4, pts + (4 - k) * step) for k in (1, 2, 4)]
    ids = [np.arange(len(pts))] * len(pairs)
    sources = {name: LucasKanadeSource(LKConfig(backend=backend, backward_check=check, doubt_px=100.0,
                                                doubt_residual=residual))
               for name, check, residual in [("all", "all", 255.0), ("agree", "doubt", 255.0),
                                             ("changed", "doubt", 10.0)]}
    for src in sources.values():
        for i in range(len(frames)):
            src.on_frame(buf, i)
    out = {name: src.estimate_many(buf, pairs, ids) for name, src in sources.items()}
    _, _, err = lucas_kanade.lk_one_way(frames[3], frames[4], pairs[0][2], lk_params(LKConfig()))
    changed = np.isfinite(err) & (err > 10.0)
    assert changed.sum() > 20 and (~changed).sum() > 20
    # with doubt_px 100 every chain agrees: only the residual sends a point back
    for e_all, e_changed in zip(out["all"], out["changed"]):
        assert np.array_equal(e_all.variance[changed], e_changed.variance[changed])
    assert sum(np.array_equal(a.variance[changed], b.variance[changed])
               for a, b in zip(out["all"], out["agree"])) < len(pairs)  # without it they were not checked
    with pytest.raises(ConfigError, match="doubt_residual"):
        LKConfig(doubt_residual=300.0).validate()
