"""``render``: M scenes of Gaussians to images, on the pure-torch tile backend or gsplat (CUDA).

``"auto"`` picks gsplat for CUDA tensors when it is importable, torch otherwise. The renderer
takes :class:`~.splat.Splats` (tensors) only; a clip of Gaussians renders through
:func:`gs_tracker_ros.model.gaussians.render_clip`.
"""

from __future__ import annotations

import dataclasses

import torch

from ..core.errors import ConfigError
from .camera import Camera
from .splat import Rasterizer, RasterOptions, RenderOutput, Splats
from .torch_backend import rasterize_torch


def _resolve_backend(backend: str, device: torch.device) -> str:
    if backend not in ("auto", "torch", "gsplat"):
        raise ConfigError(f"unknown render backend {backend!r}; use 'auto', 'torch' or 'gsplat'")
    if backend == "auto":
        if device.type == "cuda":
            from .gsplat_backend import gsplat_available

            return "gsplat" if gsplat_available() else "torch"
        return "torch"
    return backend


def render(
    splats: Splats,
    camera: Camera,
    height: int,
    width: int,
    features: torch.Tensor | None = None,
    backend: str = "auto",
    background: torch.Tensor | None = None,
    **options,
) -> RenderOutput:
    """Render RGB, accumulated alpha and optional per-Gaussian feature channels of M scenes.

    Args:
        splats: M scenes of N Gaussians (a clip of Gaussians renders through
            :func:`gs_tracker_ros.model.gaussians.render_clip`, which flattens it to Splats).
        camera: intrinsics for a ``height x width`` image.
        features: optional extra channels per Gaussian ``(M, N, F)``, composited with the same
            weights as the colour (a 2-D displacement per Gaussian renders as optical flow).
        backend: ``"auto"``, ``"torch"`` or ``"gsplat"``.
        background: ``(3,)`` colour behind the Gaussians (default black).
        options: fields of :class:`~.splat.RasterOptions` (``tile_size``, ``max_per_tile``, ``eps2d``, ...).

    Returns:
        :class:`RenderOutput` with leading dim ``(M,)``.
    """
    if not isinstance(splats, Splats):
        raise ConfigError(f"render takes Splats, got {type(splats).__name__} (a GaussianClip: use render_clip)")
    if features is not None and features.dim() != 3:
        raise ConfigError(f"features for Splats must be (M, N, F), got {tuple(features.shape)}")
    n_rgb = splats.colors.shape[-1]
    colors = splats.colors if features is None else torch.cat([splats.colors, features.to(splats.colors.dtype)], -1)
    if background is not None:
        background = torch.as_tensor(background, dtype=colors.dtype, device=colors.device).reshape(-1)
        background = torch.cat([background, background.new_zeros(colors.shape[-1] - background.shape[0])])
    known = [f.name for f in dataclasses.fields(RasterOptions)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown render options {unknown}; known: {known}")
    raster = RasterOptions(**options)
    which = _resolve_backend(backend, splats.means.device)
    rasterize: Rasterizer = rasterize_torch
    if which == "gsplat":
        from .gsplat_backend import rasterize_gsplat  # CUDA only: imported when chosen

        rasterize = rasterize_gsplat
    img, alpha = rasterize(splats, colors, camera, height, width, background, raster)
    feats = img[..., n_rgb:] if features is not None else None
    return RenderOutput(img[..., :n_rgb], alpha, feats)
