"""Encoder engines: one interface, parity between backends, the TensorRT plan cache, user errors.

Parity tolerance (fp32, ONNX Runtime vs eager torch on the same clip): 1e-4 relative to each
output's scale (max |torch output|, at least 1). Both compute in IEEE fp32 but in different
operation order / fused kernels, so results differ by rounding only: measured max |diff| is
~1e-7 .. 1e-6 (a few float32 ulps of values of size 1-4). A real graph difference (a wrong op,
a missed constant, a stale export) shows up at 1e-3 or more, so 1e-4 separates the two with
margin on both sides.
"""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

from gs_tracker_ros.core.clip_buffer import ClipBuffer
from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.core.errors import ConfigError, InputError, TrackerError
from gs_tracker_ros.engines import factory as engines_factory, files as engines_files
from gs_tracker_ros.engines.base import EncoderEngine, EngineBuildError, EngineUnavailableError
from gs_tracker_ros.engines.factory import build_engine, engine_from_settings
from gs_tracker_ros.engines.cache import CacheKey, EngineCache, sidecar_path
from gs_tracker_ros.engines.export import export_checkpoint, sha256_file
from gs_tracker_ros.engines.onnxruntime_engine import OnnxRuntimeEngine
from gs_tracker_ros.engines.settings import EngineSettings
from gs_tracker_ros.engines.tensorrt_engine import _cuda_problem, _tensorrt_problem, build_plan
from gs_tracker_ros.engines.torch_engine import TorchEngine
from gs_tracker_ros.model.checkpoint import load_model, save_checkpoint
from gs_tracker_ros.model.gaussians import FIELDS, GaussianClip
from gs_tracker_ros.motion.gaussian import GaussianMotionSource
from gs_tracker_ros.methods import build_sources

from test_export import SMALL, small_model  # test/ is on sys.path (pytest's default prepend import mode)

FP32_REL_TOL = 1e-4
TRT_PROBLEMS = [p for p in (_tensorrt_problem(), _cuda_problem()) if p]
needs_trt = pytest.mark.skipif(bool(TRT_PROBLEMS), reason="TensorRT on a CUDA GPU not available: "
                               + "; ".join(TRT_PROBLEMS))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engines")
    model = small_model(seed=3)
    ckpt = save_checkpoint(folder / "small.pt", model)
    info = export_checkpoint(ckpt, folder / "small.onnx")
    return SimpleNamespace(folder=folder, model=model, ckpt=ckpt, onnx=info.path, info=info)


@pytest.fixture(scope="module")
def engines(files):
    return {"torch": build_engine("torch", model_path=files.ckpt),
            "onnxruntime": build_engine("onnxruntime", onnx_path=files.onnx, threads=1)}


