"""gsplat ``rasterization`` backend (CUDA only), same conventions as :mod:`.torch_backend`.

Each of the M frames is its own scene seen by the same camera (identity view matrix, intrinsics
from :class:`~gs_tracker_ros.render.camera.Camera`). gsplat >= 1.5 accepts leading batch
dimensions (``means (M, N, 3)``, ``viewmats (M, 1, 4, 4)``), which renders all frames in one
call; older versions take one scene per call, so we fall back to a loop over frames.
"""

from __future__ import annotations

import torch

from ..core.errors import ConfigError
from .camera import Camera
from .splat import RasterOptions, Splats

_BATCHED_OK: bool | None = None  # learnt on first use: does this gsplat accept leading batch dims?


def gsplat_available() -> bool:
    """True when gsplat imports and CUDA is usable."""
    if not torch.cuda.is_available():
        return False
    try:
        import gsplat  # noqa: F401 - imported only to see whether it is importable
    except Exception:  # any import failure (missing, ABI mismatch) means unavailable
        return False
    return True


def rasterize_gsplat(splats: Splats, colors: torch.Tensor, camera: Camera, height: int, width: int,
                     background: torch.Tensor | None, options: RasterOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """The :class:`~.splat.Rasterizer` on gsplat's CUDA kernels. Of ``options`` gsplat takes ``tile_size``, ``eps2d`` and ``near``; its own cut-offs are fixed.
    """
    global _BATCHED_OK
    if splats.means.device.type != "cuda":
        raise ConfigError("the gsplat backend needs CUDA tensors; use backend='torch' on the CPU")
    try:
        from gsplat import rasterization
    except Exception as err:  # any import failure (missing, ABI mismatch)
        raise ConfigError(f"gsplat is not importable: {err}") from err
    m, n = splats.opacities.shape
    dev, dtype = colors.device, colors.dtype
    quats = splats.quats / splats.quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    K = camera.K(dtype, dev)
    view = camera.viewmat(dtype, dev)
    common = dict(width=int(width), height=int(height), near_plane=options.near, eps2d=options.eps2d,
                  tile_size=options.tile_size,
                  packed=False, rasterize_mode="classic", render_mode="RGB")
    if _BATCHED_OK is not False:
        try:
            bg = None if background is None else background.expand(m, 1, colors.shape[-1]).contiguous()
            img, alpha, _ = rasterization(
                splats.means, quats, splats.scales, splats.opacities, colors,
                view.expand(m, 1, 4, 4).contiguous(), K.expand(m, 1, 3, 3).contiguous(), backgrounds=bg, **common,
            )
            _BATCHED_OK = True
            return img[:, 0], alpha[:, 0]
        except (TypeError, AssertionError, RuntimeError, ValueError):
            if _BATCHED_OK:
                raise
            _BATCHED_OK = False
    imgs, alphas = [], []
    bg = None if background is None else background[None].contiguous()
    for i in range(m):
        img, alpha, _ = rasterization(
            splats.means[i], quats[i], splats.scales[i], splats.opacities[i], colors[i],
            view[None], K[None], backgrounds=bg, **common,
        )
        imgs.append(img[0])
        alphas.append(alpha[0])
    return torch.stack(imgs), torch.stack(alphas)
