"""Synthetic scenes: rendering, exact ground truth, occlusion and exit/re-entry, determinism."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.errors import ConfigError, InputError
from gs_tracker_ros.synthetic import (
    SceneConfig,
    default_demo_scene,
    make_occlusion_reveal_scene,
    make_scene,
    make_training_sequences,
)
from gs_tracker_ros.synthetic.motion import apply_affines

SMALL = SceneConfig(width=320, height=180, num_frames=40, noise_std=0.0, seed=3)


@pytest.fixture(scope="module")
def small():
    return make_scene(SMALL)


@pytest.fixture(scope="module")
def occl():
    return make_occlusion_reveal_scene()


def _sample(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear RGB samples (N, 3) of a float image at points (N, 2)."""
    xy = xy.astype(np.float32)
    return cv2.remap(img, xy[:, 0:1], xy[:, 1:2], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[:, 0]


def _deep(ids: np.ndarray, margin: int = 2) -> np.ndarray:
    """Pixels whose (2m+1)^2 neighbourhood lies inside the image and in a single layer."""
    k = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
    deep = cv2.erode(ids, k) == cv2.dilate(ids, k)
    deep[:margin] = deep[-margin:] = False
    deep[:, :margin] = deep[:, -margin:] = False
    return deep


def test_config_validation():
    with pytest.raises(ConfigError):
        SceneConfig(texture="plaid")
    with pytest.raises(ConfigError):
        SceneConfig(width=8)
    with pytest.raises(ConfigError):
        SceneConfig(num_layers=0, exit_reenter=True)
    assert SceneConfig().width * SceneConfig().height >= 640 * 360


def test_render_shapes(small):
    img = small.render(0)
    assert img.shape == (180, 320, 3) and img.dtype == np.uint8
    assert img.std() > 20  # textured, not flat
    ids = small.layer_ids(0)
    assert ids.shape == (180, 320) and ids.min() >= 0 and ids.max() <= SMALL.num_layers
    assert len(np.unique(ids)) >= 3  # background plus some foreground layers in view
    assert sum(1 for _ in small.frames()) == SMALL.num_frames
    with pytest.raises(InputError):
        small.render(SMALL.num_frames)


def _assert_render_matches_texture(scene, frames) -> None:
    """A rendered pixel deep inside a layer equals that layer's texture at the inverse-warped
    point, up to uint8 rounding (OpenCV 5 remaps float images at exact float positions)."""
    for t in frames:
        ids = scene.layer_ids(t)
        img = scene.render(t).astype(np.float64)
        ys, xs = np.nonzero(_deep(ids))
        pick = np.random.default_rng(t).choice(xs.size, 500, replace=False)
        xy = np.stack([xs[pick], ys[pick]], 1).astype(np.float64)
        for lid in np.unique(ids[ys[pick], xs[pick]]):
            layer = scene.layers[int(lid)]
            sel = ids[ys[pick], xs[pick]] == lid
            uv = apply_affines(layer.to_texture[t], xy[sel])
            want = np.stack([_bilinear_channel(layer.texture[..., c], uv) for c in range(3)], 1)
            err = np.abs(img[ys[pick][sel], xs[pick][sel]] - want)
            assert err.max() < 0.51, (t, lid, err.max())


def test_render_matches_texture_exactly(small):
    _assert_render_matches_texture(small, (0, 17, 39))


def _bilinear_channel(ch: np.ndarray, uv: np.ndarray) -> np.ndarray:
    from gs_tracker_ros.synthetic.layers import bilinear

    return bilinear(ch, uv)


def test_track_query_frame_and_layers(small):
    q = small.sample_queries(50, frame=10, seed=0)
    tracks, vis = small.track(q, np.full(len(q), 10))
    assert tracks.shape == (50, SMALL.num_frames, 2) and vis.shape == (50, SMALL.num_frames)
    np.testing.assert_array_equal(tracks[:, 10], q)
    assert vis[:, 10].all()
    ids = small.layer_ids(10)
    np.testing.assert_array_equal(small.query_layers(q, 10), ids[q[:, 1].astype(int), q[:, 0].astype(int)])


def test_gt_colour_follows_the_point(small):
    """The colour at the GT position matches the query pixel's colour wherever the point is visible."""
    q = np.concatenate([small.sample_queries(300, 0, seed=1), small.sample_queries(300, 25, seed=2)])
    qf = np.repeat([0, 25], [300, 300])
    lid = small.query_layers(q, qf)
    tracks, vis = small.track(q, qf)
    frames = [small.render(t).astype(np.float32) for t in range(SMALL.num_frames)]
    ref = np.stack([frames[f][int(y), int(x)] for (x, y), f in zip(q, qf)])
    errs = []
    for t in range(SMALL.num_frames):
        ids = small.layer_ids(t)
        deep = _deep(ids)
        xy = tracks[vis[:, t], t]
        xi = np.clip(np.round(xy[:, 0]).astype(int), 0, SMALL.width - 1)
        yi = np.clip(np.round(xy[:, 1]).astype(int), 0, SMALL.height - 1)
        inner = deep[yi, xi] & (ids[yi, xi] == lid[vis[:, t]])  # away from any layer edge
        e = np.abs(_sample(frames[t], xy) - ref[vis[:, t]]).max(axis=1)
        errs.append(e[inner])
    e = np.concatenate(errs)
    assert e.size > 10_000
    # residual = bilinear interpolation of an already resampled image (rotation/zoom); no drift
    assert np.median(e) < 2.0 and np.percentile(e, 95) < 8.0 and np.percentile(e, 99.9) < 40.0


def test_visibility_agrees_with_layer_ids(small):
    q = small.sample_queries(400, 5, seed=4)
    lid = small.query_layers(q, 5)
    tracks, vis = small.track(q, np.full(len(q), 5))
    agree = []
    for t in range(SMALL.num_frames):
        ids = small.layer_ids(t)
        x, y = tracks[:, t, 0], tracks[:, t, 1]
        inb = (x >= -0.5) & (x < SMALL.width - 0.5) & (y >= -0.5) & (y < SMALL.height - 0.5)
        on_top = ids[np.round(y[inb]).astype(int), np.round(x[inb]).astype(int)] == lid[inb]
        agree.append(on_top == vis[inb, t])
        assert not vis[~inb, t].any()
    agree = np.concatenate(agree)
    assert agree.mean() > 0.99  # disagreements only where rounding to a pixel crosses an edge
    assert 0.05 < 1 - vis.mean() < 0.95  # there are occlusions, and not only occlusions


def test_occluder_hides_and_reveals_patch(occl):
    s = occl.scene
    assert len(occl.hidden) >= 20
    assert occl.reveal_frame >= occl.hidden.stop
    assert occl.displacement_px > 60  # it comes out somewhere else
    q = occl.patch_queries
    assert len(q) > 100
    assert (s.query_layers(q, 0) == occl.patch_id).all()
    tracks, vis = s.track(q, np.zeros(len(q), np.int64))
    assert vis[:, 0].all()
    assert not vis[:, occl.hidden.start : occl.hidden.stop].any()
    assert vis[:, occl.reveal_frame].all()
    # each point is hidden for one contiguous stretch: visible -> hidden -> visible
    flips = np.abs(np.diff(vis.astype(np.int8), axis=1)).sum(axis=1)
    assert (flips == 2).all()
    # the occluder's layer is what covers it, and the patch kept moving while hidden
    mid = (occl.hidden.start + occl.hidden.stop) // 2
    ids = s.layer_ids(mid)
    xi, yi = np.round(tracks[:, mid]).astype(int).T
    assert (ids[yi, xi] == occl.occluder_id).all()
    assert np.linalg.norm(tracks[:, occl.hidden.stop - 1] - tracks[:, occl.hidden.start], axis=1).min() > 40


def test_layer_leaves_and_reenters(small):
    top = len(small.layers) - 1
    assert small.layers[top].name.endswith("_exit")
    q = small.sample_queries(100, 0, seed=5, layers=[top])
    assert len(q) > 20
    tracks, vis = small.track(q, np.zeros(len(q), np.int64))
    x, y = tracks[..., 0], tracks[..., 1]
    outside = (x < -0.5) | (x >= SMALL.width - 0.5) | (y < -0.5) | (y >= SMALL.height - 0.5)
    all_out = outside.all(axis=0)
    assert all_out.sum() >= 5  # the whole layer is out of view for several frames
    first_out = int(np.argmax(all_out))
    mid_out = first_out + int(all_out[first_out:].argmin()) // 2
    np.testing.assert_array_equal(vis, ~outside)  # topmost layer: visible <=> inside the image
    assert vis[:, first_out:].any(axis=1).all()  # ... and every point comes back
    assert vis[:, -1].all()
    assert not (small.layer_ids(mid_out) == top).any()


def test_determinism():
    cfg = SceneConfig(width=160, height=96, num_frames=12, seed=11, noise_std=2.0)
    a, b = make_scene(cfg), make_scene(cfg)
    for t in (0, 7, 11):
        np.testing.assert_array_equal(a.render(t), b.render(t))
    # render order does not matter (noise is seeded per frame)
    f7 = a.render(7)
    a.render(2)
    np.testing.assert_array_equal(a.render(7), f7)
    q = a.sample_queries(30, 3, seed=0)
    np.testing.assert_array_equal(a.track(q, 3)[0], b.track(q, 3)[0])
    c = make_scene(SceneConfig(width=160, height=96, num_frames=12, seed=12, noise_std=2.0))
    assert np.abs(c.render(0).astype(int) - a.render(0)).mean() > 10


def test_noise_and_texture_kinds():
    base = dict(width=160, height=96, num_frames=4, seed=2)
    clean = make_scene(SceneConfig(**base, noise_std=0.0)).render(1).astype(float)
    noisy = make_scene(SceneConfig(**base, noise_std=3.0)).render(1).astype(float)
    assert 1.5 < np.abs(noisy - clean).mean() < 4.0
    low = make_scene(SceneConfig(**base, texture="lowtex", noise_std=0.0)).render(0).astype(float)
    ids = make_scene(SceneConfig(**base, texture="lowtex", noise_std=0.0)).layer_ids(0)
    bg = ids == 0
    assert low[bg].std(axis=0).max() < 15 < clean[bg].std(axis=0).max()
    assert make_scene(SceneConfig(**base, texture="noise")).render(0).std() > 20


def test_invalid_queries(small):
    with pytest.raises(InputError):
        small.track(np.zeros((3, 3)), np.zeros(3, int))
    with pytest.raises(InputError):
        small.track(np.zeros((3, 2)), np.full(3, SMALL.num_frames))
    with pytest.raises(InputError):
        small.track(np.zeros((2, 2)), np.array([0.5, 1.0]))
    t, v = small.track(np.zeros((0, 2)), np.zeros(0, int))
    assert t.shape == (0, SMALL.num_frames, 2) and v.shape == (0, SMALL.num_frames)


def test_demo_scene_generation_speed():
    """The 640x360, 120-frame demo renders quickly (timing printed, not asserted)."""
    t0 = time.perf_counter()
    scene = default_demo_scene()
    t1 = time.perf_counter()
    n = 0
    for img in scene.frames():
        assert img.shape == (360, 640, 3)
        n += 1
    t2 = time.perf_counter()
    assert n == 120
    print(f"\ndemo scene: build {t1 - t0:.2f} s, render 120 frames {t2 - t1:.2f} s")


def test_training_sequences():
    clips = make_training_sequences(3, width=96, height=64, num_frames=8, seed=1)
    assert len(clips) == 3
    for c in clips:
        assert c.shape == (8, 64, 96, 3) and c.dtype == np.uint8 and c.std() > 5
    again = make_training_sequences(1, width=96, height=64, num_frames=8, seed=1)
    np.testing.assert_array_equal(again[0], clips[0])


# ---------------------------------------------------------------- real-frame textures
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis_unlabeled"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"no real frames at {REAL}")


@pytest.fixture(scope="module")
def real_small():
    # the repository-relative name, as in the training config
    return make_scene(replace(SMALL, real_textures="../shared/data/davis_unlabeled",
                              real_textures_exclude=("goat",), real_texture_share=1.0))


def test_real_crop_textures_come_from_the_frames(tmp_path):
    from gs_tracker_ros.synthetic.real_textures import RealTexturePool

    colours = {"seq_a": (200, 30, 30), "seq_b": (30, 200, 30), "held": (30, 30, 200)}
    for name, rgb in colours.items():
        (tmp_path / name).mkdir()
        for i in range(3):  # a flat colour per sequence, with a brightness step per frame
            frame = np.zeros((90, 160, 3), np.uint8) + np.uint8(rgb) // (i + 1)
            cv2.imwrite(str(tmp_path / name / f"{i:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    pool = RealTexturePool(tmp_path, exclude=["held"])
    assert len(pool) == 6 and {p.parent.name for p in pool.files} == {"seq_a", "seq_b"}
    scene = make_scene(replace(SMALL, real_textures=str(tmp_path), real_textures_exclude=("held",)))
    allowed = np.array([np.uint8(rgb) // (i + 1) for rgb in list(colours.values())[:2] for i in range(3)], float)
    for layer in scene.layers:  # every layer (share 1.0) is a crop of one training frame, never "held"
        mean = layer.texture.reshape(-1, 3).mean(0)
        assert np.abs(allowed - mean).max(1).min() < 3.0, mean
    mixed = make_scene(replace(SMALL, real_textures=str(tmp_path), real_texture_share=0.0))
    assert all(layer.texture.std() > 5 for layer in mixed.layers)  # share 0: procedural only
    with pytest.raises(InputError, match="real-texture folder does not exist"):
        make_scene(replace(SMALL, real_textures=str(tmp_path / "nope")))
    with pytest.raises(InputError, match="no image frames"):
        RealTexturePool(tmp_path, exclude=["seq_a", "seq_b", "held"])
    with pytest.raises(ConfigError):
        replace(SMALL, real_texture_share=1.5)


@needs_real
def test_real_davis_crops_texture_a_scene(real_small):
    from gs_tracker_ros.synthetic.real_textures import texture_pool

    pool = texture_pool("../shared/data/davis_unlabeled", ("goat",))
    assert len(pool) >= 10 and not any(p.parent.name == "goat" for p in pool.files)
    img = real_small.render(0)
    assert img.shape == (180, 320, 3) and img.std() > 20


@needs_real
def test_ground_truth_stays_exact_with_real_crop_textures(real_small):
    """Rendered pixels equal the layer texture at the GT inverse warp; GT tracks keep the colour."""
    scene = real_small
    _assert_render_matches_texture(scene, (0, 21, 39))
    # tracks: a point's texture coordinate is the same in every frame it is visible in
    q = scene.sample_queries(300, 0, seed=5)
    tracks, vis = scene.track(q, np.zeros(len(q), int))
    lid = scene.query_layers(q, 0)
    for t in range(scene.num_frames):
        ids = scene.layer_ids(t)
        v = vis[:, t]
        xi = np.clip(np.round(tracks[v, t, 0]).astype(int), 0, SMALL.width - 1)
        yi = np.clip(np.round(tracks[v, t, 1]).astype(int), 0, SMALL.height - 1)
        deep = _deep(ids)[yi, xi]
        assert (ids[yi, xi][deep] == lid[v][deep]).all()  # visible points sit on their own layer
        hidden = ~v & (tracks[:, t, 0] >= 0) & (tracks[:, t, 0] <= SMALL.width - 1) & \
            (tracks[:, t, 1] >= 0) & (tracks[:, t, 1] <= SMALL.height - 1)
        xh, yh = np.round(tracks[hidden, t]).astype(int).T
        deep_h = _deep(ids)[yh, xh]
        assert (ids[yh, xh][deep_h] > lid[hidden][deep_h]).all()  # occluded in view: a nearer layer covers it
        for n in np.flatnonzero(v)[:50]:
            layer = scene.layers[int(lid[n])]
            uv0 = apply_affines(layer.to_texture[0], q[n][None].astype(np.float64))
            uvt = apply_affines(layer.to_texture[t], tracks[n, t][None].astype(np.float64))
            np.testing.assert_allclose(uvt, uv0, atol=1e-6)
    assert (~vis).any() and vis.any()