def _clip(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _max_rel_diffs(a: GaussianClip, b: GaussianClip) -> dict[str, tuple[float, float]]:
    out = {}
    for name in FIELDS:
        x, y = getattr(a, name).numpy(), getattr(b, name).numpy()
        out[name] = (float(np.abs(x - y).max()), max(1.0, float(np.abs(y).max())))
    return out


# ---------------------------------------------------------------------------------------------- interface
def test_the_backend_table_names_every_configurable_backend():
    from gs_tracker_ros.engines.settings import BACKENDS

    assert tuple(engines_factory.ENGINE_BUILDERS) == BACKENDS


def test_one_interface_for_every_backend(engines, files):
    t, s = SMALL["num_frames"], SMALL["img_size"]
    for name, eng in engines.items():
        assert isinstance(eng, EncoderEngine) and eng.backend == name
        assert eng.input_shape == (t, s, s, 3) and eng.num_frames == t and eng.input_size == (s, s)
        g = eng(_clip(eng.input_shape))
        assert isinstance(g, GaussianClip) and g.means.dtype == torch.float32
        assert (g.height, g.width, g.num_frames, g.num_gaussians) == (s, s, t, SMALL["gaussian_grid"] ** 2)
        with pytest.raises(InputError, match=r"expects a clip of shape \(4, 32, 32, 3\)"):
            eng(_clip((t, s, s + 8, 3)))
        # uint8 and the same clip as float in [0, 1] give the same Gaussians; a batch of 1 is accepted
        clip = _clip(eng.input_shape, 5)
        a, b = eng(clip), eng(clip[None].astype(np.float32) / 255.0)
        assert torch.equal(a.means, b.means)
        assert json.dumps(eng.describe())


def test_onnxruntime_matches_torch_fp32(engines, capsys):
    clip = _clip(engines["torch"].input_shape, seed=11)
    ref, got = engines["torch"](clip), engines["onnxruntime"](clip)
    diffs = _max_rel_diffs(got, ref)
    with capsys.disabled():
        print("\n  ORT vs torch, fp32, max |diff| (output scale): "
              + ", ".join(f"{k} {d:.1e} ({s:.2f})" for k, (d, s) in diffs.items()))
    for name, (d, scale) in diffs.items():
        assert d <= FP32_REL_TOL * scale, (name, d, scale)
    # the torch engine is the model's own inference path (GMAE.encode), bit for bit
    assert torch.equal(engines["torch"].model.encode(clip).means, ref.means)


def _scene_buffer(n_frames=6, w=96, h=64, seed=2) -> ClipBuffer:
    from gs_tracker_ros.synthetic.config import SceneConfig
    from gs_tracker_ros.synthetic.scene import make_scene

    buf = ClipBuffer(capacity=8)
    for frame in make_scene(SceneConfig(width=w, height=h, num_frames=n_frames, seed=seed)).frames():
        buf.push(frame)
    return buf


def test_gaussian_motion_source_same_displacements_on_ort_and_torch(engines, capsys):
    buf = _scene_buffer()
    gx, gy = np.meshgrid(np.linspace(4, 91, 8), np.linspace(4, 59, 6))
    pts = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    sources = {k: GaussianMotionSource(e, s0=0.0) for k, e in engines.items()}
    worst = {"d": 0.0, "s2": 0.0}
    moved = 0.0
    for a, b in [(2, 5), (3, 5), (5, 2), (4, 3)]:
        est = {k: src.estimate(buf, a, b, pts) for k, src in sources.items()}
        t, o = est["torch"], est["onnxruntime"]
        np.testing.assert_array_equal(o.valid, t.valid)
        worst["d"] = max(worst["d"], float(np.abs(o.displacement - t.displacement).max()))
        worst["s2"] = max(worst["s2"], float((np.abs(o.variance - t.variance) / np.maximum(t.variance, 1)).max()))
        moved = max(moved, float(np.abs(t.displacement).max()))
    assert all(src.encoder_calls == 1 for src in sources.values())
    with capsys.disabled():
        print(f"\n  gmae source ORT vs torch: max |d diff| {worst['d']:.1e} px (largest |d| {moved:.2f} px), "
              f"max rel variance diff {worst['s2']:.1e}")
    assert moved > 0.1  # the perturbed model moves its Gaussians: the comparison is not of zeros
    # encoder outputs agree to ~1e-6 relative; positions are in full-resolution px (3x the encoder's)
    assert worst["d"] <= 1e-3 and worst["s2"] <= 1e-3


# ---------------------------------------------------------------------------------------------- factory / errors
def test_build_engine_user_errors_name_the_file(files, tmp_path):
    with pytest.raises(ConfigError, match="unknown encoder backend 'openvino'"):
        build_engine("openvino", model_path=files.ckpt)
    with pytest.raises(ConfigError, match="precision"):
        build_engine("torch", model_path=files.ckpt, precision="int8")
    with pytest.raises(ConfigError, match="fp32"):
        build_engine("onnxruntime", onnx_path=files.onnx, precision="fp16")
    with pytest.raises(ConfigError, match="fp16 only on CUDA"):
        build_engine("torch", model_path=files.ckpt, precision="fp16")
    with pytest.raises(InputError, match="checkpoint not found: .*missing.pt"):
        build_engine("torch", model_path=tmp_path / "missing.pt")
    with pytest.raises(InputError, match="ONNX encoder not found: .*missing.onnx"):
        build_engine("onnxruntime", onnx_path=tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(files.onnx.read_bytes()[:1000])  # truncated
    with pytest.raises(InputError, match="bad.onnx"):
        build_engine("onnxruntime", onnx_path=bad)
    bad_ckpt = tmp_path / "bad.pt"
    bad_ckpt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="bad.pt"):
        build_engine("torch", model_path=bad_ckpt)
    other = tmp_path / "other_model.pt"
    torch.save({"format": "gs_tracker_ros.gmae/1", "model_config": {"img_size": 32, "num_frames": 4},
                "model": {"nonsense": torch.zeros(1)}}, other)
    with pytest.raises(InputError, match="other_model.pt does not fit"):
        build_engine("torch", model_path=other)


@pytest.mark.skipif(not TRT_PROBLEMS, reason="TensorRT and a GPU are present")
def test_tensorrt_without_gpu_or_module_is_one_clear_error(files):
    with pytest.raises(EngineUnavailableError) as err:
        build_engine("tensorrt", onnx_path=files.onnx)
    msg = str(err.value)
    assert "tensorrt backend cannot run here" in msg and "requirements-gpu.txt" in msg
    assert isinstance(err.value, TrackerError) and "\n" not in msg
    with pytest.raises(EngineUnavailableError):
        engine_from_settings(EngineSettings(backend="tensorrt", onnx_path=str(files.onnx), precision="fp16"))


def test_onnx_exported_into_cache_dir_once_and_reexported_when_corrupt(files, tmp_path):
    eng = build_engine("onnxruntime", model_path=files.ckpt, cache_dir=tmp_path, threads=1)
    sha = sha256_file(files.ckpt)
    cached = tmp_path / f"gmae-{sha[:16]}.onnx"
    assert eng.path == cached and eng.info.checkpoint_sha256 == sha
    stamp = cached.stat().st_mtime_ns
    build_engine("onnxruntime", model_path=files.ckpt, cache_dir=tmp_path, threads=1)
    assert cached.stat().st_mtime_ns == stamp  # reused, not exported again
    cached.write_bytes(b"corrupt")
    eng = build_engine("onnxruntime", model_path=files.ckpt, cache_dir=tmp_path, threads=1)
    assert eng(_clip(eng.input_shape)).num_frames == SMALL["num_frames"]
    # an explicit onnx_path that does not exist yet is exported from the checkpoint
    out = tmp_path / "sub" / "explicit.onnx"
    assert build_engine("onnxruntime", model_path=files.ckpt, onnx_path=out).path == out and out.is_file()


def test_settings_validate_and_registry_builds_gmae_on_the_chosen_backend(files):
    with pytest.raises(ConfigError, match="engine.backend"):
        EngineSettings(backend="cuda").validate()
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) engine.model"):
        EngineSettings.from_dict({"backend": "torch", "model": "x"})
    with pytest.raises(ConfigError, match="threads"):
        EngineSettings(threads=-1).validate()
    settings = {"backend": "onnxruntime", "onnx_path": str(files.onnx), "threads": 1}
    config = TrackerConfig().replace(sources=["gmae"])
    (src,) = build_sources(config, engine=settings)
    assert isinstance(src, GaussianMotionSource) and src.encoder.backend == "onnxruntime"
    assert src.num_frames == SMALL["num_frames"] and src.input_size == (SMALL["img_size"],) * 2
    eng = TorchEngine(files.model)
    (src,) = build_sources(config, engine=eng)  # an already built engine is used as it is
    assert src.encoder is eng
    assert src.window_hop == 1  # alone: a window per frame
    _, fused = build_sources(TrackerConfig().replace(sources=["lk", "gmae"]), engine=eng)
    assert fused.window_hop == SMALL["num_frames"] // 2  # fused: the encoder once per half clip


