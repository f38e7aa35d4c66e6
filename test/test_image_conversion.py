"""sensor_msgs/Image <-> numpy without cv_bridge: every encoding, row padding, mono16 byte order,
zero-copy views and clear errors. No DDS: messages are only built in this process."""

from __future__ import annotations

import array

import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg", reason="ROS 2 wheels not installed (make setup)")

from sensor_msgs.msg import Image
from std_msgs.msg import Header

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.ros.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageLayoutError,
    UnsupportedEncodingError,
    image_to_rgb,
    image_view,
    numpy_to_image,
    rgb_to_image,
)

H, W = 5, 7


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _raw(encoding: str, pixels: np.ndarray, step: int, bigendian: bool = False) -> Image:
    """An Image built by hand (independent of numpy_to_image): rows padded with 0xEE bytes."""
    rows = bytearray()
    row_bytes = pixels[0].astype(">u2" if bigendian else "<u2").tobytes() if pixels.dtype == np.uint16 else pixels[0].tobytes()
    for r in range(pixels.shape[0]):
        px = pixels[r]
        b = px.astype(">u2" if bigendian else "<u2").tobytes() if pixels.dtype == np.uint16 else px.tobytes()
        rows += b + b"\xee" * (step - len(row_bytes))
    msg = Image(height=pixels.shape[0], width=pixels.shape[1], encoding=encoding, step=step,
                is_bigendian=int(bigendian))
    msg.data = array.array("B", bytes(rows))
    return msg


@pytest.mark.parametrize("pad", [0, 3, 13])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_with_row_padding(encoding, pad):
    rgb = _rgb()
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = rgb[:, :, ::-1]
    elif encoding == "rgba8":
        px = np.concatenate([rgb, np.full((H, W, 1), 77, np.uint8)], axis=2)
    else:
        px = np.concatenate([rgb[:, :, ::-1], np.full((H, W, 1), 77, np.uint8)], axis=2)
    msg = _raw(encoding, np.ascontiguousarray(px), W * px.shape[2] + pad)
    out = image_to_rgb(msg)
    assert out.dtype == np.uint8 and out.shape == (H, W, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("pad", [0, 5])
def test_mono8_becomes_grey_rgb(pad):
    grey = _rgb()[:, :, 0]
    out = image_to_rgb(_raw("mono8", grey[:, :, None], W + pad))
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], grey)


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("pad", [0, 2, 3])  # 3: odd step, unaligned uint16 rows
def test_mono16_byte_order_padding_and_scaling(bigendian, pad):
    v = np.array([[0, 255, 256, 4095, 65535, 32768, 1000]] * H, np.uint16)
    msg = _raw("mono16", v[:, :, None], W * 2 + pad, bigendian)
    np.testing.assert_array_equal(image_view(msg)[:, :, 0].astype(np.uint16), v)
    out8 = image_to_rgb(msg)  # default shift 8
    np.testing.assert_array_equal(out8[:, :, 1], np.minimum(v >> 8, 255).astype(np.uint8))
    out4 = image_to_rgb(msg, mono16_shift=4)  # 12-bit data
    np.testing.assert_array_equal(out4[:, :, 0], np.minimum(v >> 4, 255).astype(np.uint8))


def test_unpadded_rgb8_is_a_zero_copy_view_of_the_message_data():
    msg = _raw("rgb8", _rgb(), W * 3)
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))
    padded = _raw("rgb8", _rgb(), W * 3 + 4)
    view = image_view(padded)
    assert np.shares_memory(view, np.frombuffer(padded.data, np.uint8))
    assert view.strides[0] == W * 3 + 4


@pytest.mark.parametrize("encoding", ["yuv422", "32FC1", "bayer_rggb8", "16UC1", ""])
def test_unsupported_encoding_names_it(encoding):
    msg = Image(height=H, width=W, encoding=encoding, step=W * 2)
    msg.data = array.array("B", bytes(H * W * 2))
    with pytest.raises(UnsupportedEncodingError) as info:
        image_to_rgb(msg)
    assert f"'{encoding}'" in str(info.value) and "rgb8" in str(info.value)
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize(
    "width,height,step,size,needle",
    [
        (W, H, W * 3, W * 3 * H - 1, "data has"),  # one byte short
        (W, H, W * 3, W * 3 * H + 3, "data has"),  # too long
        (W, H, W * 3 - 1, (W * 3 - 1) * H, "step"),  # step smaller than a row
        (0, H, 0, 0, "empty"),
        (W, 0, W * 3, 0, "empty"),
    ],
)
def test_layout_mismatches_raise_clear_errors(width, height, step, size, needle):
    msg = Image(height=height, width=width, encoding="rgb8", step=step)
    msg.data = array.array("B", bytes(size))
    with pytest.raises(ImageLayoutError) as info:
        image_to_rgb(msg)
    assert needle in str(info.value) and "rgb8" in str(info.value)


