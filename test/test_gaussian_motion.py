"""GaussianMotionSource on hand-built Gaussian clips with known motion."""

from __future__ import annotations

import math

import cv2

import numpy as np
import pytest
import torch

from gs_tracker_ros.core.clip_buffer import ClipBuffer
from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.model.gaussians import GaussianClip
from gs_tracker_ros.motion.gaussian import GaussianMotionSource, splat_weights
from gs_tracker_ros.render.camera import Camera

T, H, W = 4, 32, 32


class FakeEncoder:
    """Returns a fixed GaussianClip; counts calls. Gaussians given in encoder pixels."""

    num_frames = T
    input_size = (H, W)

    def __init__(self, uv_per_frame, depth, opacity, sigma_px=2.0):
        uv = torch.tensor(uv_per_frame, dtype=torch.float32)  # (T, N, 2) continuous px
        n = uv.shape[1]
        cam = Camera.default(H, W)
        z = torch.tensor(depth, dtype=torch.float32)[None].expand(T, n)
        self.clip = GaussianClip(
            means=cam.unproject(uv, z)[None],
            quats=torch.tensor([1.0, 0, 0, 0]).expand(1, n, 4).clone(),
            log_scales=torch.log(sigma_px * torch.tensor(depth, dtype=torch.float32) / cam.fx)[None, :, None]
            .expand(1, n, 3).clone(),
            opacities=torch.tensor(opacity, dtype=torch.float32)[None],
            colors=torch.full((1, T, n, 3), 0.5),
            height=H, width=W,
        )
        self.calls = 0

    def __call__(self, clip: np.ndarray) -> GaussianClip:
        assert clip.shape == (T, H, W, 3) and clip.dtype == np.uint8
        self.calls += 1
        return self.clip


def _buffer(n_frames=T, scale=1):
    buf = ClipBuffer(capacity=8)
    for i in range(n_frames):
        buf.push(np.full((H * scale, W * scale, 3), 10 * i, np.uint8))
    return buf


def _moving(dx_per_frame=3.0):
    # Gaussian 0 starts at continuous (10.5, 12.5) = package pixel (10, 12) and moves right;
    # Gaussian 1 is static and far away.
    return [[[10.5 + dx_per_frame * t, 12.5], [26.5, 26.5]] for t in range(T)]


def test_exact_displacement_of_a_single_gaussian():
    enc = FakeEncoder(_moving(3.0), [1.0, 1.0], [0.99, 0.99])
    src = GaussianMotionSource(enc, s_bg=10.0, s0=0.0)
    buf = _buffer()
    est = src.estimate(buf, 0, 3, np.array([[10.0, 12.0]], np.float32))
    np.testing.assert_allclose(est.displacement, [[9.0, 0.0]], atol=1e-4)
    # all weight on one Gaussian: spread term 0, background term s_bg^2 (1 - A) with A = 0.99
    np.testing.assert_allclose(est.variance, [100.0 * 0.01], rtol=1e-4)
    assert est.valid.tolist() == [True]
    # backwards (b < a) gives the opposite motion
    est = src.estimate(buf, 2, 1, np.array([[16.0, 12.0]], np.float32))
    np.testing.assert_allclose(est.displacement, [[-3.0, 0.0]], atol=1e-4)
    assert enc.calls == 1  # one encoder pass per window, shared by all calls


def test_scaled_back_to_full_resolution():
    enc = FakeEncoder(_moving(2.0), [1.0, 1.0], [0.99, 0.99])
    src = GaussianMotionSource(enc, s_bg=0.0, s0=0.0)
    buf = _buffer(scale=2)  # frames are 64x64, encoder works at 32x32
    # package pixel of the Gaussian centre at full resolution: (10.5 * 2 - 0.5, 12.5 * 2 - 0.5)
    est = src.estimate(buf, 0, 1, np.array([[20.5, 24.5]], np.float32))
    np.testing.assert_allclose(est.displacement, [[4.0, 0.0]], atol=1e-4)
    assert est.valid.all()