def test_onnxruntime_session_options(files):
    eng = OnnxRuntimeEngine(files.onnx, threads=2)
    import onnxruntime as ort

    opts = eng.session.get_session_options()
    assert opts.intra_op_num_threads == 2
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert eng.session.get_providers() == ["CPUExecutionProvider"]


# ---------------------------------------------------------------------------------------------- plan cache
KEY = CacheKey("a" * 64, "10.9.0", "NVIDIA RTX A2000", "fp16")


class FakeRuntime:
    """Stands in for trt.Runtime.deserialize_cuda_engine: accepts plans that start with b'PLAN'."""

    def __init__(self):
        self.calls = 0

    def __call__(self, data: bytes):
        self.calls += 1
        return SimpleNamespace(plan=data) if data.startswith(b"PLAN") else None


class FakeBuilder:
    def __init__(self, payload=b"PLAN" + b"x" * 1000):
        self.calls, self.payload = 0, payload

    def __call__(self) -> bytes:
        self.calls += 1
        return self.payload


def test_cache_key_changes_with_onnx_bytes_precision_version_and_gpu(files, tmp_path):
    data = files.onnx.read_bytes()
    base = CacheKey(hashlib.sha256(data).hexdigest(), "10.9.0", "NVIDIA A100", "fp32")
    assert base.onnx_sha256 == files.info.sha256 == sha256_file(files.onnx)
    changed_bytes = CacheKey(hashlib.sha256(data + b"\0").hexdigest(), "10.9.0", "NVIDIA A100", "fp32")
    variants = [changed_bytes, CacheKey(base.onnx_sha256, "10.9.0", "NVIDIA A100", "fp16"),
                CacheKey(base.onnx_sha256, "11.4.0.106", "NVIDIA A100", "fp32"),
                CacheKey(base.onnx_sha256, "10.9.0", "Orin", "fp32")]
    digests = {base.digest()} | {v.digest() for v in variants}
    assert len(digests) == 5
    cache = EngineCache(tmp_path)
    assert len({cache.plan_path(k) for k in [base, *variants]}) == 5
    assert cache.plan_path(base).name.startswith("gmae-fp32-")
    assert base.differences(variants[1].to_dict()) == ["precision: 'fp16' -> 'fp32'"]
    # a re-export of a different model gives a different ONNX sha, hence another key
    other = export_checkpoint(save_checkpoint(tmp_path / "m2.pt", small_model(seed=9)), tmp_path / "m2.onnx")
    assert other.sha256 != base.onnx_sha256


