"""Encoder export to ONNX: static shape, named outputs, metadata, checker, user errors, the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from gs_tracker_ros.cli.main import main as cli_main
from gs_tracker_ros.core.errors import ConfigError, InputError
from gs_tracker_ros.engines.export import (
    FORMAT,
    INPUT_NAME,
    export_checkpoint,
    export_onnx,
    fp16_onnx_bytes,
    parse_size,
    read_onnx_info,
    sha256_file,
)
from gs_tracker_ros.model.checkpoint import save_checkpoint
from gs_tracker_ros.model.gaussians import FIELDS
from gs_tracker_ros.model.gmae import GMAE, ModelConfig

SMALL = dict(img_size=32, num_frames=4, patch=8, tubelet=2, enc_dim=32, enc_depth=1, enc_heads=2, dec_dim=32,
             dec_depth=1, dec_heads=2, gaussian_grid=8)


def small_model(seed: int = 0, **overrides) -> GMAE:
    """A tiny GMAE with every weight perturbed (the delta head starts at zero: make the Gaussians move)."""
    torch.manual_seed(seed)
    model = GMAE(ModelConfig(**{**SMALL, **overrides})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    model = small_model()
    ckpt = save_checkpoint(folder / "small.pt", model)
    info = export_checkpoint(ckpt, folder / "small.onnx")
    return model, ckpt, info


def test_export_is_static_checked_and_named(exported):
    model, ckpt, info = exported
    proto = onnx.load(str(info.path))
    onnx.checker.check_model(proto, full_check=True)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    t, s = SMALL["num_frames"], SMALL["img_size"]
    (inp,) = proto.graph.input
    assert inp.name == INPUT_NAME
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, t, s, s, 3]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    n = SMALL["gaussian_grid"] ** 2
    want = {"means": [1, t, n, 3], "quats": [1, n, 4], "log_scales": [1, n, 3], "opacities": [1, n],
            "colors": [1, t, n, 3]}
    outs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in proto.graph.output}
    assert list(outs) == list(FIELDS)  # exactly the Gaussian parameters, in FIELDS order
    assert outs == want


def test_metadata_round_trip(exported):
    model, ckpt, info = exported
    meta = {p.key: p.value for p in onnx.load(str(info.path)).metadata_props}
    assert meta["format"] == FORMAT
    assert json.loads(meta["model_config"]) == model.cfg.to_dict()
    assert json.loads(meta["input_shape"]) == [1, SMALL["num_frames"], SMALL["img_size"], SMALL["img_size"], 3]
    assert meta["checkpoint_sha256"] == sha256_file(ckpt) and meta["checkpoint"] == ckpt.name
    back = read_onnx_info(info.path)
    assert back.clip_shape == (SMALL["num_frames"], SMALL["img_size"], SMALL["img_size"], 3)
    assert back.sha256 == sha256_file(info.path) == info.sha256
    assert back.output_names == FIELDS and back.focal == model.cfg.focal


def test_non_square_size_and_shape_errors(tmp_path):
    model = small_model()
    info = export_onnx(model, tmp_path / "wide.onnx", size=(16, 40))
    assert info.clip_shape == (SMALL["num_frames"], 16, 40, 3)
    with pytest.raises(ConfigError, match="exactly 4 frames"):
        export_onnx(model, tmp_path / "x.onnx", frames=6)
    with pytest.raises(ConfigError, match="multiples of the patch size"):
        export_onnx(model, tmp_path / "x.onnx", size=(30, 32))
    with pytest.raises(ConfigError, match="opset"):
        export_onnx(model, tmp_path / "x.onnx", opset=16)
    assert not (tmp_path / "x.onnx").exists()
    assert parse_size("48x64") == (48, 64) and parse_size("32") == (32, 32)
    with pytest.raises(ConfigError):
        parse_size("64 by 64")


def test_missing_corrupt_truncated_and_foreign_onnx_are_named(exported, tmp_path):
    _, _, info = exported
    with pytest.raises(InputError, match="not found: .*nope.onnx"):
        read_onnx_info(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a protobuf" * 50)
    with pytest.raises(InputError, match="garbage.onnx"):
        read_onnx_info(garbage)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(info.path.read_bytes()[: info.path.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated.onnx"):
        read_onnx_info(truncated)
    foreign = tmp_path / "foreign.onnx"
    proto = onnx.load(str(info.path))
    del proto.metadata_props[:]
    onnx.save(proto, str(foreign))
    with pytest.raises(InputError, match="foreign.onnx is not a gs_tracker_ros encoder export"):
        read_onnx_info(foreign)
    with pytest.raises(InputError, match="checkpoint not found"):
        export_checkpoint(tmp_path / "missing.pt", tmp_path / "m.onnx")


def test_fp16_graph_for_strongly_typed_tensorrt_runs_and_stays_close(exported):
    """The fp16 conversion used for TensorRT 11 (no FP16 builder flag), checked on ONNX Runtime CPU."""
    import onnxruntime as ort

    model, _, info = exported
    half = onnx.load_from_string(fp16_onnx_bytes(info.path.read_bytes()))
    onnx.checker.check_model(half)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 I/O kept
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for o in half.graph.output)
    assert sum(i.data_type == onnx.TensorProto.FLOAT16 for i in half.graph.initializer) > 0
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(half.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random((1, *info.clip_shape), dtype=np.float32)
    got = sess.run(list(FIELDS), {INPUT_NAME: x})
    with torch.inference_mode():
        ref = [r.numpy() for r in model.forward_export(torch.from_numpy(x))]
    for name, a, b in zip(FIELDS, got, ref):
        err = np.abs(a - b).max()
        scale = max(1.0, float(np.abs(b).max()))
        # fp16 has an 11-bit significand (unit roundoff 4.9e-4); measured here: <= 4e-4 relative to
        # the output scale (the decoding tail stays fp32). 5e-3 leaves a 10x margin.
        assert err <= 5e-3 * scale, (name, err)


def test_cli_export_verifies_and_rejects_engine_without_gpu(exported, tmp_path, capsys):
    _, ckpt, _ = exported
    out = tmp_path / "cli.onnx"
    assert cli_main(["export", str(ckpt), "--onnx", str(out), "--size", "24x32"]) == 0
    text = capsys.readouterr().out
    assert "ONNX Runtime vs torch" in text and "(1, 4, 24, 32, 3)" in text
    assert read_onnx_info(out).checkpoint_sha256 == sha256_file(ckpt)
    # --engine needs TensorRT on a CUDA GPU: one clear line, exit 2, the ONNX still written
    from gs_tracker_ros.engines.tensorrt_engine import _cuda_problem, _tensorrt_problem

    if not (_tensorrt_problem() or _cuda_problem()):
        pytest.skip("TensorRT and a GPU are present: the no-GPU error path cannot be exercised")
    out2 = tmp_path / "cli2.onnx"
    rc = cli_main(["export", str(ckpt), "--onnx", str(out2), "--engine", str(tmp_path / "e.plan"), "--fp16",
                   "--no-verify"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "tensorrt backend cannot run here" in err[0] and str(out2) in err[0]
    assert out2.is_file() and not (tmp_path / "e.plan").exists()


def test_cli_export_user_errors(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "nope.pt"), "--onnx", str(tmp_path / "o.onnx")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    assert cli_main(["export", str(bad), "--onnx", str(tmp_path / "o.onnx")]) == 2
    assert "bad.pt" in capsys.readouterr().err
    assert cli_main(["export", str(bad), "--onnx", str(tmp_path / "o.onnx"), "--fp16"]) == 2
    assert "--fp16 applies to the TensorRT engine" in capsys.readouterr().err