def _stacked():
    # Two Gaussians on the same spot; front (depth 1, opacity 0.6) moves +4 px/frame in x,
    # back (depth 2, opacity 0.5) is static.
    uv = [[[8.5 + 4.0 * t, 8.5], [8.5, 8.5]] for t in range(T)]
    return FakeEncoder(uv, [1.0, 2.0], [0.6, 0.5])


def test_variance_formula_with_two_layers():
    s_bg, s0 = 5.0, 0.5
    src = GaussianMotionSource(_stacked(), s_bg=s_bg, s0=s0)
    est = src.estimate(_buffer(), 0, 1, np.array([[8.0, 8.0]], np.float32))
    w = np.array([0.6, 0.4 * 0.5])  # front-to-back splat weights at the shared centre
    a = w.sum()
    d = (w[0] * 4.0 + w[1] * 0.0) / a
    np.testing.assert_allclose(est.displacement, [[d, 0.0]], rtol=1e-5)
    s2 = (w[0] * (4.0 - d) ** 2 + w[1] * d**2) / a + s_bg**2 * (1 - a) + s0**2
    np.testing.assert_allclose(est.variance, [s2], rtol=1e-5)
    assert est.valid.all()  # A = 0.8 >= 0.5


def test_uncovered_or_faint_points_are_invalid():
    src = GaussianMotionSource(FakeEncoder(_moving(), [1.0, 1.0], [0.99, 0.3]), s_bg=7.0, s0=0.0)
    est = src.estimate(_buffer(), 0, 1, np.array([[2.0, 28.0], [26.0, 26.0]], np.float32))
    assert est.valid.tolist() == [False, False]  # nothing there / A = 0.3 < tau_vis
    np.testing.assert_allclose(est.variance[0], 49.0, rtol=1e-5)


def test_occluded_point_is_invalid():
    # Gaussian 0: static background (depth 2). Gaussian 1: opaque, in front (depth 1), slides over it.
    uv = [[[8.5, 8.5], [24.5 - 8.0 * t, 8.5]] for t in range(T)]
    src = GaussianMotionSource(FakeEncoder(uv, [2.0, 1.0], [0.99, 0.99]), s0=0.0, tau_occ=0.5)
    buf = _buffer()
    p = np.array([[8.0, 8.0]], np.float32)
    est = src.estimate(buf, 0, 1, p)  # front Gaussian still 8 px away: visible
    assert est.valid.all()
    np.testing.assert_allclose(est.displacement, [[0.0, 0.0]], atol=1e-4)
    est = src.estimate(buf, 0, 2, p)  # front Gaussian now covers the point: occluded
    assert not est.valid.any()
    est = GaussianMotionSource(FakeEncoder(uv, [2.0, 1.0], [0.99, 0.99]), s0=0.0, tau_occ=0.0).estimate(buf, 0, 2, p)
    assert est.valid.all()  # bare formula (no occlusion check) only looks at frame a