def test_cache_miss_then_hit(tmp_path):
    cache, build, runtime = EngineCache(tmp_path), FakeBuilder(), FakeRuntime()
    first = cache.load_or_build(KEY, build, runtime)
    assert (first.status, first.reason, build.calls) == ("built", "no plan file", 1)
    assert first.plan_path.read_bytes() == build.payload
    meta = json.loads(sidecar_path(first.plan_path).read_text())
    assert meta["key"] == KEY.to_dict() and meta["size"] == len(build.payload)
    second = cache.load_or_build(KEY, build, runtime)
    assert (second.status, build.calls) == ("hit", 1)
    assert second.engine.plan == build.payload


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage_same_size", "no_sidecar", "bad_sidecar"])
def test_corrupt_plan_triggers_rebuild(tmp_path, damage):
    cache, build, runtime = EngineCache(tmp_path), FakeBuilder(), FakeRuntime()
    plan = cache.load_or_build(KEY, build, runtime).plan_path
    data = plan.read_bytes()
    if damage == "truncate":
        plan.write_bytes(data[: len(data) // 3])
    elif damage == "flip":
        plan.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif damage == "garbage_same_size":  # bytes and sidecar agree, but the runtime rejects them
        junk = b"JUNK" + data[4:]
        plan.write_bytes(junk)
        meta = json.loads(sidecar_path(plan).read_text())
        meta["sha256"] = hashlib.sha256(junk).hexdigest()
        sidecar_path(plan).write_text(json.dumps(meta))
    elif damage == "no_sidecar":
        sidecar_path(plan).unlink()
    else:
        sidecar_path(plan).write_text("{not json")
    res = cache.load_or_build(KEY, build, runtime)
    assert res.status == "rebuilt" and build.calls == 2
    assert ("corrupt" in res.reason) or ("key file" in res.reason)
    assert plan.read_bytes() == build.payload  # repaired on disk
    assert cache.load_or_build(KEY, build, runtime).status == "hit"


def test_key_mismatch_on_a_fixed_plan_path_rebuilds(tmp_path):
    cache, build, runtime = EngineCache(tmp_path), FakeBuilder(), FakeRuntime()
    plan = tmp_path / "robot.plan"  # engine_path given by the user: same file, new key
    cache.load_or_build(KEY, build, runtime, plan=plan)
    newer = CacheKey(KEY.onnx_sha256, "11.4.0.106", KEY.gpu_name, KEY.precision)
    res = cache.load_or_build(newer, build, runtime, plan=plan)
    assert res.status == "rebuilt" and "tensorrt_version: '10.9.0' -> '11.4.0.106'" in res.reason
    assert build.calls == 2 and json.loads(sidecar_path(plan).read_text())["key"] == newer.to_dict()


def test_fresh_plan_that_does_not_deserialize_is_an_error(tmp_path):
    with pytest.raises(EngineBuildError, match="could not be deserialized"):
        EngineCache(tmp_path).load_or_build(KEY, FakeBuilder(b"NOPE"), FakeRuntime())
    with pytest.raises(EngineBuildError, match="empty plan"):
        EngineCache(tmp_path).load_or_build(KEY, FakeBuilder(b""), FakeRuntime())


def test_plan_without_onnx_is_checked_against_this_setup(tmp_path):
    cache = EngineCache(tmp_path)
    plan = cache.load_or_build(KEY, FakeBuilder(), FakeRuntime(), extra={"format": "x"}).plan_path
    data, meta = cache.check_plan_only(plan, CacheKey("", KEY.tensorrt_version, KEY.gpu_name, KEY.precision))
    assert data.startswith(b"PLAN") and meta["encoder"] == {"format": "x"}
    with pytest.raises(EngineBuildError, match="gpu_name: 'NVIDIA RTX A2000' -> 'Orin'"):
        cache.check_plan_only(plan, CacheKey("", KEY.tensorrt_version, "Orin", KEY.precision))
    plan.write_bytes(data[:10])
    with pytest.raises(InputError, match="corrupt or truncated"):
        cache.check_plan_only(plan, CacheKey("", KEY.tensorrt_version, KEY.gpu_name, KEY.precision))
    with pytest.raises(InputError, match="not found"):
        cache.check_plan_only(tmp_path / "none.plan", KEY)


# ---------------------------------------------------------------------------------------------- builder (faked API)
class FakeTensorRT:
    """The few tensorrt names build_plan uses, recording what it is asked to do."""

    def __init__(self, has_fp16_flag: bool, parse_ok: bool = True, build_ok: bool = True):
        flags = {"TF32": "TF32"} | ({"FP16": "FP16"} if has_fp16_flag else {})
        self.BuilderFlag = SimpleNamespace(**flags)
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
        self.parse_ok, self.build_ok = parse_ok, build_ok
        self.parsed: bytes | None = None
        self.flags_set: list[str] = []
        self.flags_cleared: list[str] = []
        self.pool: dict = {}
        fake = self

        class Logger:
            WARNING = 2

            def __init__(self, level=2):
                self.level = level

        class Config:
            def set_memory_pool_limit(self, pool, size):
                fake.pool[pool] = size

            def set_flag(self, flag):
                fake.flags_set.append(flag)

            def clear_flag(self, flag):
                fake.flags_cleared.append(flag)

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags=0):
                return SimpleNamespace(flags=flags)

            def create_builder_config(self):
                return Config()

            def build_serialized_network(self, network, config):
                return b"PLAN-serialized" if fake.build_ok else None

        class OnnxParser:
            def __init__(self, network, logger):
                self.num_errors = 0 if fake.parse_ok else 2

            def parse(self, data):
                fake.parsed = data
                return fake.parse_ok

            def get_error(self, i):
                return f"error {i}: unsupported node"

        self.Logger, self.Builder, self.OnnxParser = Logger, Builder, OnnxParser


def test_build_plan_fp16_flag_on_weakly_typed_tensorrt(files):
    trt = FakeTensorRT(has_fp16_flag=True)
    data = files.onnx.read_bytes()
    assert build_plan(trt, data, "fp16", workspace_mb=256) == b"PLAN-serialized"
    assert trt.flags_set == ["FP16"] and trt.parsed == data and trt.pool == {"WORKSPACE": 256 << 20}
    trt = FakeTensorRT(has_fp16_flag=True)
    build_plan(trt, data, "fp32")
    assert trt.flags_set == [] and trt.flags_cleared == ["TF32"] and trt.parsed == data


def test_build_plan_fp16_graph_on_strongly_typed_tensorrt(files):
    trt = FakeTensorRT(has_fp16_flag=False)  # TensorRT 11.x: no BuilderFlag.FP16
    build_plan(trt, files.onnx.read_bytes(), "fp16")
    assert trt.flags_set == []
    parsed = onnx.load_from_string(trt.parsed)
    onnx.checker.check_model(parsed, full_check=True)  # topologically sorted, SSA: TensorRT's parser reads it
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in parsed.graph.initializer)
    assert [o.name for o in parsed.graph.output] == list(FIELDS)


