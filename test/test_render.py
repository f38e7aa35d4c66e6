"""Splatting renderer: compositing values, tiling, gradients, gsplat parity (CUDA only)."""

from __future__ import annotations

import math

import pytest
import torch

from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.model.gaussians import GaussianClip
from gs_tracker_ros.render.camera import Camera
from gs_tracker_ros.render.gsplat_backend import gsplat_available
from gs_tracker_ros.model.gaussians import render_clip
from gs_tracker_ros.render.rendering import render
from gs_tracker_ros.render.splat import Splats, project_gaussians

torch.set_num_threads(1)


def _scene(uv, z, sigma_px, opac, colors, h=16, w=16, dtype=torch.float32):
    """Isotropic Gaussians given by screen position (continuous px), depth and pixel sigma."""
    cam = Camera.default(h, w)
    uv = torch.as_tensor(uv, dtype=dtype)
    z = torch.as_tensor(z, dtype=dtype)
    means = cam.unproject(uv, z)
    s = torch.as_tensor(sigma_px, dtype=dtype) * z / cam.fx
    n = uv.shape[0]
    return cam, Splats(
        means=means[None],
        quats=torch.tensor([[1.0, 0, 0, 0]], dtype=dtype).expand(n, 4)[None].clone(),
        scales=s[:, None].expand(n, 3)[None].clone(),
        opacities=torch.as_tensor(opac, dtype=dtype)[None],
        colors=torch.as_tensor(colors, dtype=dtype)[None],
    )


