"""``gs-tracker eval``: score methods on a dataset with ground-truth tracks."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..evaluation.badja import load_badja_dataset
from ..evaluation.metrics import SCORE_KEYS
from ..evaluation.runner import evaluate_badja
from ..methods import DEFAULT_METHOD, make_tracker
from .common import add_method_options, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="score tracking methods on a labelled dataset (BADJA protocol)",
                       description="Run methods online on every sequence and score them "
                                   "(delta_seg, delta_3px, delta_avg, OA, AJ, ms_per_frame).")
    p.add_argument("--dataset", nargs=2, metavar=("KIND", "DIR"), required=True,
                   help="dataset kind and directory, e.g. --dataset badja ../shared/data/badja_dev")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the scores as JSON")
    p.add_argument("--ablation", action="store_true",
                   help=f"run the {DEFAULT_METHOD} ablation in one process instead: flow only, w/o keypoints, "
                        "w/o feature filter, w/o probabilistic fusion, full (on top of --config/--set)")
    add_method_options(p, multiple=True)
    p.set_defaults(func=run)


def format_table(results: list[dict]) -> str:
    keys = list(SCORE_KEYS) + ["ms_per_frame"]
    lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for res in results:
        cells = []
        for k in keys:
            v = res["overall"].get(k, float("nan"))
            cells.append(f"{v:.1f}" if k == "ms_per_frame" else ("nan" if math.isnan(v) else f"{100 * v:.1f}"))
        lines.append(f"| {res['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..core.errors import InputError

    kind, directory = args.dataset
    if kind != "badja":
        raise InputError(f"unknown dataset kind '{kind}' (supported: badja)")
    sequences = load_badja_dataset(Path(directory))
    config = load_config(args.config, args.overrides)
    methods = args.method or [DEFAULT_METHOD]
    if args.ablation:
        from ..relocalize.ablation import run_ablation

        if methods != [DEFAULT_METHOD]:
            raise InputError(f"--ablation runs variants of {DEFAULT_METHOD}; drop --method")
        results = run_ablation(lambda cfg: evaluate_badja(lambda: make_tracker(DEFAULT_METHOD, cfg), sequences,
                                                          progress=True), config)
    else:
        results = [evaluate_badja(lambda m=m: make_tracker(m, config), sequences, progress=True) for m in methods]
    print(format_table(results))
    print("(scores in %, overall = all scored (point, frame) pairs pooled)")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = results[0] if len(results) == 1 else {"results": results}
        args.json.write_text(json.dumps(payload, indent=2))
        print(f"scores -> {args.json}")
    return 0
