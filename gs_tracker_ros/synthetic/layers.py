"""A synthetic layer: a texture, a coverage mask and one texture->image affine per frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.errors import ConfigError
from .motion import PosePath, apply_affines, invert_affines
from .texture import make_texture, polygon_mask


@dataclass
class Layer:
    """One rigidly moving textured layer.

    Attributes:
        name: human-readable label ("background", "ellipse", ...).
        texture: ``(h, w, 3) float32`` RGB, 0..255, in texture px.
        alpha: ``(h, w) float32`` coverage 0..1; a point belongs to the layer where alpha >= 0.5.
        to_image: ``(T, 2, 3) float64`` affine per frame mapping texture px (u, v) to image px (x, y).
        to_texture: inverse of ``to_image`` (derived).
        rgba: ``(h, w, 4) float32`` texture and alpha stacked for a single ``cv2.remap`` (derived).
    """

    name: str
    texture: np.ndarray
    alpha: np.ndarray
    to_image: np.ndarray
    to_texture: np.ndarray = field(init=False, repr=False)
    rgba: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        h, w = self.alpha.shape
        if self.texture.shape != (h, w, 3):
            raise ConfigError(f"layer {self.name}: texture {self.texture.shape} does not match alpha {self.alpha.shape}")
        if self.to_image.ndim != 3 or self.to_image.shape[1:] != (2, 3):
            raise ConfigError(f"layer {self.name}: to_image must be (T, 2, 3), got {self.to_image.shape}")
        self.to_image = np.asarray(self.to_image, np.float64)
        self.to_texture = invert_affines(self.to_image)
        self.rgba = np.ascontiguousarray(np.dstack([self.texture, self.alpha]).astype(np.float32))

    @property
    def num_frames(self) -> int:
        return int(self.to_image.shape[0])

    def image_bbox(self, t: int, width: int, height: int) -> tuple[int, int, int, int] | None:
        """Integer pixel box ``(x0, y0, x1, y1)`` (end-exclusive) the layer may touch in frame t, or None."""
        h, w = self.alpha.shape
        corners = np.array([[-1.0, -1.0], [w, -1.0], [-1.0, h], [w, h]])
        xy = apply_affines(self.to_image[t], corners)
        x0 = max(0, int(np.floor(xy[:, 0].min())))
        y0 = max(0, int(np.floor(xy[:, 1].min())))
        x1 = min(width, int(np.ceil(xy[:, 0].max())) + 1)
        y1 = min(height, int(np.ceil(xy[:, 1].max())) + 1)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1, y1

    def coverage(self, uv: np.ndarray) -> np.ndarray:
        """Exact bilinear alpha at texture points ``(..., 2)`` (0 outside the texture), float64."""
        return bilinear(self.alpha, uv)


def bilinear(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear sample of a 2-D array at ``(..., 2)`` points (u = column, v = row); zero outside.

    Same convention as ``cv2.remap`` with ``BORDER_CONSTANT`` 0, but in float64 without
    coordinate quantisation.
    """
    h, w = img.shape
    u = uv[..., 0]
    v = uv[..., 1]
    u0 = np.floor(u)
    v0 = np.floor(v)
    fu = u - u0
    fv = v - v0
    u0 = u0.astype(np.int64)
    v0 = v0.astype(np.int64)
    out = np.zeros(u.shape, np.float64)
    for du, dv, wgt in ((0, 0, (1 - fu) * (1 - fv)), (1, 0, fu * (1 - fv)), (0, 1, (1 - fu) * fv), (1, 1, fu * fv)):
        uu = u0 + du
        vv = v0 + dv
        ok = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
        out[ok] += wgt[ok] * img[vv[ok], uu[ok]]
    return out


def layer_texture(h: int, w: int, rng: np.random.Generator, texture_kind: str, saturation: float,
                  real=None, real_share: float = 1.0) -> np.ndarray:
    """``(h, w, 3) float32`` texture: a crop of a real frame from ``real`` (a
    :class:`~gs_tracker_ros.synthetic.real_textures.RealTexturePool`) for a ``real_share`` of the
    layers, else procedural (:func:`~gs_tracker_ros.synthetic.texture.make_texture`)."""
    if real is not None and rng.random() < real_share:
        return real.crop(h, w, rng)
    return make_texture(h, w, rng, texture_kind, saturation=saturation)


def shape_layer(name: str, outline: np.ndarray, path: PosePath, rng: np.random.Generator,
                texture_kind: str = "mixed", margin_px: int = 3, real=None, real_share: float = 1.0) -> Layer:
    """A layer showing a textured polygon ``outline`` (vertices in px around the anchor 0, 0).

    ``real``, ``real_share``: optional real-frame crops as textures, see :func:`layer_texture`."""
    half_u = int(np.ceil(np.abs(outline[:, 0]).max())) + margin_px
    half_v = int(np.ceil(np.abs(outline[:, 1]).max())) + margin_px
    h, w = 2 * half_v + 1, 2 * half_u + 1
    anchor = (float(half_u), float(half_v))
    alpha = polygon_mask(h, w, outline + np.array(anchor))
    saturation = float(rng.uniform(0.6, 1.0))
    texture = layer_texture(h, w, rng, texture_kind, saturation, real, real_share)
    return Layer(name, texture, alpha, path.to_affines(anchor))


def background_layer(path: PosePath, width: int, height: int, rng: np.random.Generator,
                     texture_kind: str = "mixed", margin_px: int = 4, real=None, real_share: float = 1.0) -> Layer:
    """An opaque background layer whose texture covers the whole image in every frame of ``path``."""
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]])
    inv = invert_affines(path.to_affines((0.0, 0.0)))  # (T, 2, 3)
    uv = apply_affines(inv[:, None], corners[None])  # (T, 4, 2)
    lo = np.floor(uv.reshape(-1, 2).min(axis=0)) - margin_px
    hi = np.ceil(uv.reshape(-1, 2).max(axis=0)) + margin_px
    w, h = (hi - lo + 1).astype(int)
    anchor = (float(-lo[0]), float(-lo[1]))
    texture = layer_texture(int(h), int(w), rng, texture_kind, 0.35, real, real_share)
    alpha = np.ones((int(h), int(w)), np.float32)
    return Layer("background", texture, alpha, path.to_affines(anchor))
