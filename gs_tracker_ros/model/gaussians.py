"""``GaussianClip``: the per-frame 3-D Gaussians an encoder predicts for a clip."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from ..core.errors import ConfigError
from ..render.camera import Camera
from ..render.rendering import render
from ..render.splat import RenderOutput, Splats

# Order of the tensors in exported engines (ONNX / TensorRT outputs) and ``as_tuple``.
FIELDS = ("means", "quats", "log_scales", "opacities", "colors")


@dataclass
class GaussianClip:
    """N Gaussians tracked through T frames, for a batch of B clips, in camera coordinates.

    The camera is :class:`~gs_tracker_ros.render.camera.Camera` ``.default(height, width, focal)``:
    pinhole at the origin looking down +z, x right, y down, ``fx = fy = focal * width``, principal
    point at the image centre. Identity persists over time: Gaussian i of frame t is Gaussian i of
    frame 1 moved by ``means[:, t] - means[:, 0]`` and recoloured; shape, rotation and opacity are
    shared by all frames.

    Attributes:
        means: ``(B, T, N, 3)`` centre per frame (frame 1 + per-frame translation delta).
        quats: ``(B, N, 4)`` unit rotation quaternion ``(w, x, y, z)``.
        log_scales: ``(B, N, 3)`` natural log of the standard deviations along the rotated axes.
        opacities: ``(B, N)`` in (0, 1).
        colors: ``(B, T, N, 3)`` RGB in [0, 1] per frame (frame 1 + per-frame colour delta).
        height, width, focal: the image size the clip was encoded at and the relative focal length.
    """

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacities: torch.Tensor
    colors: torch.Tensor
    height: int
    width: int
    focal: float = 1.0

    def __post_init__(self) -> None:
        b, t, n = self.means.shape[:3]
        assert self.means.shape == (b, t, n, 3), self.means.shape
        assert self.quats.shape == (b, n, 4), self.quats.shape
        assert self.log_scales.shape == (b, n, 3), self.log_scales.shape
        assert self.opacities.shape == (b, n), self.opacities.shape
        assert self.colors.shape == (b, t, n, 3), self.colors.shape

    # ---------------------------------------------------------------- shapes
    @property
    def batch(self) -> int:
        return int(self.means.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.means.shape[1])

    @property
    def num_gaussians(self) -> int:
        return int(self.means.shape[2])

    @property
    def camera(self) -> Camera:
        return Camera.default(self.height, self.width, self.focal)

    # ---------------------------------------------------------------- views
    @property
    def translation_deltas(self) -> torch.Tensor:
        """``(B, T-1, N, 3)`` translation of frames 2..T relative to frame 1."""
        return self.means[:, 1:] - self.means[:, :1]

    def projected_centers(self) -> torch.Tensor:
        """``(B, T, N, 2)`` image positions ``(u, v)`` of the centres (pixel centres at +0.5)."""
        return self.camera.project(self.means)

    def to_splats(self) -> Splats:
        """Flatten to ``B * T`` independent frames for the renderer."""
        b, t, n = self.means.shape[:3]

        def over_time(x: torch.Tensor) -> torch.Tensor:
            return x[:, None].expand((b, t) + x.shape[1:]).reshape((b * t,) + x.shape[1:])

        return Splats(
            means=self.means.reshape(b * t, n, 3),
            quats=over_time(self.quats),
            scales=over_time(torch.exp(self.log_scales)),
            opacities=over_time(self.opacities),
            colors=self.colors.reshape(b * t, n, 3),
        )

    def select(self, index: int) -> "GaussianClip":
        """Clip ``index`` of the batch, keeping a batch dimension of 1."""
        sl = slice(index, index + 1)
        return GaussianClip(
            self.means[sl], self.quats[sl], self.log_scales[sl], self.opacities[sl], self.colors[sl],
            self.height, self.width, self.focal,
        )

    def detach(self) -> "GaussianClip":
        return GaussianClip(
            *(getattr(self, f).detach() for f in FIELDS), height=self.height, width=self.width, focal=self.focal
        )

    def to(self, *args, **kwargs) -> "GaussianClip":
        return GaussianClip(
            *(getattr(self, f).to(*args, **kwargs) for f in FIELDS),
            height=self.height, width=self.width, focal=self.focal,
        )

    # ---------------------------------------------------------------- interchange
    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        """Tensors in :data:`FIELDS` order (what an exported engine returns)."""
        return tuple(getattr(self, f) for f in FIELDS)

    @staticmethod
    def from_arrays(arrays, height: int, width: int, focal: float = 1.0) -> "GaussianClip":
        """Build from a sequence (in :data:`FIELDS` order) or a dict of numpy arrays / tensors.

        Arrays without the batch dimension (e.g. ``means (T, N, 3)``) get one added.
        """
        if isinstance(arrays, dict):
            arrays = [arrays[f] for f in FIELDS]
        tensors = [torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a) for a in arrays]
        means = tensors[0]
        if means.dim() == 3:
            tensors = [t[None] for t in tensors]
        tensors = [t.float() for t in tensors]
        return GaussianClip(*tensors, height=int(height), width=int(width), focal=float(focal))

    def state(self) -> dict:
        """Plain dict (for ``torch.save``)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out


def render_clip(clip: GaussianClip, height: int, width: int, features: torch.Tensor | None = None,
                backend: str = "auto", background: torch.Tensor | None = None, **options) -> RenderOutput:
    """Render every frame of every clip through ``clip.camera``: outputs ``(B, T, H, W, C)``.

    ``features``: extra channels per Gaussian, ``(B, T, N, F)`` or ``(B, N, F)`` (broadcast over
    time); the rest as :func:`~gs_tracker_ros.render.rendering.render`.
    """
    b, t, n = clip.means.shape[:3]
    if features is not None:
        if features.dim() == 3:
            features = features[:, None].expand(b, t, n, features.shape[-1])
        if features.shape[:3] != (b, t, n):
            raise ConfigError(f"features must be (B, T, N, F) = ({b}, {t}, {n}, F), got {tuple(features.shape)}")
        features = features.reshape(b * t, n, features.shape[-1])
    out = render(clip.to_splats(), clip.camera, height, width, features, backend, background, **options)

    def per_clip(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.reshape((b, t) + x.shape[1:])

    return RenderOutput(per_clip(out.rgb), per_clip(out.alpha), per_clip(out.features))
