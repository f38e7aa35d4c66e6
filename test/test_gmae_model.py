"""Video-GMAE model: shapes, masking, camera convention, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gs_tracker_ros.core.errors import ConfigError, InputError
from gs_tracker_ros.engines.torch_engine import TorchEngine
from gs_tracker_ros.model.checkpoint import load_checkpoint_blob, load_model, save_checkpoint
from gs_tracker_ros.model.gaussians import FIELDS, GaussianClip
from gs_tracker_ros.model.gmae import GMAE, ModelConfig
from gs_tracker_ros.model.masking import (
    motion_aware_tube_mask,
    num_visible,
    random_tube_mask,
    tube_to_token_index,
)
from gs_tracker_ros.render.camera import Camera

torch.set_num_threads(1)
TINY = dict(img_size=32, num_frames=4, enc_dim=32, enc_depth=1, enc_heads=2, dec_dim=32, dec_depth=1, dec_heads=2,
            gaussian_grid=4)
SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "gmae_tiny.pt"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GMAE(ModelConfig(**TINY))


def test_camera_projection_roundtrip_and_convention():
    cam = Camera.default(48, 64, focal=1.0)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (64.0, 64.0, 32.0, 24.0)
    torch.testing.assert_close(cam.project(torch.tensor([0.0, 0.0, 3.0])), torch.tensor([32.0, 24.0]))
    uv = torch.tensor([[5.5, 7.25], [60.0, 1.0]])
    torch.testing.assert_close(cam.project(cam.unproject(uv, torch.tensor([1.5, 4.0]))), uv)


def test_forward_shapes_masked_and_unmasked(model):
    clip = torch.rand(2, 4, 32, 32, 3)
    vis = random_tube_mask(2, 16, 0.75)
    for v in (vis, None):
        g = model(clip, v)
        assert isinstance(g, GaussianClip)
        assert g.means.shape == (2, 4, 16, 3) and g.colors.shape == (2, 4, 16, 3)
        assert g.quats.shape == (2, 16, 4) and g.log_scales.shape == (2, 16, 3) and g.opacities.shape == (2, 16)
        torch.testing.assert_close(g.quats.norm(dim=-1), torch.ones(2, 16))
        assert (g.means[..., 2] > 0).all()  # in front of the camera
        assert ((g.opacities > 0) & (g.opacities < 1)).all() and ((g.colors >= 0) & (g.colors <= 1)).all()
        assert g.translation_deltas.shape == (2, 3, 16, 3)
    # the delta head starts at zero: Gaussians are static at initialisation
    assert float(g.translation_deltas.detach().abs().max()) == 0.0
    # projected centres stay near their anchors (grid of 4x4 cells of 8 px on a 32 px image)
    c = g.projected_centers()[0, 0]
    anchors = model.patch_anchors(4, 4, "cpu")[0] * 32
    assert float((c.detach() - anchors).abs().max()) <= 2 * 8 + 1e-4


def test_gradients_reach_every_parameter(model):
    from gs_tracker_ros.model.gaussians import render_clip

    clip = torch.rand(1, 4, 32, 32, 3)
    g = model(clip, random_tube_mask(1, 16, 0.5))
    out = render_clip(g, 32, 32, backend="torch", tile_size=8)
    loss = (out.rgb - clip).abs().mean() + 1e-3 * g.means.sum()  # the zero-init delta head needs a path
    model.zero_grad()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing


def test_encode_uint8_numpy_and_wrong_frame_count(model):
    clip = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    g = model.encode(clip)
    assert g.batch == 1 and g.num_frames == 4 and g.num_gaussians == 16 and (g.height, g.width) == (32, 32)
    assert model.training  # encode restores the mode
    with pytest.raises(ConfigError):
        model.encode(clip[:2])


def test_random_tube_mask():
    vis = random_tube_mask(3, 64, 0.9, generator=torch.Generator().manual_seed(0))
    assert vis.shape == (3, num_visible(64, 0.9)) == (3, 6)
    for row in vis:
        assert len(set(row.tolist())) == 6 and bool((row[1:] > row[:-1]).all())
    idx = tube_to_token_index(torch.tensor([[1, 5]]), num_temporal=3, num_spatial=16)
    assert idx.tolist() == [[1, 5, 17, 21, 33, 37]]


def test_motion_aware_mask_samples_both_bins():
    motion = torch.arange(16, dtype=torch.float32).flip(0)[None].repeat(50, 1)  # patches 0..7 move most
    vis = motion_aware_tube_mask(motion, ratio=0.75, generator=torch.Generator().manual_seed(0))
    assert vis.shape == (50, 4)
    high = (vis < 8).sum(1)
    assert (high == 2).all()  # half of the visible patches from each bin
    vis = motion_aware_tube_mask(motion, ratio=0.75, motion_fraction=1.0)
    assert ((vis < 8).sum(1) == 4).all()


def test_checkpoint_roundtrip_fp16(model, tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", model, {"step": 7}, half=True)
    blob = load_checkpoint_blob(path)  # weights_only=True inside
    assert blob["step"] == 7 and blob["model"]["head_static.weight"].dtype == torch.float16
    m2 = load_model(path)
    clip = torch.rand(1, 4, 32, 32, 3)
    a, b = model.eval()(clip), m2(clip)
    model.train()
    for f in FIELDS:
        torch.testing.assert_close(getattr(a, f), getattr(b, f), rtol=2e-2, atol=2e-2)
    enc = TorchEngine.from_checkpoint(path)
    assert enc.num_frames == 4 and enc.input_size == (32, 32)
    with pytest.raises(InputError):
        load_model(tmp_path / "missing.pt")


def test_gaussian_clip_from_arrays_and_splats(model):
    g = model.encode(np.zeros((4, 32, 32, 3), np.uint8))
    arrays = [t[0].numpy() for t in g.as_tuple()]  # no batch dim, numpy (what an engine returns)
    g2 = GaussianClip.from_arrays(arrays, 32, 32)
    torch.testing.assert_close(g2.means, g.means)
    sp = g2.to_splats()
    assert sp.means.shape == (4, 16, 3) and sp.scales.shape == (4, 16, 3)
    torch.testing.assert_close(sp.scales[2], g.log_scales[0].exp())


def test_query_head_variant():
    m = GMAE(ModelConfig(**dict(TINY, gaussian_head="query", gaussian_grid=3)))
    g = m(torch.rand(1, 4, 32, 32, 3), random_tube_mask(1, 16, 0.75))
    assert g.means.shape == (1, 4, 9, 3)
    torch.testing.assert_close(g.projected_centers()[0, 0], m.anchors * 32, atol=2 * 32 / 3, rtol=0)


def test_config_validation():
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"img_size": 30})
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"bogus": 1})
    with pytest.raises(ConfigError):
        ModelConfig.from_dict({"gaussian_grid": 6})  # not a multiple of the 4x4 patch grid (patch head)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped checkpoint checkpoints/gmae_tiny.pt not present")
def test_shipped_checkpoint_loads_and_is_small():
    assert SHIPPED.stat().st_size < 8 * 1024 * 1024
    m = load_model(SHIPPED)
    cfg = m.cfg
    clip = np.zeros((cfg.num_frames, cfg.img_size, cfg.img_size, 3), np.uint8)
    g = m.encode(clip)
    assert torch.isfinite(g.means).all()
