"""The one camera convention used by the Gaussian encoder, the renderers and the motion source.

A fixed pinhole camera sits at the origin of the camera frame and looks down +z, with x to the
right and y down (OpenCV / gsplat convention, view matrix = identity)::

    fx = fy = focal * W          (focal is relative to the image width; default 1.0)
    cx = W / 2,  cy = H / 2      (principal point at the image centre)
    u = fx * X / Z + cx,   v = fy * Y / Z + cy

``(u, v)`` are *continuous image coordinates* in which pixel ``(row i, col j)`` covers
``[j, j+1) x [i, i+1)`` and its centre is ``(j + 0.5, i + 0.5)`` -- the convention of gsplat's
``rasterization`` with ``Ks = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` and ``viewmats = I``.
The rest of the package puts the origin at the *centre* of the top-left pixel, so
``x_package = u - 0.5`` (see :func:`to_package_pixels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Camera:
    """Pinhole intrinsics in pixels of a ``height x width`` image (view matrix is the identity)."""

    fx: float
    fy: float
    cx: float
    cy: float

    @staticmethod
    def default(height: int, width: int, focal: float = 1.0) -> "Camera":
        """``fx = fy = focal * width``, principal point at the image centre."""
        f = float(focal) * float(width)
        return Camera(f, f, float(width) / 2.0, float(height) / 2.0)

    def K(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """``(3, 3)`` intrinsic matrix."""
        return torch.tensor(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=dtype, device=device
        )

    def viewmat(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """``(4, 4)`` world-to-camera matrix: the identity (Gaussians live in camera coordinates)."""
        return torch.eye(4, dtype=dtype, device=device)

    def project(self, means: torch.Tensor) -> torch.Tensor:
        """``(..., 3)`` camera-frame points -> ``(..., 2)`` continuous image coordinates ``(u, v)``."""
        z = means[..., 2]
        u = self.fx * means[..., 0] / z + self.cx
        v = self.fy * means[..., 1] / z + self.cy
        return torch.stack([u, v], dim=-1)

    def unproject(self, uv: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`project`: ``(..., 2)`` image coords and ``(...)`` depth -> ``(..., 3)``."""
        x = (uv[..., 0] - self.cx) / self.fx * z
        y = (uv[..., 1] - self.cy) / self.fy * z
        return torch.stack([x, y, z], dim=-1)


def to_package_pixels(uv):
    """Continuous image coordinates (pixel centres at +0.5) -> package pixels (centres at integers)."""
    return uv - 0.5