def test_splat_weights_stop_when_transmittance_is_spent():
    # two opaque Gaussians on one spot: the back one is cut off (transmittance would drop to 1e-4)
    mean = torch.tensor([[4.5, 4.5], [4.5, 4.5]])
    conic = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    w = splat_weights(torch.tensor([[4.5, 4.5]]), mean, conic, torch.tensor([0.99, 0.99]), torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.99]]))
    w = splat_weights(torch.tensor([[4.5, 4.5]]), mean, conic, torch.tensor([0.5, 0.8]), torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(w, torch.tensor([[0.2 * 0.5, 0.8]]))


def test_pairs_outside_the_window_are_invalid():
    enc = FakeEncoder(_moving(), [1.0, 1.0], [0.99, 0.99])
    src = GaussianMotionSource(enc, s_bg=3.0, s0=0.0)
    buf = _buffer(n_frames=7)  # window = frames 3..6
    est = src.estimate(buf, 1, 6, np.array([[10.0, 12.0]], np.float32))
    assert not est.valid.any() and np.all(est.displacement == 0)
    assert enc.calls == 0
    est = src.estimate(buf, 3, 6, np.array([[10.0, 12.0]], np.float32))
    assert est.valid.all()


def test_start_of_stream_pads_the_window():
    enc = FakeEncoder(_moving(), [1.0, 1.0], [0.99, 0.99])
    src = GaussianMotionSource(enc)
    est = src.estimate(_buffer(n_frames=2), 0, 1, np.zeros((3, 2), np.float32))
    assert est.displacement.shape == (3, 2) and est.variance.shape == (3,) and est.valid.shape == (3,)
    assert enc.calls == 1


def test_anchor_variant_formula():
    beta, tau = 0.3, 0.5
    src = GaussianMotionSource(_stacked(), mode="anchor", k=8, tau_vis=tau, beta=beta, s0=0.0)
    p = np.array([[8.0, 8.0]], np.float32)
    est = src.estimate(_buffer(), 0, 2, p)
    w = np.array([0.6, 0.2])
    xb = np.array([[8.5 + 8.0, 8.5], [8.5, 8.5]])  # continuous px of both centres at frame 2
    d = (w[0] * 8.0) / w.sum()
    p_anchor = (w[:, None] * xb).sum(0) / w.sum()
    expect = (1 - beta) * (p[0] + 0.5 + [d, 0.0]) + beta * p_anchor - (p[0] + 0.5)
    np.testing.assert_allclose(est.displacement[0], expect, rtol=1e-5, atol=1e-5)
    assert est.valid.all()
    # k = 1 keeps only the front Gaussian: mass 0.6 still >= 0.5; with tau 0.7 -> anchors only, invalid
    src = GaussianMotionSource(_stacked(), mode="anchor", k=1, tau_vis=0.7, beta=beta, s0=0.0)
    est = src.estimate(_buffer(), 0, 2, p)
    np.testing.assert_allclose(est.displacement[0], xb[0] - (p[0] + 0.5), atol=1e-5)
    assert not est.valid.any()


def test_bad_mode_rejected():
    with pytest.raises(ConfigError):
        GaussianMotionSource(_stacked(), mode="dense")


def test_runs_on_a_real_tiny_model():
    from gs_tracker_ros.engines.torch_engine import TorchEngine
    from gs_tracker_ros.model.gmae import GMAE, ModelConfig

    torch.manual_seed(0)
    model = GMAE(ModelConfig(img_size=32, num_frames=4, enc_dim=32, enc_depth=1, enc_heads=2, dec_dim=32,
                             dec_depth=1, dec_heads=2, gaussian_grid=4))
    src = GaussianMotionSource(TorchEngine(model))
    buf = ClipBuffer(8)
    rng = np.random.default_rng(0)
    for _ in range(5):
        buf.push(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
    est = src.estimate(buf, 1, 4, rng.uniform(0, 39, (10, 2)).astype(np.float32))
    assert np.isfinite(est.displacement).all() and np.isfinite(est.variance).all()
    assert (est.variance >= 1.0 - 1e-6).all()  # s0 = 1 px floor
    assert math.isclose(float(np.abs(est.displacement).max()), 0.0, abs_tol=1e-4)  # untrained: static


# ---------------------------------------------------------------- cost: one encoder pass per window
class CountingEngine:
    """Wraps an encoder; counts its calls and records the first frame index of every clip it saw."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.num_frames, self.input_size = encoder.num_frames, encoder.input_size
        self.calls = 0

    def __call__(self, clip):
        self.calls += 1
        return self.encoder(clip)


def _tiny_encoder(img_size=32, num_frames=8):
    from gs_tracker_ros.engines.torch_engine import TorchEngine
    from gs_tracker_ros.model.gmae import GMAE, ModelConfig

    torch.manual_seed(0)
    model = GMAE(ModelConfig(img_size=img_size, num_frames=num_frames, enc_dim=32, enc_depth=1, enc_heads=2,
                             dec_dim=32, dec_depth=1, dec_heads=2, gaussian_grid=4))
    with torch.no_grad():  # an untrained model predicts no motion: give the Gaussians some
        model.head_delta.weight.normal_(0.0, 0.05)
    return TorchEngine(model)


def _scene_frames(n=24, w=96, h=64):
    from gs_tracker_ros.synthetic.config import SceneConfig
    from gs_tracker_ros.synthetic.scene import make_scene

    return list(make_scene(SceneConfig(width=w, height=h, num_frames=n, num_layers=2, seed=3,
                                       exit_reenter=False)).frames())


def test_encoder_runs_once_per_window_over_a_stream():
    from gs_tracker_ros.tracking.config import TrackerConfig
    from gs_tracker_ros.tracking.tracker import ProbabilisticTracker
    from gs_tracker_ros.motion.lucas_kanade import LucasKanadeSource
    from gs_tracker_ros.core.geometry import first_grid_points

    frames = _scene_frames(n=24)
    counts = {}
    for hop in (1, 4, 7):
        engine = CountingEngine(_tiny_encoder())
        source = GaussianMotionSource(engine, window_hop=hop)
        tracker = ProbabilisticTracker(TrackerConfig(sources=("lk", "gmae")), sources=[LucasKanadeSource(), source])
        tracker.step(frames[0])
        tracker.add_queries(first_grid_points(96, 64, 256))
        for f in frames[1:]:
            tracker.step(f)
        counts[hop] = engine.calls
        assert source.encoder_calls == engine.calls
    # frames 1..23 ask for motion; a window ends on every frame e with e % hop == 0
    assert counts == {1: 23, 4: len(range(4, 24, 4)), 7: len(range(7, 24, 7))}


def test_motion_inside_a_window_is_the_same_as_with_a_pass_per_frame():
    frames = _scene_frames(n=20)
    hop = 4
    per_frame = GaussianMotionSource(_tiny_encoder(), window_hop=1)
    windowed = GaussianMotionSource(_tiny_encoder(), window_hop=hop)
    buf = ClipBuffer(capacity=10)
    pts = np.random.default_rng(1).uniform([0, 0], [95, 63], (256, 2)).astype(np.float32)
    at_window_end = {}  # (a, b) -> the per-frame source's answer when b was the newest frame
    compared = 0
    for t, f in enumerate(frames):
        buf.push(f)
        for k in (1, 3, 7):
            if t - k < 0:
                continue
            ref = per_frame.estimate(buf, t - k, t, pts)
            got = windowed.estimate(buf, t - k, t, pts)
            if t % hop == 0:  # a window ends here: the same encoder input, the same motion
                np.testing.assert_array_equal(got.displacement, ref.displacement)
                np.testing.assert_array_equal(got.variance, ref.variance)
                np.testing.assert_array_equal(got.valid, ref.valid)
                at_window_end[(t - k, t)] = ref
                compared += 1
            else:  # between windows the source abstains
                assert not got.valid.any() and not got.displacement.any()
        end = windowed.window_end(t)
        if t % hop and (end - 3, end) in at_window_end:  # older pairs of the last window: reused, no new pass
            calls = windowed.encoder_calls
            got = windowed.estimate(buf, end - 3, end, pts)
            np.testing.assert_array_equal(got.displacement, at_window_end[(end - 3, end)].displacement)
            assert windowed.encoder_calls == calls
    assert compared >= 10
    assert windowed.encoder_calls == len(range(hop, 20, hop))
    assert per_frame.encoder_calls == 19
    assert max(np.abs(r.displacement).max() for r in at_window_end.values()) > 0.1  # not all zero motion


def test_window_hop_is_checked():
    with pytest.raises(ConfigError, match="window_hop"):
        GaussianMotionSource(_stacked(), window_hop=T)
    with pytest.raises(ConfigError, match="window_hop"):
        GaussianMotionSource(_stacked(), window_hop=0)


def test_bench_reports_the_sources_own_cost_alone_and_fused():
    from gs_tracker_ros.evaluation.encoder_bench import bench_gaussian_tracking, format_encoder_table

    engine = _tiny_encoder()
    frames = _scene_frames(n=13)
    res = bench_gaussian_tracking(engine, frames, num_points=256, warmup=2)
    assert set(res) == {"alone", "fused"}
    assert res["alone"]["window_hop"] == 1 and res["alone"]["encoder_calls"] == 12
    hop = res["fused"]["window_hop"]
    assert hop == engine.num_frames // 2 and res["fused"]["encoder_calls"] == len(range(hop, 13, hop))
    for r in res.values():
        assert r["points"] == 256 and r["frames"] == 12
        assert r["source_ms_per_frame"] > 0.0 and r["fps_median"] > 0.0
    table = format_encoder_table({"torch": {"ms_per_clip_median": 1.0, "ms_per_clip_p90": 2.0, "ratio_vs_torch": 1.0}},
                                 {"torch": res})
    assert f"(hop {hop})" in table and "(hop 1)" in table


# ---------------------------------------------------------------- non-square model input
class TranslationOracle:
    """A non-square "encoder" for a scene that translates by ``step_px`` (full-res px per frame):
    a grid of Gaussians that moves by the same motion converted to model pixels, x and y apart."""

    num_frames = 4

    def __init__(self, model_hw, full_hw, step_px):
        self.input_size = model_hw
        (mh, mw), (fh, fw) = model_hw, full_hw
        self.step_model = (step_px[0] * mw / fw, step_px[1] * mh / fh)
        self.clips = []

    def __call__(self, clip):
        mh, mw = self.input_size
        assert clip.shape == (self.num_frames, mh, mw, 3)
        self.clips.append(clip)
        gx, gy = np.meshgrid(np.arange(2, mw, 4) + 0.5, np.arange(2, mh, 4) + 0.5)
        uv0 = np.stack([gx.ravel(), gy.ravel()], 1)
        uv = [[list(p + np.multiply(self.step_model, t)) for p in uv0] for t in range(self.num_frames)]
        n = len(uv0)
        cam = Camera.default(mh, mw)
        z = torch.ones(self.num_frames, n)
        return GaussianClip(
            means=cam.unproject(torch.tensor(uv, dtype=torch.float32), z)[None],
            quats=torch.tensor([1.0, 0, 0, 0]).expand(1, n, 4).clone(),
            log_scales=torch.full((1, n, 3), float(np.log(2.5 / cam.fx))),
            opacities=torch.full((1, n), 0.9), colors=torch.full((1, self.num_frames, n, 3), 0.5),
            height=mh, width=mw)


def _translation_scene(n, full_hw, step_px, seed=0):
    """Frames of a textured plane translating by ``step_px`` per frame; exact tracks of any point."""
    from gs_tracker_ros.synthetic.texture import make_texture

    fh, fw = full_hw
    tex = make_texture(fh + 64, fw + 64, np.random.default_rng(seed)).round().astype(np.uint8)
    frames = []
    for t in range(n):
        m = np.float32([[1, 0, 32 - step_px[0] * t], [0, 1, 32 - step_px[1] * t]])  # frame px -> texture px
        frames.append(cv2.warpAffine(tex, m, (fw, fh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    return frames


def test_non_square_model_gives_full_resolution_displacement():
    full_hw, model_hw, step = (96, 160), (32, 48), (2.5, -1.5)  # x scale 0.3, y scale 1/3: not alike
    frames = _translation_scene(6, full_hw, step)
    oracle = TranslationOracle(model_hw, full_hw, step)
    src = GaussianMotionSource(oracle, s0=0.0, tau_occ=0.0)
    assert src.input_size == model_hw
    buf = ClipBuffer(capacity=8)
    for f in frames:
        buf.push(f)
    pts = np.random.default_rng(2).uniform([8, 8], [150, 86], (64, 2)).astype(np.float32)
    for a, b in [(2, 5), (5, 3), (4, 5)]:
        est = src.estimate(buf, a, b, pts)
        truth = np.float32(step) * (b - a)  # exact ground truth in full-resolution px
        ok = est.valid
        assert ok.mean() > 0.9
        np.testing.assert_allclose(est.displacement[ok], np.broadcast_to(truth, (ok.sum(), 2)), atol=1e-4)
    # the encoder saw the full frames resized to its H x W
    np.testing.assert_array_equal(oracle.clips[0][-1], cv2.resize(frames[5], (48, 32), interpolation=cv2.INTER_AREA))
