"""``gs-tracker export CHECKPOINT --onnx OUT.onnx [--engine OUT.plan [--fp16]]``: encoder -> ONNX (-> TensorRT)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import ConfigError, TrackerError
from ..core.output import check_output


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the Video-GMAE encoder to ONNX (and build a TensorRT engine on a GPU)",
        description="Export a Video-GMAE checkpoint to ONNX with a static clip shape (opset >= 17, checked with "
        "onnx.checker), outputs named means/quats/log_scales/opacities/colors and the model config, input "
        "shape and checkpoint sha256 in the metadata; verify it against torch with ONNX Runtime; optionally "
        "build a TensorRT plan (needs a CUDA GPU and the tensorrt package).",
    )
    p.add_argument("checkpoint", type=Path, help="Video-GMAE checkpoint (.pt)")
    p.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx", help="ONNX file to write")
    p.add_argument("--engine", type=Path, default=None, metavar="OUT.plan",
                   help="also build a TensorRT plan from the ONNX (GPU only; a sidecar OUT.plan.json holds its key)")
    p.add_argument("--fp16", action="store_true", help="build the TensorRT plan in fp16 (with --engine)")
    p.add_argument("--frames", type=int, default=None, metavar="T",
                   help="clip length (default and only allowed value: the checkpoint's num_frames)")
    p.add_argument("--size", default=None, metavar="HxW",
                   help="clip frame size (default: the checkpoint's img_size, HxW when not square); multiples of the patch size")
    p.add_argument("--opset", type=int, default=17,
                   help="ONNX opset (17 up to the newest the installed torch exporter supports; default 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch check")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..model.checkpoint import load_model
    from ..engines.export import check_opset, export_onnx, parse_size, sha256_file
    from ..engines.onnxruntime_engine import compare_with_torch

    if args.fp16 and args.engine is None:
        raise ConfigError("--fp16 applies to the TensorRT engine; add --engine OUT.plan")
    size = parse_size(args.size) if args.size else None
    check_opset(args.opset)
    check_output(args.onnx, "--onnx")
    if args.engine is not None:
        check_output(args.engine, "--engine")
    model = load_model(args.checkpoint)  # InputError naming the file when missing / unreadable
    info = export_onnx(model, args.onnx, frames=args.frames, size=size, opset=args.opset,
                       checkpoint=args.checkpoint.name, checkpoint_sha=sha256_file(args.checkpoint))
    t, h, w, _ = info.clip_shape
    print(f"ONNX encoder -> {info.path} "
          f"({info.path.stat().st_size / 2**20:.1f} MiB, sha256 {info.sha256[:16]}...)")
    print(f"  input  {info.input_name}: float32 (1, {t}, {h}, {w}, 3) RGB in [0, 1]; opset {args.opset}")
    print(f"  outputs: {', '.join(info.output_names)}")
    if not args.no_verify:
        diffs = compare_with_torch(model, info.path)
        worst = max(d["max_abs"] / max(d["scale"], 1e-6) for d in diffs.values())
        print("  ONNX Runtime vs torch, max |diff| per output: "
              + ", ".join(f"{k} {v['max_abs']:.2e}" for k, v in diffs.items()))
        if worst > 1e-3:
            raise TrackerError(f"the exported ONNX disagrees with torch (max relative difference {worst:.2e})")
    if args.engine is not None:
        from ..engines.tensorrt_engine import build_engine_file

        precision = "fp16" if args.fp16 else "fp32"
        try:
            eng = build_engine_file(info.path, args.engine, precision=precision)
        except TrackerError as err:
            raise type(err)(f"{err} (the ONNX encoder was written to {info.path})") from None
        print(f"TensorRT {precision} plan -> {eng.plan_path} ({eng.cache_status}"
              + (f": {eng.cache_reason}" if eng.cache_reason else "") + ")")
    sys.stdout.flush()
    return 0
