"""Deformable 2-D convolution (v1 and modulated v2) in plain torch, on ``F.grid_sample``.

Same semantics as ``torchvision.ops.deform_conv2d`` (which this project cannot install):

- ``weight (C_out, C_in, kh, kw)``; output tap ``(i, j)`` (row ``i`` in ``0..kh-1``, column ``j``)
  of output pixel ``(ho, wo)`` reads the input at the fractional pixel position
  ``y = ho * stride_y - pad_y + i * dilation_y + dy``, ``x = wo * stride_x - pad_x + j * dilation_x + dx``
  (pixel centres at integer coordinates, y down, x right, offsets in input pixels).
- ``offset (B, 2 * G * kh * kw, H_out, W_out)``: for offset group ``g`` and kernel tap
  ``k = i * kw + j`` the channel ``g * 2*kh*kw + 2*k`` holds ``dy`` and the next channel holds ``dx``
  (the pair is (y, x), interleaved per tap). Input channels are split into ``G`` consecutive groups
  of ``C_in / G`` channels; group ``g`` moves with its own offsets.
- ``mask (B, G * kh * kw, H_out, W_out)`` or None: channel ``g * kh*kw + k`` multiplies tap ``k``'s
  sample (modulated deformable convolution, DCNv2). None means every mask value is 1 (DCNv1).
- Samples are bilinear; the image is zero outside ``[0, W-1] x [0, H-1]`` (each of the four
  neighbours of a sample that falls outside contributes 0), which is ``grid_sample`` with
  ``padding_mode="zeros"``. With zero offsets and no mask the result equals ``F.conv2d``.

Cost: one ``grid_sample`` over ``kh*kw`` sample grids and one matrix product; memory is
``B * C_in * kh*kw * H_out * W_out`` floats for the sampled columns.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable convolution of ``x (B, C_in, H, W)`` -> ``(B, C_out, H_out, W_out)``.

    Conventions (offset layout ``(dy, dx)`` per tap, offsets in input pixels, zero outside the
    image) are in the module docstring. ``weight`` groups are not supported (``weight.shape[1]``
    must equal ``C_in``); offset groups ``G`` are read from ``offset.shape[1] / (2*kh*kw)``.
    """
    b, c_in, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    if c_w != c_in:
        raise ValueError(f"deform_conv2d: weight has {c_w} input channels, input has {c_in} (groups unsupported)")
    sy, sx = _pair(stride)
    py, px = _pair(padding)
    dy_, dx_ = _pair(dilation)
    h_out = (h + 2 * py - dy_ * (kh - 1) - 1) // sy + 1
    w_out = (w + 2 * px - dx_ * (kw - 1) - 1) // sx + 1
    taps = kh * kw
    if offset.shape[1] % (2 * taps) != 0:
        raise ValueError(f"deform_conv2d: offset has {offset.shape[1]} channels, not a multiple of 2*kh*kw={2 * taps}")
    groups = offset.shape[1] // (2 * taps)
    if c_in % groups != 0:
        raise ValueError(f"deform_conv2d: {c_in} input channels do not split into {groups} offset groups")
    if tuple(offset.shape) != (b, 2 * groups * taps, h_out, w_out):
        raise ValueError(f"deform_conv2d: offset shape {tuple(offset.shape)} != {(b, 2 * groups * taps, h_out, w_out)}")
    if mask is not None and tuple(mask.shape) != (b, groups * taps, h_out, w_out):
        raise ValueError(f"deform_conv2d: mask shape {tuple(mask.shape)} != {(b, groups * taps, h_out, w_out)}")

    dtype, device = x.dtype, x.device
    # Regular sampling positions of every tap, in input pixels.
    ki = torch.arange(kh, device=device, dtype=dtype).repeat_interleave(kw) * dy_  # (taps,) row of tap k
    kj = torch.arange(kw, device=device, dtype=dtype).repeat(kh) * dx_  # (taps,) column of tap k
    ys = torch.arange(h_out, device=device, dtype=dtype) * sy - py  # (H_out,)
    xs = torch.arange(w_out, device=device, dtype=dtype) * sx - px  # (W_out,)
    base_y = ki[:, None, None] + ys[None, :, None]  # (taps, H_out, 1)
    base_x = kj[:, None, None] + xs[None, None, :]  # (taps, 1, W_out)

    off = offset.reshape(b * groups, taps, 2, h_out, w_out)
    pos_y = base_y + off[:, :, 0]  # (B*G, taps, H_out, W_out) input row
    pos_x = base_x + off[:, :, 1]  # (B*G, taps, H_out, W_out) input column
    # Pixel -> grid_sample's normalised coordinates (align_corners=False: pixel p -> (2p+1)/size - 1).
    grid = torch.stack(((2.0 * pos_x + 1.0) / w - 1.0, (2.0 * pos_y + 1.0) / h - 1.0), dim=-1)
    grid = grid.reshape(b * groups, taps * h_out, w_out, 2)

    xg = x.reshape(b * groups, c_in // groups, h, w)
    cols = F.grid_sample(xg, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = cols.reshape(b, groups, c_in // groups, taps, h_out, w_out)  # (B, G, C_in/G, taps, H_out, W_out)
    if mask is not None:
        cols = cols * mask.reshape(b, groups, 1, taps, h_out, w_out)
    cols = cols.reshape(b, c_in * taps, h_out * w_out)  # channel-major, tap-minor: matches weight's layout
    out = torch.matmul(weight.reshape(c_out, c_in * taps), cols)  # (B, C_out, H_out*W_out)
    out = out.reshape(b, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)
    return out
