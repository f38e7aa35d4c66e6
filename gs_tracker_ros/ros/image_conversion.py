"""sensor_msgs/Image <-> numpy, without cv_bridge.

``image_to_rgb`` views ``msg.data`` in place (no copy) with the row stride ``msg.step``, so
padded rows are handled; it returns the RGB ``(H, W, 3) uint8`` frame the tracker core expects
(the view itself for unpadded ``rgb8``, otherwise one conversion copy). ``rgb_to_image`` builds an
``rgb8`` message for the overlay.

Supported encodings: rgb8, bgr8, rgba8, bgra8, mono8, mono16 (mono16 is scaled to 8 bit by a
right shift, default 8: ``v8 = min(v16 >> shift, 255)``; for a 12-bit camera use shift 4). Anything
else raises :class:`UnsupportedEncodingError`; inconsistent sizes raise
:class:`ImageLayoutError`. Both are :class:`~gs_tracker_ros.core.errors.InputError` with a message
naming the problem. sensor_msgs/CompressedImage (jpeg, png; image_transport's ``compressed``
transport) goes through :func:`compressed_to_rgb`; corrupt data raises :class:`ImageLayoutError`.
"""

from __future__ import annotations

import array
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError

# encoding -> (channels, bytes per channel)
ENCODINGS: dict[str, tuple[int, int]] = {
    "rgb8": (3, 1),
    "bgr8": (3, 1),
    "rgba8": (4, 1),
    "bgra8": (4, 1),
    "mono8": (1, 1),
    "mono16": (1, 2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(ENCODINGS)


class ImageConversionError(InputError):
    """A sensor_msgs/Image cannot be turned into a frame."""


class UnsupportedEncodingError(ImageConversionError):
    """The image encoding is not one of :data:`SUPPORTED_ENCODINGS`."""

    def __init__(self, encoding: str, supported: tuple[str, ...] = SUPPORTED_ENCODINGS) -> None:
        self.encoding = encoding
        super().__init__(f"unsupported image encoding '{encoding}'; supported: {', '.join(supported)}")


class ImageLayoutError(ImageConversionError):
    """width / height / step / data length do not fit together."""


def _byte_buffer(data: Any) -> memoryview:
    """``msg.data`` (array.array('B') from rclpy, bytes, numpy, or a list) as a flat byte memoryview."""
    try:
        view = memoryview(data)
    except TypeError:  # e.g. a plain list of ints
        return memoryview(np.asarray(data, np.uint8).reshape(-1))
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B") if view.c_contiguous else memoryview(bytes(view))
    return view


def image_view(msg: Any) -> np.ndarray:
    """Zero-copy view of ``msg.data`` as ``(H, W, C)`` (uint8, or uint16 for mono16 in the
    message's byte order), honouring ``msg.step``. Raises on an unknown encoding or bad layout."""
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise UnsupportedEncodingError(encoding)
    channels, depth = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageLayoutError(f"empty {encoding} image: width={width}, height={height}")
    row_bytes = width * channels * depth
    if step < row_bytes:
        raise ImageLayoutError(
            f"{encoding} image {width}x{height}: step {step} is smaller than a row ({width} px x "
            f"{channels * depth} bytes = {row_bytes})"
        )
    buf = _byte_buffer(msg.data)
    size = buf.nbytes
    if size != step * height:
        raise ImageLayoutError(
            f"{encoding} image {width}x{height}: data has {size} bytes, expected step x height = "
            f"{step} x {height} = {step * height}"
        )
    if depth == 1:
        dtype = np.dtype(np.uint8)
    else:
        dtype = np.dtype(">u2" if msg.is_bigendian else "<u2")
    return np.ndarray(
        shape=(height, width, channels),
        dtype=dtype,
        buffer=buf,
        strides=(step, channels * depth, depth),
    )


def image_to_rgb(msg: Any, mono16_shift: int = 8) -> np.ndarray:
    """RGB ``(H, W, 3) uint8`` frame from a sensor_msgs/Image (see the module docstring)."""
    if not 0 <= int(mono16_shift) <= 8:
        raise ImageConversionError(f"mono16_shift must be in [0, 8], got {mono16_shift}")
    view = image_view(msg)
    encoding = msg.encoding
    if encoding == "rgb8":
        return view if view.flags.c_contiguous else np.ascontiguousarray(view)
    if encoding == "bgr8":
        return cv2.cvtColor(view, cv2.COLOR_BGR2RGB)
    if encoding == "rgba8":
        return np.ascontiguousarray(view[:, :, :3])
    if encoding == "bgra8":
        return cv2.cvtColor(view, cv2.COLOR_BGRA2RGB)
    if encoding == "mono8":
        return cv2.cvtColor(view[:, :, 0], cv2.COLOR_GRAY2RGB)
    # mono16: native-endian copy, shift, saturate
    grey = view[:, :, 0].astype(np.uint16, copy=False) >> np.uint16(int(mono16_shift))
    grey8 = np.minimum(grey, 255).astype(np.uint8)
    return cv2.cvtColor(grey8, cv2.COLOR_GRAY2RGB)


# ------------------------------------------------------------------------------ compressed
COMPRESSED_FORMATS = ("jpeg", "png")


def compressed_format(fmt: str) -> str:
    """``jpeg`` or ``png`` from a sensor_msgs/CompressedImage ``format``: image_transport's
    compressed plugin writes e.g. ``rgb8; jpeg compressed bgr8``, others just ``jpeg`` / ``png``.
    Raises :class:`UnsupportedEncodingError` for anything else (e.g. the ``compressedDepth``
    plugin's ``16UC1; compressedDepth png``)."""
    text = str(fmt).lower()
    if "compresseddepth" not in text:
        for name in COMPRESSED_FORMATS:
            if name in text or (name == "jpeg" and "jpg" in text):
                return name
    raise UnsupportedEncodingError(str(fmt), COMPRESSED_FORMATS)


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """RGB ``(H, W, 3) uint8`` frame from a sensor_msgs/CompressedImage (jpeg or png, as
    image_transport's ``compressed`` transport publishes it). Corrupt or truncated data raises
    :class:`ImageLayoutError` naming the format; 16-bit png is reduced to 8 bit by OpenCV."""
    name = compressed_format(msg.format)
    buf = np.frombuffer(_byte_buffer(msg.data), np.uint8)
    if buf.size == 0:
        raise ImageLayoutError(f"compressed {name} image with no data")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageLayoutError(f"cannot decode the compressed {name} image ({buf.size} bytes): corrupt or truncated")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def rgb_to_compressed(rgb: np.ndarray, fmt: str = "jpeg", header: Any = None, quality: int = 95) -> Any:
    """A sensor_msgs/CompressedImage (``format`` as image_transport writes it for rgb8 input)
    holding ``rgb (H, W, 3) uint8`` (tests, tools, the benchmark)."""
    from sensor_msgs.msg import CompressedImage

    if fmt not in COMPRESSED_FORMATS:
        raise UnsupportedEncodingError(fmt, COMPRESSED_FORMATS)
    bgr = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, data = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", bgr, params)
    if not ok:
        raise ImageConversionError(f"cannot encode a {rgb.shape} frame as {fmt}")
    msg = CompressedImage()
    if header is not None:
        msg.header.stamp = header.stamp
        msg.header.frame_id = header.frame_id
    msg.format = f"rgb8; {fmt} compressed bgr8"
    out = array.array("B")
    out.frombytes(data.tobytes())
    msg.data = out
    return msg


def rgb_to_image(rgb: np.ndarray, header: Any = None, msg: Any = None) -> Any:
    """A sensor_msgs/Image (``rgb8``, unpadded) holding ``rgb (H, W, 3) uint8``.

    ``header`` (std_msgs/Header) is copied into the message when given; ``msg`` may be an
    existing Image to fill (default: a new one).
    """
    from sensor_msgs.msg import Image

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"expected an RGB (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    out = Image() if msg is None else msg
    if header is not None:
        out.header.stamp = header.stamp
        out.header.frame_id = header.frame_id
    out.height, out.width = int(rgb.shape[0]), int(rgb.shape[1])
    out.encoding = "rgb8"
    out.is_bigendian = 0
    out.step = out.width * 3
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(rgb).data)
    out.data = data
    return out


def numpy_to_image(pixels: np.ndarray, encoding: str, header: Any = None, step: int | None = None,
                   is_bigendian: bool = False) -> Any:
    """A sensor_msgs/Image of any supported encoding from ``(H, W[, C])`` pixels (tests, tools).

    ``step`` larger than a row pads each row with zeros; ``is_bigendian`` applies to mono16.
    """
    from sensor_msgs.msg import Image

    if encoding not in ENCODINGS:
        raise UnsupportedEncodingError(encoding)
    channels, depth = ENCODINGS[encoding]
    px = np.asarray(pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    want = np.uint16 if depth == 2 else np.uint8
    if px.ndim != 3 or px.shape[2] != channels or px.dtype != want:
        raise ImageConversionError(f"{encoding} needs (H, W, {channels}) {np.dtype(want).name}, got {px.dtype} {px.shape}")
    h, w = px.shape[:2]
    row = w * channels * depth
    step = row if step is None else int(step)
    if step < row:
        raise ImageLayoutError(f"step {step} is smaller than a row ({row} bytes)")
    if depth == 2:
        px = px.astype(">u2" if is_bigendian else "<u2")
    rows = np.zeros((h, step), np.uint8)
    rows[:, :row] = np.ascontiguousarray(px).view(np.uint8).reshape(h, row)
    msg = Image()
    if header is not None:
        msg.header.stamp = header.stamp
        msg.header.frame_id = header.frame_id
    msg.height, msg.width, msg.encoding, msg.step = h, w, encoding, step
    msg.is_bigendian = int(bool(is_bigendian and depth == 2))
    data = array.array("B")
    data.frombytes(rows.data)
    msg.data = data
    return msg