def test_build_plan_reports_parser_and_builder_failures(files):
    with pytest.raises(EngineBuildError, match="error 0: unsupported node .* error 1"):
        build_plan(FakeTensorRT(True, parse_ok=False), files.onnx.read_bytes(), "fp32")
    with pytest.raises(EngineBuildError, match="failed to build"):
        build_plan(FakeTensorRT(True, build_ok=False), files.onnx.read_bytes(), "fp32")
    with pytest.raises(ConfigError):
        build_plan(FakeTensorRT(True), b"", "int8")


def test_default_cache_dir_env(monkeypatch, tmp_path):
    from gs_tracker_ros.engines.settings import default_cache_dir

    monkeypatch.setenv("GS_TRACKER_ENGINE_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GS_TRACKER_ENGINE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "gs_tracker_ros" / "engines"
    assert engines_files.default_cache_dir is default_cache_dir


# ---------------------------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@needs_trt
@pytest.mark.parametrize("precision,rel_tol", [("fp32", 1e-4), ("fp16", 1e-2)])
def test_tensorrt_matches_torch(files, engines, tmp_path, precision, rel_tol):  # pragma: no cover - GPU only
    from gs_tracker_ros.engines.tensorrt_engine import TensorRTEngine

    eng = TensorRTEngine(onnx_path=files.onnx, precision=precision, cache_dir=tmp_path)
    assert eng.cache_status == "built"
    clip = _clip(eng.input_shape, seed=11)
    diffs = _max_rel_diffs(eng(clip), engines["torch"](clip))
    print(f"TensorRT {precision} vs torch: " + ", ".join(f"{k} {d:.1e}" for k, (d, _) in diffs.items()))
    # fp32 (TF32 off): rounding only, as for ONNX Runtime. fp16: unit roundoff 4.9e-4, a few
    # layers deep -> ~1e-3 of the output scale; 1e-2 is the failure line.
    for name, (d, scale) in diffs.items():
        assert d <= rel_tol * scale, (name, d)
    again = TensorRTEngine(onnx_path=files.onnx, precision=precision, cache_dir=tmp_path)
    assert again.cache_status == "hit"
    again.plan_path.write_bytes(again.plan_path.read_bytes()[:100])
    third = TensorRTEngine(onnx_path=files.onnx, precision=precision, cache_dir=tmp_path)
    assert third.cache_status == "rebuilt" and "corrupt" in third.cache_reason
    src_t, src_r = GaussianMotionSource(engines["torch"], s0=0.0), GaussianMotionSource(third, s0=0.0)
    buf = _scene_buffer()
    pts = np.array([[20.0, 20.0], [50.0, 30.0], [70.0, 40.0]], np.float32)
    a, b = src_t.estimate(buf, 2, 5, pts), src_r.estimate(buf, 2, 5, pts)
    assert np.abs(a.displacement - b.displacement).max() <= (1e-3 if precision == "fp32" else 0.1)


# ---------------------------------------------------------------------------------------------- non-square
NON_SQUARE = (32, 48)  # (H, W): the clip keeps a wide frame's aspect ratio instead of squashing it


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wide")
    model = small_model(seed=5, img_size=list(NON_SQUARE))
    ckpt = save_checkpoint(folder / "wide.pt", model)
    info = export_checkpoint(ckpt, folder / "wide.onnx")
    return SimpleNamespace(model=model, ckpt=ckpt, info=info,
                           torch=build_engine("torch", model_path=ckpt),
                           ort=build_engine("onnxruntime", onnx_path=info.path, threads=1))


def test_non_square_model_exports_and_onnxruntime_matches_torch(wide):
    h, w = NON_SQUARE
    t = SMALL["num_frames"]
    assert wide.model.cfg.input_hw == (h, w) and wide.model.cfg.img_size == [h, w]
    assert wide.info.clip_shape == (t, h, w, 3)  # exported at the model's own H x W by default
    rows, cols = h // SMALL["patch"], w // SMALL["patch"]
    n = (SMALL["gaussian_grid"] // rows) ** 2 * rows * cols
    assert wide.model.cfg.num_gaussians == n
    for eng in (wide.torch, wide.ort):
        assert eng.input_shape == (t, h, w, 3) and eng.input_size == (h, w)
    clip = _clip(wide.torch.input_shape, seed=4)
    ref, got = wide.torch(clip), wide.ort(clip)
    assert (ref.height, ref.width, ref.num_gaussians) == (h, w, n)
    for name, (d, scale) in _max_rel_diffs(got, ref).items():
        assert d <= FP32_REL_TOL * scale, (name, d, scale)
    # the checkpoint's config round-trips with its [H, W] size
    assert load_model(wide.ckpt).cfg.input_hw == (h, w)


def test_non_square_gaussian_source_same_on_ort_and_torch(wide):
    buf = _scene_buffer(w=120, h=64)
    pts = np.random.default_rng(0).uniform([0, 0], [119, 63], (40, 2)).astype(np.float32)
    src_t, src_o = GaussianMotionSource(wide.torch, s0=0.0), GaussianMotionSource(wide.ort, s0=0.0)
    assert src_t.input_size == NON_SQUARE
    moved = 0.0
    for a, b in [(2, 5), (5, 3)]:
        t, o = src_t.estimate(buf, a, b, pts), src_o.estimate(buf, a, b, pts)
        np.testing.assert_array_equal(o.valid, t.valid)
        assert float(np.abs(o.displacement - t.displacement).max()) <= 1e-3
        moved = max(moved, float(np.abs(t.displacement).max()))
    assert moved > 0.1