def test_rgb_to_image_round_trip_keeps_header():
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    rgb = _rgb(3)
    msg = rgb_to_image(rgb, header)
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", W, H, W * 3)
    assert msg.header.frame_id == "cam" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    with pytest.raises(InputError):
        rgb_to_image(rgb[:, :, 0])


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_numpy_to_image_round_trip_for_every_encoding(encoding):
    rgb = _rgb(4)
    if encoding in ("mono8", "mono16"):
        grey = rgb[:, :, 0]
        px = grey.astype(np.uint16) << 8 if encoding == "mono16" else grey
        expect = np.repeat(grey[:, :, None], 3, axis=2)
    elif encoding in ("rgba8", "bgra8"):
        base = rgb if encoding == "rgba8" else rgb[:, :, ::-1]
        px = np.concatenate([base, np.zeros((H, W, 1), np.uint8)], axis=2)
        expect = rgb
    else:
        px = rgb if encoding == "rgb8" else np.ascontiguousarray(rgb[:, :, ::-1])
        expect = rgb
    for bigendian in (False, True):
        msg = numpy_to_image(px, encoding, step=None, is_bigendian=bigendian)
        np.testing.assert_array_equal(image_to_rgb(msg), expect)
        padded = numpy_to_image(px, encoding, step=msg.step + 6, is_bigendian=bigendian)
        np.testing.assert_array_equal(image_to_rgb(padded), expect)


def test_duck_typed_messages_with_numpy_data_and_no_rclpy():
    """gs_tracker_ros.bag converts rosbags messages (data: a numpy array) with image_to_rgb, in
    processes without rclpy: the module must not import ROS at import time."""
    import subprocess
    import sys
    from types import SimpleNamespace

    rgb = _rgb(5)
    padded = np.zeros((H, W * 3 + 2), np.uint8)
    padded[:, : W * 3] = rgb.reshape(H, -1)
    msg = SimpleNamespace(height=H, width=W, encoding="rgb8", is_bigendian=0, step=W * 3 + 2,
                          data=padded.reshape(-1))
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)
    code = ("import sys; import gs_tracker_ros.ros.image_conversion, gs_tracker_ros.core.seeding, "
            "gs_tracker_ros.ros.parameters; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('rclpy', 'sensor_msgs', 'std_msgs', 'rcl_interfaces')]; assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr



# ------------------------------------------------------------------------------ compressed
@pytest.mark.parametrize("fmt, tol", [("png", 0), ("jpeg", 12)])
def test_compressed_round_trip(fmt, tol):
    pytest.importorskip("sensor_msgs", reason="ROS messages not installed (make setup)")
    from gs_tracker_ros.ros.image_conversion import compressed_to_rgb, rgb_to_compressed

    import cv2

    rgb = cv2.GaussianBlur(_rgb(3), (0, 0), 1.5)  # smooth: jpeg keeps it close
    msg = rgb_to_compressed(rgb, fmt, quality=98)
    assert msg.format == f"rgb8; {fmt} compressed bgr8"
    out = compressed_to_rgb(msg)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= tol  # RGB order kept (not BGR)


@pytest.mark.parametrize("fmt, expected", [
    ("jpeg", "jpeg"), ("png", "png"), ("rgb8; jpeg compressed bgr8", "jpeg"), ("mono8; png compressed mono8", "png"),
    ("JPG", "jpeg"),
])
def test_compressed_formats_as_image_transport_writes_them(fmt, expected):
    from gs_tracker_ros.ros.image_conversion import compressed_format

    assert compressed_format(fmt) == expected


def test_corrupt_or_unsupported_compressed_images_are_refused_with_the_reason():
    from types import SimpleNamespace

    import cv2

    from gs_tracker_ros.ros.image_conversion import (
        ImageLayoutError, UnsupportedEncodingError, compressed_to_rgb,
    )

    ok, data = cv2.imencode(".jpg", _rgb(4))
    cut = SimpleNamespace(format="jpeg", data=data.tobytes()[: data.size // 3])
    with pytest.raises(ImageLayoutError, match=r"cannot decode the compressed jpeg image \(\d+ bytes\): corrupt"):
        compressed_to_rgb(cut)
    with pytest.raises(ImageLayoutError, match="no data"):
        compressed_to_rgb(SimpleNamespace(format="png", data=b""))
    with pytest.raises(UnsupportedEncodingError, match=r"'16UC1; compressedDepth png'; supported: jpeg, png"):
        compressed_to_rgb(SimpleNamespace(format="16UC1; compressedDepth png", data=data.tobytes()))
