"""Layered synthetic video with exact ground-truth point tracks.

A scene is a stack of rigid layers (index 0 = background, larger index = nearer the camera).
Frame t is rendered back to front by inverse warping each layer's texture and coverage mask with
bilinear interpolation (``cv2.remap`` on float32 textures, which OpenCV 5 evaluates at the exact
float position; OpenCV 4 quantised positions to 1/32 px) and alpha compositing. Ground truth
follows the layers' affines exactly (float64).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import cv2
import numpy as np

from ..core.errors import ConfigError, InputError
from .config import SceneConfig
from .layers import Layer, background_layer, shape_layer
from .motion import PosePath, apply_affines, smooth_wiggle
from .texture import ellipse_outline, polygon_outline, rounded_rect_outline

_SHAPES = ("ellipse", "polygon", "rounded_rect")


class SyntheticScene:
    """A rendered-on-demand layered video with exact ground truth.

    Attributes:
        width, height: image size in px.
        num_frames: number of frames T.
        layers: the layers, back (0 = background) to front.
        noise_std: sensor-noise std in grey levels added by :meth:`render`.
        seed: seed of the per-frame noise.
    """

    def __init__(self, width: int, height: int, layers: Sequence[Layer], noise_std: float = 0.0, seed: int = 0) -> None:
        if not layers:
            raise ConfigError("a scene needs at least one layer")
        t = layers[0].num_frames
        if any(layer.num_frames != t for layer in layers):
            raise ConfigError("all layers must have the same number of frames")
        self.width = int(width)
        self.height = int(height)
        self.num_frames = int(t)
        self.layers: list[Layer] = list(layers)
        self.noise_std = float(noise_std)
        self.seed = int(seed)
        self._cache: tuple[int, np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------------------ rendering
    def _check_t(self, t: int) -> int:
        t = int(t)
        if not 0 <= t < self.num_frames:
            raise InputError(f"frame index {t} out of range [0, {self.num_frames})")
        return t

    def _composite(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free float32 RGB frame ``(H, W, 3)`` and int16 layer-id map ``(H, W)`` of frame t."""
        t = self._check_t(t)
        if self._cache is not None and self._cache[0] == t:
            return self._cache[1], self._cache[2]
        img = np.zeros((self.height, self.width, 3), np.float32)
        ids = np.full((self.height, self.width), -1, np.int16)
        for lid, layer in enumerate(self.layers):
            box = layer.image_bbox(t, self.width, self.height)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            # texture coords of the box's pixel centres (float32: ~1e-4 px resolution here)
            inv = layer.to_texture[t]
            ox = inv[0, 0] * x0 + inv[0, 1] * y0 + inv[0, 2]
            oy = inv[1, 0] * x0 + inv[1, 1] * y0 + inv[1, 2]
            xs = np.arange(x1 - x0, dtype=np.float32)[None, :]
            ys = np.arange(y1 - y0, dtype=np.float32)[:, None]
            mapx = np.float32(inv[0, 0]) * xs + (np.float32(inv[0, 1]) * ys + np.float32(ox))
            mapy = np.float32(inv[1, 0]) * xs + (np.float32(inv[1, 1]) * ys + np.float32(oy))
            rgba = cv2.remap(layer.rgba, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            a = rgba[..., 3]
            region = img[y0:y1, x0:x1]
            if lid == 0:
                region[...] = a[..., None] * rgba[..., :3]
            else:
                region += a[..., None] * (rgba[..., :3] - region)
            ids[y0:y1, x0:x1][a >= 0.5] = lid
        self._cache = (t, img, ids)
        return img, ids

    def render(self, t: int) -> np.ndarray:
        """Frame t as RGB ``(H, W, 3) uint8`` (with sensor noise if ``noise_std`` > 0)."""
        img, _ = self._composite(t)
        if self.noise_std > 0:
            # cv2.randn is ~4x faster than numpy's normal sampler; seeding it per frame keeps
            # render(t) deterministic and independent of call order (it resets OpenCV's
            # thread-local RNG, which nothing else in the package relies on)
            noise = np.empty((self.height, self.width * 3), np.float32)  # one channel: same std for R, G, B
            cv2.setRNGSeed((self.seed * 1_000_003 + int(t) * 7919 + 12345) % (2**31 - 1))
            cv2.randn(noise, 0.0, self.noise_std)
            img = img + noise.reshape(img.shape)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)  # round to nearest, saturate

    def frames(self) -> Iterator[np.ndarray]:
        """Iterate over all rendered frames in order."""
        for t in range(self.num_frames):
            yield self.render(t)

    def layer_ids(self, t: int) -> np.ndarray:
        """``(H, W) int16`` id of the topmost layer with coverage >= 0.5 at each pixel (-1: none)."""
        return self._composite(t)[1].copy()

    # ---------------------------------------------------------------------------- ground truth
    def _check_queries(self, query_xy: np.ndarray, query_frame: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(query_xy, np.float64)
        if q.ndim != 2 or q.shape[1] != 2:
            raise InputError(f"query_xy must be (N, 2), got shape {q.shape}")
        f = np.broadcast_to(np.asarray(query_frame), (q.shape[0],))
        if f.size and not np.issubdtype(f.dtype, np.integer):
            if not np.all(f == np.round(f)):
                raise InputError("query_frame must hold integer frame indices")
        f = f.astype(np.int64)
        if f.size and (f.min() < 0 or f.max() >= self.num_frames):
            raise InputError(f"query_frame out of range [0, {self.num_frames})")
        if not np.all(np.isfinite(q)):
            raise InputError("query_xy must be finite")
        return q, f

    def query_layers(self, query_xy: np.ndarray, query_frame: np.ndarray | int) -> np.ndarray:
        """``(N,) int64`` id of the topmost layer covering each query point at its query frame."""
        q, f = self._check_queries(query_xy, query_frame)
        lid = np.zeros(q.shape[0], np.int64)
        for m in range(1, len(self.layers)):
            layer = self.layers[m]
            cov = layer.coverage(apply_affines(layer.to_texture[f], q))
            lid[cov >= 0.5] = m
        return lid

    def track(self, query_xy: np.ndarray, query_frame: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """Exact ground-truth tracks of query points.

        Args:
            query_xy: ``(N, 2)`` query positions in px.
            query_frame: ``(N,)`` (or scalar) integer frame index of each query.

        Returns:
            tracks_xy: ``(N, T, 2) float64`` position in px in every frame (also when hidden),
                equal to the query at its query frame.
            visible: ``(N, T) bool``: False when a layer in front covers the point (coverage >= 0.5)
                or the point lies outside the image (pixel area ``[-0.5, W - 0.5) x [-0.5, H - 0.5)``).
        """
        q, f = self._check_queries(query_xy, query_frame)
        n, t_all = q.shape[0], self.num_frames
        lid = self.query_layers(q, f)
        tracks = np.empty((n, t_all, 2), np.float64)
        for m in np.unique(lid):
            sel = lid == m
            layer = self.layers[int(m)]
            uv = apply_affines(layer.to_texture[f[sel]], q[sel])  # (n_m, 2)
            tracks[sel] = apply_affines(layer.to_image[None], uv[:, None, :])
        tracks[np.arange(n), f] = q
        x, y = tracks[..., 0], tracks[..., 1]
        visible = (x >= -0.5) & (x < self.width - 0.5) & (y >= -0.5) & (y < self.height - 0.5)
        for m in range(1, len(self.layers)):
            behind = lid < m
            if not behind.any():
                continue
            layer = self.layers[m]
            cov = layer.coverage(apply_affines(layer.to_texture[None], tracks[behind]))
            visible[behind] &= cov < 0.5
        return tracks, visible

    def sample_queries(self, n: int, frame: int = 0, seed: int = 0, margin_px: int = 2,
                       layers: Sequence[int] | None = None) -> np.ndarray:
        """Up to ``n`` random query points ``(n, 2) float64`` at pixel centres of frame ``frame``.

        Points are at least ``margin_px`` px away from any layer boundary and from the image
        border (so their colour is unambiguous); ``layers`` restricts them to those layer ids.
        """
        ids = self._composite(frame)[1]
        k = 2 * margin_px + 1
        kernel = np.ones((k, k), np.uint8)
        ok = cv2.erode(ids, kernel) == cv2.dilate(ids, kernel)
        ok &= ids >= 0
        if layers is not None:
            ok &= np.isin(ids, np.asarray(list(layers)))
        ok[:margin_px, :] = False
        ok[-margin_px:, :] = False
        ok[:, :margin_px] = False
        ok[:, -margin_px:] = False
        ys, xs = np.nonzero(ok)
        rng = np.random.default_rng(seed)
        pick = rng.permutation(xs.size)[:n]
        return np.stack([xs[pick], ys[pick]], axis=1).astype(np.float64)


# ------------------------------------------------------------------------------ random scenes
def _norm_wiggle(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random signal scaled to peak |value| = 1 (0 at frame 0)."""
    w = smooth_wiggle(num_frames, rng, 1.0)
    peak = np.abs(w).max()
    return w / peak if peak > 0 else w


def _outline(kind: str, radius: float, rng: np.random.Generator) -> np.ndarray:
    if kind == "ellipse":
        return ellipse_outline(radius, radius * rng.uniform(0.55, 1.0))
    if kind == "polygon":
        return polygon_outline(radius, rng)
    hh = radius * rng.uniform(0.5, 0.9)
    return rounded_rect_outline(radius, hh, hh * rng.uniform(0.2, 0.5))


def make_scene(config: SceneConfig | None = None) -> SyntheticScene:
    """A random layered scene as described by ``config`` (defaults: the demo scene)."""
    cfg = config or SceneConfig()
    rng = np.random.default_rng(cfg.seed)
    t_all, w, h = cfg.num_frames, cfg.width, cfg.height
    real = None
    if cfg.real_textures:
        from .real_textures import texture_pool

        real = texture_pool(cfg.real_textures, tuple(cfg.real_textures_exclude))
    tex = dict(real=real, real_share=cfg.real_texture_share)
    t = np.arange(t_all, dtype=np.float64)

    # background: slow pan in a random direction + gentle wobble, rotation and zoom
    ang = rng.uniform(0, 2 * np.pi)
    bg = PosePath(
        cx=w / 2 + cfg.bg_speed * (np.cos(ang) * t + 0.3 * smooth_wiggle(t_all, rng, 1.0)),
        cy=h / 2 + cfg.bg_speed * (np.sin(ang) * t + 0.3 * smooth_wiggle(t_all, rng, 1.0)),
        theta=np.deg2rad(cfg.bg_rotation) * _norm_wiggle(t_all, rng),
        scale=1.0 + cfg.bg_zoom * _norm_wiggle(t_all, rng),
    )
    layers = [background_layer(bg, w, h, rng, cfg.texture, **tex)]

    side = min(w, h)
    first_shape = int(rng.integers(len(_SHAPES)))
    for k in range(cfg.num_layers):
        kind = _SHAPES[(first_shape + k) % len(_SHAPES)]
        outline = _outline(kind, rng.uniform(*cfg.fg_size) * side, rng)
        theta0 = rng.uniform(-np.pi, np.pi)
        theta = theta0 + smooth_wiggle(t_all, rng, np.deg2rad(cfg.fg_rotation))
        scale = np.exp(np.log1p(cfg.fg_scale) * _norm_wiggle(t_all, rng))
        exit_layer = cfg.exit_reenter and k == cfg.num_layers - 1
        if exit_layer:
            # out along a sine arc: fully outside the image while sin(pi t / (T-1)) > sin(67.5 deg),
            # i.e. for about a quarter of the clip, then back to the start
            extent = np.abs(outline).max() * (1 + cfg.fg_scale) + 2.0
            amp = (w / 2 + extent) / np.sin(np.deg2rad(67.5))
            direction = 1.0 if rng.random() < 0.5 else -1.0
            phase = np.sin(np.pi * t / max(t_all - 1, 1))
            cx = w / 2 + direction * amp * phase
            cy = h * rng.uniform(0.35, 0.65) + smooth_wiggle(t_all, rng, 0.5 * cfg.fg_speed, cycles=(0.5, 1.5))
            name = f"{kind}_exit"
        else:
            s = cfg.fg_speed / np.sqrt(2)
            cx = w * rng.uniform(0.2, 0.8) + smooth_wiggle(t_all, rng, s, cycles=(0.5, 1.5))
            cy = h * rng.uniform(0.2, 0.8) + smooth_wiggle(t_all, rng, s, cycles=(0.5, 1.5))
            name = kind
        path = PosePath(cx=cx, cy=cy, theta=theta, scale=scale)
        layers.append(shape_layer(name, outline, path, rng, cfg.texture, **tex))
    return SyntheticScene(w, h, layers, noise_std=cfg.noise_std, seed=cfg.seed)


def default_demo_scene(seed: int = 0) -> SyntheticScene:
    """The default demo: 640x360, 120 frames, panning background, 5 foreground shapes."""
    return make_scene(SceneConfig(seed=seed))
