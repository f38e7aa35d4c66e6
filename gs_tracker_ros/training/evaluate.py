"""Reconstruction metrics of a Video-GMAE checkpoint on held-out clips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..model.checkpoint import load_model
from ..model.gmae import GMAE
from ..model.masking import random_tube_mask
from ..model.gaussians import render_clip
from .data import Sequence, center_clip, load_sequences
from ..core.clip_buffer import ClipBuffer

DEFAULT_HOLDOUT = ("blackswan", "car-shadow", "goat")


def psnr_from_mse(mse: float) -> float:
    return float("inf") if mse <= 0 else 10.0 * math.log10(1.0 / mse)


def heldout_clips(seqs: list[Sequence], num_frames: int, size: int | tuple[int, int], stride: int = 2,
                  clips_per_seq: int = 4) -> tuple[np.ndarray, list[str]]:
    """Evenly spaced deterministic clips (centre crop) from each sequence: ``(K, T, H, W, 3)`` uint8."""
    clips, names = [], []
    for s in seqs:
        span = (num_frames - 1) * stride + 1
        n = len(s.frames)
        if n < span:
            continue
        starts = np.linspace(0, n - span, clips_per_seq).round().astype(int)
        for st in sorted(set(starts.tolist())):
            clips.append(center_clip(s.frames, st, num_frames, stride, size))
            names.append(s.name)
    return np.stack(clips), names


@torch.no_grad()
def reconstruction_metrics(model: GMAE, clips: np.ndarray, mask_ratio: float = 0.9, seed: int = 0,
                           batch: int = 4, render_options: dict | None = None,
                           background: float = 0.0) -> dict:
    """Per-clip MSEs of the model (unmasked and tube-masked input) and of "repeat the first frame".

    Every number is a mean over clips of the clip PSNR, where the clip PSNR comes from the MSE over
    all T frames (``*_later``: frames 2..T only). Images are in [0, 1].
    """
    model.eval()
    dev = next(model.parameters()).device
    opts = dict(render_options or {})
    gen = torch.Generator().manual_seed(seed)
    rows = {k: [] for k in ("model", "model_masked", "repeat_first", "model_later", "model_masked_later",
                            "repeat_first_later")}
    cfg = model.cfg
    s = clips.shape[2] // cfg.patch * (clips.shape[3] // cfg.patch)
    for i in range(0, len(clips), batch):
        x = torch.from_numpy(clips[i : i + batch]).to(dev).float() / 255.0  # (b, T, H, W, 3)
        b, t, h, w, _ = x.shape
        bg = torch.full((3,), background, device=dev)
        vis = random_tube_mask(b, s, mask_ratio, generator=gen).to(dev)
        for key, v in (("model", None), ("model_masked", vis)):
            g = model(x, v)
            out = render_clip(g, h, w, background=bg, **opts).rgb.clamp(0, 1)
            err = ((out - x) ** 2).mean(dim=(2, 3, 4))  # (b, T)
            rows[key] += err.mean(1).tolist()
            rows[key + "_later"] += err[:, 1:].mean(1).tolist()
        err = ((x[:, :1] - x) ** 2).mean(dim=(2, 3, 4))
        rows["repeat_first"] += err.mean(1).tolist()
        rows["repeat_first_later"] += err[:, 1:].mean(1).tolist()
    out = {f"psnr_{k}": float(np.mean([psnr_from_mse(m) for m in v])) for k, v in rows.items()}
    out["num_clips"] = int(len(clips))
    return out


def evaluate_reconstruction(checkpoint: str | Path | GMAE, dirs: list[str | Path] | str | Path,
                            names: list[str] | None = None, stride: int = 2, clips_per_seq: int = 4,
                            mask_ratio: float = 0.9, seed: int = 0, render_options: dict | None = None) -> dict:
    """Held-out reconstruction PSNR of a checkpoint vs the "repeat the first frame" baseline.

    Args:
        checkpoint: path of a GMAE checkpoint (or a loaded :class:`GMAE`).
        dirs: dataset roots / sequence folders / videos (see :func:`~.data.discover`).
        names: sequences to use (default: the held-out ``blackswan, car-shadow, goat``).
        stride: temporal stride of the clips; ``clips_per_seq`` evenly spaced clips per sequence.
    Returns:
        ``{"overall": {...}, "per_sequence": {name: {...}}, "stride", "frames", "size"}`` with
        ``psnr_model`` (unmasked input), ``psnr_model_masked`` (tube mask at ``mask_ratio``),
        ``psnr_repeat_first`` and the ``*_later`` variants (frames 2..T only).
    """
    model = checkpoint if isinstance(checkpoint, GMAE) else load_model(checkpoint)
    if isinstance(dirs, (str, Path)):
        dirs = [dirs]
    names = list(names) if names is not None else list(DEFAULT_HOLDOUT)
    seqs = load_sequences(list(dirs), short=max(128, min(model.cfg.input_hw)), include=names)
    cfg = model.cfg
    per = {}
    all_clips = []
    for s in seqs:
        clips, _ = heldout_clips([s], cfg.num_frames, cfg.input_hw, stride, clips_per_seq)
        per[s.name] = reconstruction_metrics(model, clips, mask_ratio, seed, render_options=render_options)
        all_clips.append(clips)
    overall = reconstruction_metrics(model, np.concatenate(all_clips), mask_ratio, seed, render_options=render_options)
    return {"overall": overall, "per_sequence": per, "stride": stride, "frames": cfg.num_frames,
            "size": cfg.img_size}


def main(argv: list[str] | None = None) -> int:
    """``python -m gs_tracker_ros.training.evaluate CHECKPOINT DIR... [--names ...] [--stride N]``."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="held-out reconstruction PSNR vs repeat-the-first-frame")
    ap.add_argument("checkpoint")
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--names", nargs="*", default=None)
    ap.add_argument("--stride", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clips-per-seq", type=int, default=6)
    ap.add_argument("--mask-ratio", type=float, default=0.9)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    res = {str(s): evaluate_reconstruction(args.checkpoint, args.dirs, args.names, s, args.clips_per_seq,
                                           args.mask_ratio) for s in args.stride}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def motion_pair_errors(make_source, seq_dir: str | Path, max_gap: int = 7, capacity: int = 40) -> dict:
    """End-point error of a motion source on labelled frame pairs of a ``badja_dev``-style sequence.

    For every pair of annotated frames ``a < b`` with ``b - a <= max_gap`` the source moves the
    joints visible in both frames from a to b (``estimate`` on a live :class:`ClipBuffer` holding
    frames up to b). Returns the mean / median EPE (px), the zero-motion EPE on the same points,
    and the share of points the source called valid.
    """
    import cv2

    seq_dir = Path(seq_dir)
    gt = np.load(seq_dir / "gt.npz")
    xy, vis, ann = gt["tracks_xy"], gt["visible"], gt["annotated_frames"]
    files = sorted((seq_dir / "frames").iterdir())
    labelled = np.flatnonzero(ann)
    source = make_source()
    buf = ClipBuffer(capacity)
    errs, zero, valid = [], [], []
    pushed = -1
    for b in labelled:
        for a in labelled[(labelled < b) & (labelled >= b - max_gap)]:
            while pushed < b:
                pushed += 1
                buf.push(cv2.cvtColor(cv2.imread(str(files[pushed])), cv2.COLOR_BGR2RGB))
            m = vis[:, a] & vis[:, b]
            if not m.any():
                continue
            est = source.estimate(buf, int(a), int(b), xy[m, a])
            e = np.linalg.norm(xy[m, a] + est.displacement - xy[m, b], axis=1)
            errs += e.tolist()
            zero += np.linalg.norm(xy[m, a] - xy[m, b], axis=1).tolist()
            valid += est.valid.tolist()
    return {"pairs_points": len(errs), "epe_mean": float(np.mean(errs)), "epe_median": float(np.median(errs)),
            "zero_motion_epe_mean": float(np.mean(zero)), "zero_motion_epe_median": float(np.median(zero)),
            "valid_share": float(np.mean(valid))}