def test_two_overlapping_gaussians_composite_front_to_back():
    red, green = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    # both centred on pixel (row 8, col 8) whose centre is (8.5, 8.5): alpha there = opacity
    cam, sp = _scene([[8.5, 8.5], [8.5, 8.5]], [1.0, 2.0], [1.5, 1.5], [0.6, 0.5], [red, green])
    out = render(sp, cam, 16, 16, backend="torch")
    assert out.rgb.shape == (1, 16, 16, 3) and out.alpha.shape == (1, 16, 16, 1)
    torch.testing.assert_close(out.rgb[0, 8, 8], torch.tensor([0.6, 0.4 * 0.5, 0.0]))
    torch.testing.assert_close(out.alpha[0, 8, 8, 0], torch.tensor(0.6 + 0.4 * 0.5))
    # swap depths: green in front now
    cam, sp = _scene([[8.5, 8.5], [8.5, 8.5]], [2.0, 1.0], [1.5, 1.5], [0.6, 0.5], [red, green])
    out = render(sp, cam, 16, 16, backend="torch", background=torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(out.rgb[0, 8, 8], torch.tensor([0.5 * 0.6, 0.5, 0.2]))  # + bg * (1 - 0.8)


def test_pixel_falloff_matches_the_gaussian_formula():
    cam, sp = _scene([[8.5, 8.5]], [1.0], [2.0], [0.8], [[1.0, 1.0, 1.0]])
    out = render(sp, cam, 16, 16, backend="torch")
    p = project_gaussians(sp.means, sp.quats, sp.scales, cam, 16, 16)
    # 2-D covariance by hand: J Sigma J^T + 0.3 I with J = fx/z [[1, 0, -tx], [0, 1, -ty]], Sigma = s^2 I
    tx, ty = (8.5 - cam.cx) / cam.fx, (8.5 - cam.cy) / cam.fy
    cov = 2.0**2 * torch.tensor([[1 + tx * tx, tx * ty], [tx * ty, 1 + ty * ty]]) + 0.3 * torch.eye(2)
    inv = torch.linalg.inv(cov)
    torch.testing.assert_close(p.conic[0, 0], torch.stack([inv[0, 0], inv[0, 1], inv[1, 1]]))
    for di, dj in ((0, 2), (1, 1), (3, 0), (-2, 1)):
        d = torch.tensor([float(dj), float(di)])
        expect = 0.8 * torch.exp(-0.5 * d @ inv @ d)
        torch.testing.assert_close(out.alpha[0, 8 + di, 8 + dj, 0], expect, rtol=1e-5, atol=1e-6)


def _dense_reference(sp: Splats, cam: Camera, h: int, w: int) -> torch.Tensor:
    """Every Gaussian against every pixel (no tiles), front to back."""
    p = project_gaussians(sp.means, sp.quats, sp.scales, cam, h, w)
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    out = torch.zeros(sp.means.shape[0], h, w, sp.colors.shape[-1])
    for m in range(sp.means.shape[0]):
        t = torch.ones(h, w)
        for i in torch.argsort(p.depth[m]).tolist():
            dx, dy = xs - p.mean2d[m, i, 0], ys - p.mean2d[m, i, 1]
            a, b, c = p.conic[m, i]
            alpha = (sp.opacities[m, i] * torch.exp(-(0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy))).clamp_max(0.99)
            alpha = torch.where(alpha < 1 / 255, torch.zeros_like(alpha), alpha)
            out[m] += (alpha * t)[..., None] * sp.colors[m, i]
            t = t * (1 - alpha)
    return out


def test_tiled_renderer_equals_dense_reference():
    g = torch.Generator().manual_seed(0)
    m, n, h, w = 2, 24, 20, 28  # size not a multiple of the tile
    cam = Camera.default(h, w)
    uv = torch.rand(m, n, 2, generator=g) * torch.tensor([w, h])
    z = 1 + torch.rand(m, n, generator=g)
    sp = Splats(
        means=cam.unproject(uv, z),
        quats=torch.randn(m, n, 4, generator=g),
        scales=(0.5 + 2 * torch.rand(m, n, 3, generator=g)) * z[..., None] / cam.fx,
        opacities=0.05 + 0.25 * torch.rand(m, n, generator=g),  # <= 0.3: nothing visible beyond 3 sigma
        colors=torch.rand(m, n, 3, generator=g),
    )
    ref = _dense_reference(sp, cam, h, w)
    for tile in (4, 8, 16):
        out = render(sp, cam, h, w, backend="torch", tile_size=tile)
        torch.testing.assert_close(out.rgb, ref, rtol=1e-5, atol=1e-5)


def test_gradcheck_float64():
    cam, sp = _scene([[3.2, 4.1], [4.6, 3.7], [2.9, 2.8]], [1.0, 1.3, 1.7], [1.2, 1.5, 0.9],
                     [0.7, 0.5, 0.6], [[0.9, 0.1, 0.3], [0.2, 0.8, 0.5], [0.4, 0.4, 0.9]], h=8, w=8,
                     dtype=torch.float64)
    quats = torch.tensor([[0.9, 0.2, -0.1, 0.3], [1.0, 0.0, 0.1, 0.0], [0.8, -0.3, 0.2, 0.1]], dtype=torch.float64)
    scales = sp.scales[0] * torch.tensor([[1.0, 0.7, 1.2], [0.8, 1.1, 1.0], [1.3, 0.9, 0.8]], dtype=torch.float64)
    inputs = [t.clone().requires_grad_() for t in (sp.means[0], quats, scales, sp.opacities[0], sp.colors[0])]

    def fn(means, q, s, o, c):
        out = render(Splats(means[None], q[None], s[None], o[None], c[None]), cam, 8, 8, backend="torch",
                     tile_size=4, alpha_min=0.0, t_min=0.0)
        return out.rgb, out.alpha

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_clip_render_shapes_and_feature_channels():
    b, t, n, h, w = 2, 3, 5, 16, 24
    cam = Camera.default(h, w)
    uv = torch.rand(b, 1, n, 2) * torch.tensor([w, h])
    means = cam.unproject(uv.expand(b, t, n, 2) + torch.arange(t).view(1, t, 1, 1), torch.full((b, t, n), 2.0))
    clip = GaussianClip(
        means=means, quats=torch.tensor([1.0, 0, 0, 0]).expand(b, n, 4).clone(),
        log_scales=torch.full((b, n, 3), math.log(3.0 * 2.0 / cam.fx)), opacities=torch.full((b, n), 0.9),
        colors=torch.rand(b, t, n, 3), height=h, width=w,
    )
    flow = torch.tensor([1.5, -2.0]).expand(b, n, 2)
    out = render_clip(clip, h, w, features=flow, backend="auto")  # auto -> torch on the CPU
    assert out.rgb.shape == (b, t, h, w, 3) and out.alpha.shape == (b, t, h, w, 1)
    assert out.features.shape == (b, t, h, w, 2)
    covered = out.alpha[..., 0] > 0.05
    assert covered.any()
    # a constant per-Gaussian feature renders as that constant once divided by the accumulated alpha
    torch.testing.assert_close((out.features / out.alpha.clamp_min(1e-6))[covered],
                               torch.tensor([1.5, -2.0]).expand(int(covered.sum()), 2), rtol=1e-4, atol=1e-4)


def test_behind_camera_is_culled_and_bad_backend_rejected():
    cam, sp = _scene([[8.5, 8.5]], [1.0], [2.0], [0.9], [[1.0, 1.0, 1.0]])
    sp.means[..., 2] = -1.0
    out = render(sp, cam, 16, 16, backend="torch")
    assert float(out.alpha.max()) == 0.0
    with pytest.raises(ConfigError):
        render(sp, cam, 16, 16, backend="opengl")
    with pytest.raises(ConfigError, match=r"unknown render options \['tile'\]"):
        render(sp, cam, 16, 16, backend="torch", tile=8)  # a misspelt option is an error, not ignored


@pytest.mark.gpu
@pytest.mark.skipif(not gsplat_available(), reason="gsplat parity needs CUDA and an importable gsplat")
def test_torch_matches_gsplat_on_cuda():  # pragma: no cover - runs only on a GPU machine
    g = torch.Generator().manual_seed(1)
    m, n, h, w = 3, 64, 48, 64
    cam = Camera.default(h, w)
    uv = torch.rand(m, n, 2, generator=g) * torch.tensor([w, h])
    z = 1 + torch.rand(m, n, generator=g)
    sp = Splats(
        means=cam.unproject(uv, z), quats=torch.randn(m, n, 4, generator=g),
        scales=(0.8 + 2 * torch.rand(m, n, 3, generator=g)) * z[..., None] / cam.fx,
        opacities=0.05 + 0.25 * torch.rand(m, n, generator=g), colors=torch.rand(m, n, 5, generator=g),
    )
    sp_cuda = Splats(*(t.cuda() for t in (sp.means, sp.quats, sp.scales, sp.opacities, sp.colors)))
    ref = render(sp, cam, h, w, backend="torch", tile_size=16, features=None)
    got = render(sp_cuda, cam, h, w, backend="gsplat")
    torch.testing.assert_close(got.rgb.cpu(), ref.rgb, rtol=1e-3, atol=2e-3)
    torch.testing.assert_close(got.alpha.cpu(), ref.alpha, rtol=1e-3, atol=2e-3)
