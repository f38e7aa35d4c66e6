"""Configuration of a random synthetic scene (all distances in px, times in frames)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import ConfigError

TEXTURE_KINDS = ("mixed", "noise", "lowtex")


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of :func:`gs_tracker_ros.synthetic.make_scene`.

    The defaults give the demo scene: 640x360, 120 frames, a panning background and five
    textured foreground shapes, the topmost of which leaves the view and comes back.

    Attributes:
        width, height: image size in px.
        num_frames: clip length in frames.
        num_layers: number of *foreground* layers (the background is layer 0 and always exists;
            foreground layers get ids 1..num_layers, a larger id is nearer the camera).
        seed: seed of every random choice (textures, shapes, motions, noise).
        bg_speed: mean pan speed of the background, px/frame.
        bg_rotation: peak background rotation over the clip, degrees.
        bg_zoom: peak relative background zoom over the clip (0.04 = +-4 %).
        fg_speed: peak translational speed of a foreground layer, px/frame.
        fg_rotation: peak rotational speed of a foreground layer, degrees/frame.
        fg_scale: peak relative scale change of a foreground layer (0.1 = +-10 %).
        fg_size: (min, max) foreground shape radius as a fraction of min(width, height).
        texture: "mixed" (multi-scale noise + blobs + lines), "noise" (multi-scale noise only)
            or "lowtex" (weak, low-contrast noise; a hard case for trackers).
        noise_std: std of i.i.d. Gaussian sensor noise added to every rendered frame, in grey
            levels (0..255). Ground truth is unaffected.
        exit_reenter: if True the topmost foreground layer moves out along a sine arc, is
            completely outside the image for roughly 25-40 % of the clip (middle part), then comes
            back to where it started.
        real_textures: folder of real video frames (``<root>/<seq>/*.jpg``, e.g.
            ``../shared/data/davis_unlabeled``) whose random crops texture the layers; empty = only
            procedural textures (the default). A folder that does not exist is an error.
        real_textures_exclude: sequence names not cropped from (e.g. held-out sequences).
        real_texture_share: share of the layers textured with a real crop (the others get a
            procedural texture of kind ``texture``).
    """

    width: int = 640
    height: int = 360
    num_frames: int = 120
    num_layers: int = 5
    seed: int = 0
    bg_speed: float = 1.0
    bg_rotation: float = 3.0
    bg_zoom: float = 0.04
    fg_speed: float = 3.0
    fg_rotation: float = 1.0
    fg_scale: float = 0.1
    fg_size: tuple[float, float] = (0.10, 0.22)
    texture: str = "mixed"
    noise_std: float = 1.5
    exit_reenter: bool = True
    real_textures: str = ""
    real_textures_exclude: tuple[str, ...] = ()
    real_texture_share: float = 1.0

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ConfigError(f"scene size must be at least 16x16 px, got {self.width}x{self.height}")
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.num_layers < 0:
            raise ConfigError(f"num_layers must be >= 0, got {self.num_layers}")
        if self.exit_reenter and self.num_layers < 1:
            raise ConfigError("exit_reenter needs at least one foreground layer (num_layers >= 1)")
        if self.texture not in TEXTURE_KINDS:
            raise ConfigError(f"texture must be one of {TEXTURE_KINDS}, got {self.texture!r}")
        lo, hi = self.fg_size
        if not 0.0 < lo <= hi <= 0.5:
            raise ConfigError(f"fg_size must satisfy 0 < min <= max <= 0.5, got {self.fg_size}")
        for name in ("bg_speed", "bg_rotation", "bg_zoom", "fg_speed", "fg_rotation", "fg_scale", "noise_std"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.bg_zoom >= 0.5 or self.fg_scale >= 0.5:
            raise ConfigError("bg_zoom and fg_scale must be < 0.5")
        if not 0.0 <= self.real_texture_share <= 1.0:
            raise ConfigError(f"real_texture_share must be in [0, 1], got {self.real_texture_share}")
