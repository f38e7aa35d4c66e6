"""``gs-tracker fit-evidence``: fit the chain and track evidence models (spread and p_lost)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..core.errors import InputError
from ..core.output import check_output
from ..core.paths import resolve_path

DEFAULT_OUT = Path("checkpoints/evidence")


def register(sub: argparse._SubParsersAction) -> None:
    from ..evaluation.fit_evidence import CYCLE_SETS

    p = sub.add_parser(
        "fit-evidence", help="fit the evidence models behind the published variance and p_lost",
        description="Run the tracker over generated scenes with exact ground truth and over label-free "
        "real-video cycles, gather each chain's and each point's evidence with its error, and fit the "
        "mixture models (spread when right, probability of being wrong) that the tracker reads: "
        "OUT/chain.json, OUT/track.json and OUT/fit_log.json. No labelled video is used.")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help=f"folder for the model files (default {DEFAULT_OUT}, the shipped models)")
    p.add_argument("--scenes", type=int, default=8, metavar="N", help="generated scenes (default 8)")
    p.add_argument("--frames", type=int, default=48, metavar="T", help="frames per generated scene (default 48)")
    p.add_argument("--cycles", nargs="*", default=list(CYCLE_SETS), metavar="DIR",
                   help="folders of real-video clips for the cycle residuals (default: "
                        + " ".join(CYCLE_SETS) + ")")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.fit_evidence import fit_evidence

    if not 1 <= args.scenes <= 1000 or not 8 <= args.frames <= 1000:
        raise InputError(f"--scenes must be in [1, 1000] and --frames in [8, 1000], got {args.scenes}, {args.frames}")
    for folder in args.cycles:
        if not resolve_path(folder).is_dir():
            raise InputError(f"--cycles: folder not found: {folder}")
    for name in ("chain.json", "track.json", "fit_log.json"):
        check_output(args.out / name, "--out")
    command = "gs-tracker " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["fit-evidence"] \
        else "gs-tracker fit-evidence"
    log = fit_evidence(args.out, args.scenes, args.frames, args.cycles, command)
    for what in ("chain", "track"):
        fits = {k: v for k, v in log[what].items() if k.startswith("fit")}
        print(f"{what} model: {log[what]['samples']} samples; " + "; ".join(
            f"{k}: called wrong {100 * v['called_wrong']:.1f} %, AUC {v['auc_wrong_by_16px']:.3f}" for k, v in fits.items()))
    print(f"models -> {args.out}/chain.json, {args.out}/track.json (log: {args.out}/fit_log.json)")
    return 0
