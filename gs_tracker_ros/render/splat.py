"""Gaussian splatting: one ``render`` function, two backends with the same conventions.

Conventions (shared with gsplat's ``rasterization`` in its default "classic" mode):

* camera: :class:`~gs_tracker_ros.render.camera.Camera` (pinhole at the origin looking down +z,
  view matrix = identity); pixel centres at ``(j + 0.5, i + 0.5)``.
* Gaussian i: mean ``mu_i`` (3), unit quaternion ``q_i = (w, x, y, z)``, linear scales ``s_i`` (3),
  opacity ``o_i`` in (0, 1) and C colour/feature channels ``c_i``.
  3-D covariance ``R(q) diag(s)^2 R(q)^T``; 2-D covariance ``J Sigma J^T + eps2d * I`` with the
  perspective Jacobian J (its x/z, y/z clamped to 1.3x the field of view like gsplat) and
  ``eps2d = 0.3`` px^2 (gsplat's low-pass term).
* per-pixel opacity ``alpha_i(p) = min(0.99, o_i * exp(-0.5 * d^T Sigma2d^-1 d))``, dropped when
  below 1/255; Gaussians are sorted by depth (camera z) front to back and composited as
  ``C(p) = sum_i c_i alpha_i prod_{j<i} (1 - alpha_j)``, stopping before the transmittance would
  fall to 1e-4; ``A(p) = sum_i alpha_i prod_{j<i}(1 - alpha_j)``; background ``bg * (1 - A)``.
* a Gaussian reaches the pixels of the tiles its ``3 * sqrt(largest eigenvalue)`` square
  overlaps; Gaussians with depth below ``near = 0.01`` are culled.

This module holds the types, the projection and the compositing rule
(:func:`splat_alpha`, :func:`composite_weights`), shared by the torch backend and the Gaussian
motion source. :func:`~.rendering.render` runs a backend: ``"torch"`` (:mod:`.torch_backend`,
pure PyTorch, differentiable, CPU or GPU) or ``"gsplat"`` (:mod:`.gsplat_backend`, CUDA only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .camera import Camera

EPS2D = 0.3  # px^2 added to the projected covariance (gsplat "classic")
NEAR = 0.01
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4


@dataclass(frozen=True)
class RasterOptions:
    """How a backend rasterises (both backends take one; the defaults are gsplat's "classic").

    tile_size: tile edge, px. max_per_tile: torch backend only, the nearest K Gaussians a tile keeps
    (None: all, exact). eps2d: px^2 added to each projected covariance. near: depth below which a
    Gaussian is culled. alpha_min / alpha_max / t_min: torch backend only, the per-pixel opacity
    cut-off and cap and the transmittance at which compositing stops (0 for gradient checks: no
    hard cut-offs).
    """

    tile_size: int = 16
    max_per_tile: int | None = None
    eps2d: float = EPS2D
    near: float = NEAR
    alpha_min: float = ALPHA_MIN
    alpha_max: float = ALPHA_MAX
    t_min: float = T_MIN


@dataclass
class Splats:
    """A batch of M independent scenes ("frames") of N Gaussians each.

    Attributes:
        means: ``(M, N, 3)`` camera-frame centres.
        quats: ``(M, N, 4)`` rotations ``(w, x, y, z)`` (normalised inside the renderer).
        scales: ``(M, N, 3)`` standard deviations along the rotated axes (linear, > 0).
        opacities: ``(M, N)`` in (0, 1).
        colors: ``(M, N, C)`` channels to composite (RGB, optionally followed by features).
    """

    means: torch.Tensor
    quats: torch.Tensor
    scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor

    def __post_init__(self) -> None:
        m, n = self.means.shape[:2]
        assert self.means.shape == (m, n, 3), self.means.shape
        assert self.quats.shape == (m, n, 4), self.quats.shape
        assert self.scales.shape == (m, n, 3), self.scales.shape
        assert self.opacities.shape == (m, n), self.opacities.shape
        assert self.colors.shape[:2] == (m, n) and self.colors.dim() == 3, self.colors.shape


@dataclass
class RenderOutput:
    """Rendered images; leading dims ``L`` are ``(M,)`` for :class:`Splats` (``render``), ``(B, T)``
    for a clip (``render_clip``).

    Attributes:
        rgb: ``(*L, H, W, 3)`` composited colour (plus background).
        alpha: ``(*L, H, W, 1)`` accumulated opacity ``A(p)``.
        features: ``(*L, H, W, F)`` composited extra channels (no background), or None.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor
    features: torch.Tensor | None = None


class Rasterizer(Protocol):
    """A backend: composites ``colors (M, N, C)`` of M scenes of ``splats`` seen by ``camera`` into
    ``(M, H, W, C)`` images over ``background (C,)`` (None: zeros) and ``(M, H, W, 1)`` alpha."""

    def __call__(self, splats: "Splats", colors: torch.Tensor, camera: Camera, height: int, width: int,
                 background: torch.Tensor | None, options: RasterOptions) -> tuple[torch.Tensor, torch.Tensor]: ...


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` quaternions ``(w, x, y, z)`` (any norm) -> ``(..., 3, 3)`` rotation matrices."""
    q = quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    r = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )
    return r.reshape(q.shape[:-1] + (3, 3))


@dataclass
class Projected:
    """Screen-space Gaussians, all ``(M, N, ...)``.

    ``mean2d`` (continuous image coords), ``conic`` = ``(A, B, C)`` of the inverse 2-D covariance
    (``d^T Sigma^-1 d = A dx^2 + 2 B dx dy + C dy^2``), ``radius`` (px, 3 sigma of the largest
    eigenvalue), ``depth`` (camera z) and ``valid`` (in front of the near plane, non-degenerate).
    """

    mean2d: torch.Tensor
    conic: torch.Tensor
    radius: torch.Tensor
    depth: torch.Tensor
    valid: torch.Tensor


def project_gaussians(
    means: torch.Tensor,
    quats: torch.Tensor,
    scales: torch.Tensor,
    camera: Camera,
    height: int,
    width: int,
    eps2d: float = EPS2D,
    near: float = NEAR,
) -> Projected:
    """EWA projection of 3-D Gaussians ``(..., N, 3)`` through ``camera`` (differentiable)."""
    x, y, z = means.unbind(-1)
    valid = z > near
    zs = torch.where(valid, z, torch.full_like(z, 1.0))  # keep the maths finite for culled ones
    rz = 1.0 / zs
    u = camera.fx * x * rz + camera.cx
    v = camera.fy * y * rz + camera.cy
    # Jacobian of the perspective projection; x/z and y/z clamped like gsplat (1.3 x half-FOV)
    tan_x = 0.5 * width / camera.fx
    tan_y = 0.5 * height / camera.fy
    lim_xp = (width - camera.cx) / camera.fx + 0.3 * tan_x
    lim_xn = camera.cx / camera.fx + 0.3 * tan_x
    lim_yp = (height - camera.cy) / camera.fy + 0.3 * tan_y
    lim_yn = camera.cy / camera.fy + 0.3 * tan_y
    tx = (x * rz).clamp(-lim_xn, lim_xp)
    ty = (y * rz).clamp(-lim_yn, lim_yp)
    zero = torch.zeros_like(rz)
    j = torch.stack(
        [camera.fx * rz, zero, -camera.fx * tx * rz, zero, camera.fy * rz, -camera.fy * ty * rz], dim=-1
    ).reshape(z.shape + (2, 3))
    rot = quat_to_rotmat(quats)
    m = rot * scales.unsqueeze(-2)  # R diag(s): (..., 3, 3)
    jm = j @ m  # (..., 2, 3)
    cov = jm @ jm.transpose(-1, -2)  # (..., 2, 2)
    a = cov[..., 0, 0] + eps2d
    b = cov[..., 0, 1]
    c = cov[..., 1, 1] + eps2d
    det = (a * c - b * b).clamp_min(1e-12)
    conic = torch.stack([c / det, -b / det, a / det], dim=-1)
    mid = 0.5 * (a + c)
    lam = mid + torch.sqrt((mid * mid - det).clamp_min(0.1))
    radius = torch.ceil(3.0 * torch.sqrt(lam)).detach()
    return Projected(torch.stack([u, v], dim=-1), conic, radius, z, valid)


def splat_alpha(dx: torch.Tensor, dy: torch.Tensor, conic_a: torch.Tensor, conic_b: torch.Tensor,
                conic_c: torch.Tensor, opacity: torch.Tensor, alpha_min: float = ALPHA_MIN,
                alpha_max: float = ALPHA_MAX) -> torch.Tensor:
    """Per-pixel opacity ``min(alpha_max, o * exp(-0.5 d^T Sigma^-1 d))`` of Gaussians at offsets
    ``(dx, dy)`` px from their centres, 0 below ``alpha_min``; all arguments broadcast together
    (``conic = (A, B, C)`` of :class:`Projected`)."""
    sigma = 0.5 * (conic_a * dx * dx + conic_c * dy * dy) + conic_b * dx * dy
    alpha = (opacity * torch.exp(-sigma.clamp_min(0.0))).clamp_max(alpha_max)
    if alpha_min > 0:
        alpha = torch.where(alpha < alpha_min, torch.zeros_like(alpha), alpha)
    return alpha


def composite_weights(alpha: torch.Tensor, dim: int, t_min: float = T_MIN) -> torch.Tensor:
    """Front-to-back compositing weights along ``dim`` (Gaussians sorted nearest first):
    ``w_i = alpha_i prod_{j<i} (1 - alpha_j)``, 0 from where the transmittance would fall to
    ``t_min`` (0: never cut)."""
    log_t = torch.cumsum(torch.log1p(-alpha), dim=dim)
    w = alpha * torch.exp(log_t - torch.log1p(-alpha))
    if t_min > 0:
        w = torch.where(log_t > torch.log(torch.tensor(t_min, dtype=alpha.dtype)), w, torch.zeros_like(w))
    return w
