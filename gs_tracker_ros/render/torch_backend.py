"""Pure-PyTorch tile rasteriser (differentiable; CPU or GPU), same conventions as gsplat.

Instead of testing every Gaussian against every pixel, the image is cut into square tiles and
each Gaussian is listed only in the tiles its 3-sigma square overlaps (like gsplat's CUDA
rasteriser). Per frame the Gaussians are ordered by depth once; the per-tile lists are built
with tensor ops (no Python loop over tiles or Gaussians) and padded to the longest list, so the
compositing work is ``M * tiles * K * tile_size^2`` instead of ``M * N * H * W``.
"""

from __future__ import annotations

import torch

from .camera import Camera
from .splat import RasterOptions, Splats, composite_weights, project_gaussians, splat_alpha


def _tile_lists(
    mean2d: torch.Tensor,
    radius: torch.Tensor,
    depth: torch.Tensor,
    valid: torch.Tensor,
    tile: int,
    n_ty: int,
    n_tx: int,
    height: int,
    width: int,
    max_per_tile: int | None,
) -> torch.Tensor:
    """Depth-ordered Gaussian indices per tile: ``(M, n_ty * n_tx, K)``, padded with N (a dummy)."""
    m, n = depth.shape
    with torch.no_grad():
        cx, cy = mean2d[..., 0], mean2d[..., 1]
        keep = valid & (radius > 0) & (cx + radius > 0) & (cx - radius < width)
        keep &= (cy + radius > 0) & (cy - radius < height)
        order = torch.argsort(torch.where(keep, depth, torch.full_like(depth, float("inf"))), dim=1)  # (M, N)
        cx, cy, r = (torch.gather(t, 1, order) for t in (cx, cy, radius))
        keep = torch.gather(keep, 1, order)
        edges_x = torch.arange(n_tx, device=depth.device, dtype=mean2d.dtype) * tile
        edges_y = torch.arange(n_ty, device=depth.device, dtype=mean2d.dtype) * tile
        hit_x = (cx[..., None] + r[..., None] > edges_x) & (cx[..., None] - r[..., None] < edges_x + tile)  # (M,N,tx)
        hit_y = (cy[..., None] + r[..., None] > edges_y) & (cy[..., None] - r[..., None] < edges_y + tile)  # (M,N,ty)
        hit = hit_y[..., :, None] & hit_x[..., None, :] & keep[..., None, None]  # (M, N, ty, tx)
        hit = hit.reshape(m, n, n_ty * n_tx).transpose(1, 2)  # (M, tiles, N) in depth order
        slot = torch.cumsum(hit, dim=2) - 1
        k = int(hit.sum(dim=2).max().item()) if hit.numel() else 0
        if max_per_tile is not None:
            k = min(k, int(max_per_tile))
        k = max(k, 1)
        hit &= slot < k
        idx = torch.full((m, n_ty * n_tx, k), n, dtype=torch.long, device=depth.device)
        mi, ti, ni = hit.nonzero(as_tuple=True)
        idx[mi, ti, slot[mi, ti, ni]] = order[mi, ni]
    return idx


def rasterize_torch(splats: Splats, colors: torch.Tensor, camera: Camera, height: int, width: int,
                    background: torch.Tensor | None, options: RasterOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The :class:`~.splat.Rasterizer` on tiles in PyTorch (differentiable; every option applies)."""
    tile_size, max_per_tile = options.tile_size, options.max_per_tile
    alpha_min, alpha_max, t_min = options.alpha_min, options.alpha_max, options.t_min
    m, n = splats.opacities.shape
    c_dim = colors.shape[-1]
    dtype, dev = colors.dtype, colors.device
    proj = project_gaussians(splats.means, splats.quats, splats.scales, camera, height, width, options.eps2d,
                            options.near)
    n_ty, n_tx = -(-height // tile_size), -(-width // tile_size)
    idx = _tile_lists(proj.mean2d, proj.radius, proj.depth, proj.valid, tile_size, n_ty, n_tx, height, width, max_per_tile)
    k = idx.shape[2]

    # Pad with one dummy Gaussian (opacity 0) that the padded slots point to.
    def pad(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t, t.new_zeros((m, 1) + t.shape[2:])], dim=1)

    flat = idx.reshape(m, -1)  # (M, tiles*K)

    def take(t: torch.Tensor) -> torch.Tensor:  # (M, N+1, D) -> (M, tiles, K, D)
        d = t.shape[-1]
        return torch.gather(t, 1, flat[..., None].expand(m, flat.shape[1], d)).reshape(m, n_ty * n_tx, k, d)

    g_mean = take(pad(proj.mean2d))
    g_conic = take(pad(proj.conic))
    g_opac = take(pad(splats.opacities[..., None]))[..., 0]
    g_col = take(pad(colors))

    # Pixel centres of every tile: (tiles, P, 2)
    ar = torch.arange(tile_size, device=dev, dtype=dtype) + 0.5
    py, px = torch.meshgrid(ar, ar, indexing="ij")
    ty, tx = torch.meshgrid(
        torch.arange(n_ty, device=dev, dtype=dtype) * tile_size,
        torch.arange(n_tx, device=dev, dtype=dtype) * tile_size,
        indexing="ij",
    )
    pix_x = (tx.reshape(-1, 1) + px.reshape(1, -1))  # (tiles, P)
    pix_y = (ty.reshape(-1, 1) + py.reshape(1, -1))

    dx = pix_x[None, :, None, :] - g_mean[..., 0:1]  # (M, tiles, K, P)
    dy = pix_y[None, :, None, :] - g_mean[..., 1:2]
    alpha = splat_alpha(dx, dy, g_conic[..., 0:1], g_conic[..., 1:2], g_conic[..., 2:3], g_opac[..., None],
                        alpha_min, alpha_max)
    w = composite_weights(alpha, dim=2, t_min=t_min)  # (M, tiles, K, P)
    # (M*tiles, P, K) @ (M*tiles, K, C)
    img = torch.bmm(w.transpose(2, 3).reshape(-1, tile_size * tile_size, k), g_col.reshape(-1, k, c_dim))
    acc = w.sum(dim=2)  # (M, tiles, P)
    img = img.reshape(m, n_ty, n_tx, tile_size, tile_size, c_dim).permute(0, 1, 3, 2, 4, 5)
    img = img.reshape(m, n_ty * tile_size, n_tx * tile_size, c_dim)[:, :height, :width]
    acc = acc.reshape(m, n_ty, n_tx, tile_size, tile_size).permute(0, 1, 3, 2, 4)
    acc = acc.reshape(m, n_ty * tile_size, n_tx * tile_size, 1)[:, :height, :width]
    if background is not None:
        img = img + (1.0 - acc) * background.to(dtype)
    return img, acc
