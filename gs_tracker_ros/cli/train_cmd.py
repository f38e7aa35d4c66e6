"""``gs-tracker train CONFIG [--resume] [--out DIR]``: self-supervised Video-GMAE pretraining."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="pretrain the Video-GMAE Gaussian encoder on folders of frames / videos",
        description="Self-supervised Video-GMAE pretraining (masked clip -> Gaussians -> splat -> reconstruct). "
        "Writes last.pt, model_fp16.pt, log.jsonl and config.yaml to --out. "
        "Launch with torchrun for multi-GPU data parallel.",
    )
    p.add_argument("config", help="YAML config (see training/configs/train_cpu_small.yaml)")
    p.add_argument("--out", default=None, help="output directory (default: out/train/<config name>, git-ignored)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--steps", type=int, default=None, help="override optim.steps")
    p.add_argument("--max-minutes", type=float, default=None, help="override run.max_minutes (wall-time limit)")
    p.add_argument("--data", nargs="+", default=None, help="override data.paths")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="override run.device")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.config import load_config
    from ..training.train import train

    cfg = load_config(args.config)
    if args.steps is not None:
        cfg.optim.steps = int(args.steps)
    if args.max_minutes is not None:
        cfg.run.max_minutes = float(args.max_minutes)
    if args.data:
        cfg.data.paths = list(args.data)
    if args.device:
        cfg.run.device = args.device
    cfg.validate()
    out = Path(args.out) if args.out else Path("out") / "train" / Path(args.config).stem
    train(cfg, out, resume=args.resume)
    return 0
