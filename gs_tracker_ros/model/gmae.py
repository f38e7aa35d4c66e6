"""Video-GMAE: a masked ViT that encodes a clip into 3-D Gaussians moving over time.

Architecture (shapes for B clips of T frames, H x W pixels, tubelets tt x p x p, N Gaussians)::

    clip (B, T, H, W, 3) in [0, 1]
      -> TubeletEmbed (Conv3d)            tokens (B, L, De),  L = T/tt * H/p * W/p
      + fixed 3-D sin-cos positions
      -> keep visible tokens (tube mask)  (B, V, De)         [all L at inference]
      -> encoder blocks + LayerNorm       (B, V, De)
      -> Linear De->Dd, scatter into L slots, mask token elsewhere, + positions  (B, L, Dd)
      -> decoder blocks + LayerNorm                                               (B, L, Dd)
      head "patch" (default): the t temporal tokens of each of the S = H/p * W/p patch positions
         are concatenated (B, S, t*Dd) and a linear head emits k = (gaussian_grid / (H/p))^2
         Gaussians per patch (``gaussian_grid`` rows of Gaussians over the height): static (k x 14) and per-frame deltas (k x (T-1) x 6); N = S * k
      head "query": N learned query tokens (+ 2-D sin-cos of their anchor) join the decoder
         sequence (B, N + L, Dd); their outputs go through the same linear heads (k = 1)
      -> GaussianClip

Gaussian parameterisation (decoded in :meth:`GMAE.decode_gaussians`; camera convention in
:mod:`gs_tracker_ros.render.camera`): Gaussian i owns an anchor on a ``gh x gw`` grid over the
image; its frame-1 centre is the anchor plus a bounded offset (``max_offset`` grid cells), at
depth ``z0 * exp(0.5 tanh(.))``, unprojected through the camera. Its size is predicted relative to
the image width (``sigma_px = s * W``, between ``scale_min`` and ``scale_max``) and turned into a
world scale ``s * z / focal``, so the projected size does not depend on the depth. Frames 2..T add
a translation (image-plane shift in units of the image size plus a log-depth change, unprojected
to a 3-D translation) and a colour-logit delta. The delta head starts at zero (static Gaussians).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.errors import ConfigError
from ..render.camera import Camera
from .gaussians import GaussianClip
from .masking import tube_to_token_index
from .vit import Block, TubeletEmbed, init_weights, sincos_2d, sincos_3d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
N_STATIC = 14  # offset(2) depth(1) log-scale(3) quaternion(4) colour(3) opacity(1)
N_DELTA = 6  # image shift(2) log-depth(1) colour(3) per frame 2..T


@dataclass
class ModelConfig:
    """Sizes of the Video-GMAE model (defaults: the tiny CPU model)."""

    img_size: int | list[int] = 64  # clip frame size: a square side, or [height, width] (multiples of patch)
    num_frames: int = 8
    patch: int = 8
    tubelet: int = 2
    enc_dim: int = 192
    enc_depth: int = 4
    enc_heads: int = 3
    dec_dim: int = 128
    dec_depth: int = 2
    dec_heads: int = 4
    mlp_ratio: float = 4.0
    gaussian_grid: int = 16  # N = gaussian_grid ** 2 Gaussians
    gaussian_head: str = "patch"  # "patch" (k Gaussians per patch token) or "query" (N query tokens)
    focal: float = 1.0
    z0: float = 2.0
    max_offset: float = 2.0  # grid cells
    scale_min: float = 0.004  # sigma as a fraction of the image width
    scale_max: float = 0.25
    scale_init: float = 0.6  # grid cells
    delta_scale: float = 0.1  # image-size units per unit of the delta head output

    @property
    def height(self) -> int:
        """Clip frame height in model pixels."""
        return int(self.img_size[0]) if isinstance(self.img_size, (list, tuple)) else int(self.img_size)

    @property
    def width(self) -> int:
        """Clip frame width in model pixels."""
        return int(self.img_size[1]) if isinstance(self.img_size, (list, tuple)) else int(self.img_size)

    @property
    def input_hw(self) -> tuple[int, int]:
        """``(height, width)`` of the clip frames the model is trained and exported at."""
        return self.height, self.width

    @property
    def num_gaussians(self) -> int:
        """Gaussians per clip: ``gaussian_grid`` rows of them over the height, as many per row as the
        aspect ratio gives (``gaussian_grid ** 2`` for a square clip or the query head)."""
        if self.gaussian_head == "patch":
            return self.per_patch**2 * (self.height // self.patch) * (self.width // self.patch)
        return self.gaussian_grid**2

    @staticmethod
    def from_dict(d: dict) -> "ModelConfig":
        from ..core.config import config_from_dict

        cfg = config_from_dict(ModelConfig, d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        size = self.img_size
        if isinstance(size, (list, tuple)):
            if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
                raise ConfigError(f"img_size must be a side or [height, width] in pixels, got {size!r}")
            self.img_size = int(size[0]) if size[0] == size[1] else [int(size[0]), int(size[1])]
        elif isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ConfigError(f"img_size must be a side or [height, width] in pixels, got {size!r}")
        if self.height % self.patch or self.width % self.patch:
            raise ConfigError(f"img_size {self.height}x{self.width} (HxW) must be a multiple of patch {self.patch}")
        if self.num_frames % self.tubelet or self.num_frames < 2:
            raise ConfigError(f"num_frames {self.num_frames} must be >= 2 and a multiple of tubelet {self.tubelet}")
        if self.enc_dim % self.enc_heads or self.dec_dim % self.dec_heads:
            raise ConfigError("enc_dim/dec_dim must be divisible by the number of heads")
        if self.gaussian_head not in ("patch", "query"):
            raise ConfigError(f"gaussian_head must be 'patch' or 'query', got {self.gaussian_head!r}")
        if self.gaussian_head == "patch" and self.gaussian_grid % (self.height // self.patch):
            raise ConfigError(f"gaussian_grid {self.gaussian_grid} (Gaussian rows) must be a multiple of the "
                              f"patch rows {self.height // self.patch}")

    @property
    def per_patch(self) -> int:
        """Gaussians per patch side in the "patch" head (1 for the "query" head)."""
        return self.gaussian_grid // (self.height // self.patch) if self.gaussian_head == "patch" else 1

    def to_dict(self) -> dict:
        return asdict(self)


class GMAE(nn.Module):
    """Video Gaussian masked autoencoder. ``forward(clip, visible) -> GaussianClip``."""

    def __init__(self, cfg: ModelConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ModelConfig()
        cfg.validate()
        self.cfg = cfg
        self.embed = TubeletEmbed(cfg.enc_dim, cfg.patch, cfg.tubelet)
        self.enc_blocks = nn.ModuleList([Block(cfg.enc_dim, cfg.enc_heads, cfg.mlp_ratio) for _ in range(cfg.enc_depth)])
        self.enc_norm = nn.LayerNorm(cfg.enc_dim)
        self.dec_embed = nn.Linear(cfg.enc_dim, cfg.dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(cfg.dec_dim))
        self.dec_blocks = nn.ModuleList([Block(cfg.dec_dim, cfg.dec_heads, cfg.mlp_ratio) for _ in range(cfg.dec_depth)])
        self.dec_norm = nn.LayerNorm(cfg.dec_dim)
        k = cfg.per_patch**2  # Gaussians per head input
        if cfg.gaussian_head == "query":
            self.query_embed = nn.Parameter(torch.zeros(cfg.num_gaussians, cfg.dec_dim))
            head_in = cfg.dec_dim
        else:
            head_in = cfg.dec_dim * (cfg.num_frames // cfg.tubelet)
        self.head_static = nn.Linear(head_in, k * N_STATIC)
        self.head_delta = nn.Linear(head_in, k * N_DELTA * (cfg.num_frames - 1))
        self.register_buffer("pix_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("pix_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        g = cfg.gaussian_grid
        gy, gx = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
        # query-head anchors in normalised image coordinates (0..1), row-major
        anchors = torch.stack([(gx.reshape(-1) + 0.5) / g, (gy.reshape(-1) + 0.5) / g], dim=-1)
        self.register_buffer("anchors", anchors, persistent=False)
        init_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        if cfg.gaussian_head == "query":
            nn.init.trunc_normal_(self.query_embed, std=0.02)
        nn.init.trunc_normal_(self.head_static.weight, std=0.01)
        nn.init.zeros_(self.head_delta.weight)
        nn.init.zeros_(self.head_delta.bias)
        # static-head bias: scale starts at ``scale_init`` grid cells, opacity ~0.88
        with torch.no_grad():
            s0 = cfg.scale_init / g
            frac = (math.log(s0) - math.log(cfg.scale_min)) / (math.log(cfg.scale_max) - math.log(cfg.scale_min))
            frac = min(max(frac, 1e-3), 1 - 1e-3)
            bias = self.head_static.bias.view(k, N_STATIC)
            bias[:, 3:6] = math.log(frac / (1 - frac))
            bias[:, 13] = 2.0

    # ------------------------------------------------------------------ helpers
    def _positions(self, t: int, h: int, w: int, dim: int, device) -> torch.Tensor:
        return sincos_3d(dim, t, h, w, device=device)

    def _query_positions(self, h: int, w: int, device) -> torch.Tensor:
        # anchor position in patch-grid units, same frame as the token grid's sin-cos
        a = self.anchors.to(device)
        return sincos_2d(self.cfg.dec_dim, a[:, 1] * h - 0.5, a[:, 0] * w - 0.5)

    def patch_anchors(self, gh: int, gw: int, device) -> tuple[torch.Tensor, float, float]:
        """Anchors ``(gh*gw*r*r, 2)`` (normalised, patch-major order) and cell sizes for the patch head."""
        r = self.cfg.per_patch
        py, px, sy, sx = torch.meshgrid(torch.arange(gh, device=device), torch.arange(gw, device=device),
                                        torch.arange(r, device=device), torch.arange(r, device=device), indexing="ij")
        u = (px * r + sx + 0.5).reshape(-1).float() / (gw * r)
        v = (py * r + sy + 0.5).reshape(-1).float() / (gh * r)
        return torch.stack([u, v], dim=-1), 1.0 / (gw * r), 1.0 / (gh * r)

    @staticmethod
    def prepare(clip: torch.Tensor) -> torch.Tensor:
        """uint8 or float ``(B, T, H, W, 3)`` / ``(T, H, W, 3)`` -> float ``(B, T, H, W, 3)`` in [0, 1]."""
        if clip.dim() == 4:
            clip = clip[None]
        if clip.dtype == torch.uint8:
            clip = clip.float() / 255.0
        return clip.float()

    # ------------------------------------------------------------------ forward
    def forward_latent(self, clip: torch.Tensor, visible_spatial: torch.Tensor | None = None) -> torch.Tensor:
        """Encoder + decoder: clip ``(B, T, H, W, 3)`` in [0, 1] -> head input ``(B, S or N, F)``.

        ``visible_spatial`` ``(B, V)``: indices of the visible spatial patches (a tube mask,
        see :mod:`.masking`); None keeps every token (inference).
        """
        b, t, h, w, _ = clip.shape
        x = (clip.permute(0, 4, 1, 2, 3) - self.pix_mean) / self.pix_std  # (B, 3, T, H, W)
        gt, gh, gw = self.embed.grid(t, h, w)
        tokens = self.embed(x) + self._positions(gt, gh, gw, self.cfg.enc_dim, x.device)[None]  # (B, L, De)
        n_tok = tokens.shape[1]
        if visible_spatial is not None:
            idx = tube_to_token_index(visible_spatial, gt, gh * gw)  # (B, V)
            tokens = torch.gather(tokens, 1, idx[..., None].expand(-1, -1, tokens.shape[-1]))
        for blk in self.enc_blocks:
            tokens = blk(tokens)
        lat = self.dec_embed(self.enc_norm(tokens))  # (B, V, Dd)
        if visible_spatial is not None:
            full = self.mask_token.view(1, 1, -1).expand(b, n_tok, -1).clone()
            full = full.scatter(1, idx[..., None].expand(-1, -1, lat.shape[-1]), lat)
        else:
            full = lat
            if self.training:  # keep every parameter in the graph (DDP expects gradients for all)
                full = full + 0.0 * self.mask_token
        full = full + self._positions(gt, gh, gw, self.cfg.dec_dim, x.device)[None]
        if self.cfg.gaussian_head == "query":
            q = (self.query_embed + self._query_positions(gh, gw, x.device))[None].expand(b, -1, -1)
            z = torch.cat([q, full], dim=1)  # (B, N + L, Dd)
            for blk in self.dec_blocks:
                z = blk(z)
            return self.dec_norm(z[:, : self.cfg.num_gaussians])  # (B, N, Dd)
        z = full
        for blk in self.dec_blocks:
            z = blk(z)
        z = self.dec_norm(z).reshape(b, gt, gh * gw, -1)  # (B, t, S, Dd)
        return z.permute(0, 2, 1, 3).reshape(b, gh * gw, -1)  # (B, S, t * Dd)

    def decode_gaussians(self, feats: torch.Tensor, t: int, h: int, w: int) -> GaussianClip:
        """Head input ``(B, S or N, F)`` -> :class:`GaussianClip` for a ``T x H x W`` clip."""
        cfg = self.cfg
        b = feats.shape[0]
        cam = Camera.default(h, w, cfg.focal)
        if cfg.gaussian_head == "query":
            anchors, cu, cv = self.anchors, 1.0 / cfg.gaussian_grid, 1.0 / cfg.gaussian_grid
        else:
            anchors, cu, cv = self.patch_anchors(h // cfg.patch, w // cfg.patch, feats.device)
        n = anchors.shape[0]
        s = self.head_static(feats).reshape(b, n, N_STATIC)  # (B, N, 14)
        d = self.head_delta(feats).reshape(b, -1, cfg.per_patch**2, t - 1, N_DELTA)  # (B, S, k, T-1, 6)
        d = d.permute(0, 3, 1, 2, 4).reshape(b, t - 1, n, N_DELTA)  # (B, T-1, N, 6)
        cell = anchors.new_tensor([cu, cv])
        uv0 = anchors[None] + cfg.max_offset * cell * torch.tanh(s[..., 0:2])  # (B, N, 2) normalised
        z0 = cfg.z0 * torch.exp(0.5 * torch.tanh(s[..., 2]))  # (B, N)
        lo, hi = math.log(cfg.scale_min), math.log(cfg.scale_max)
        log_s_rel = lo + (hi - lo) * torch.sigmoid(s[..., 3:6])  # sigma / W
        log_scales = log_s_rel + torch.log(z0)[..., None] - math.log(cfg.focal)
        quats = F.normalize(s[..., 6:10] + s.new_tensor([1.0, 0.0, 0.0, 0.0]), dim=-1)
        col_logit = s[..., 10:13]
        opac = torch.sigmoid(s[..., 13])
        zero = d.new_zeros(b, 1, n, N_DELTA)
        d = torch.cat([zero, d], dim=1)  # (B, T, N, 6), frame 1 has no delta
        uv = uv0[:, None] + cfg.delta_scale * d[..., 0:2]  # (B, T, N, 2)
        z = z0[:, None] * torch.exp(cfg.delta_scale * d[..., 2])
        uv_px = uv * uv.new_tensor([float(w), float(h)])
        means = cam.unproject(uv_px, z)  # (B, T, N, 3)
        colors = torch.sigmoid(col_logit[:, None] + d[..., 3:6])
        return GaussianClip(means, quats, log_scales, opac, colors, height=h, width=w, focal=cfg.focal)

    def forward(self, clip: torch.Tensor, visible_spatial: torch.Tensor | None = None) -> GaussianClip:
        """clip ``(B, T, H, W, 3)`` (uint8 or float in [0, 1]) -> :class:`GaussianClip`."""
        clip = self.prepare(clip)
        b, t, h, w, _ = clip.shape
        if t != self.cfg.num_frames:
            raise ConfigError(f"model expects {self.cfg.num_frames} frames, got {t}")
        if h % self.cfg.patch or w % self.cfg.patch:
            raise ConfigError(f"frame size {w}x{h} must be a multiple of the patch size {self.cfg.patch}")
        return self.decode_gaussians(self.forward_latent(clip, visible_spatial), t, h, w)

    def forward_export(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Export entry: float clip ``(B, T, H, W, 3)`` in [0, 1] -> tensors in ``FIELDS`` order."""
        return self.forward(clip).as_tuple()

    @torch.no_grad()
    def encode(self, clip) -> GaussianClip:
        """Inference without masking: uint8/float ``(T, H, W, 3)`` or ``(B, T, H, W, 3)`` -> GaussianClip."""
        if isinstance(clip, np.ndarray):
            clip = torch.from_numpy(np.ascontiguousarray(clip))
        was_training = self.training
        self.eval()
        try:
            param = next(self.parameters())
            return self.forward(self.prepare(clip).to(param.device))
        finally:
            self.train(was_training)
