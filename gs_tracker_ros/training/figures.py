"""Pictures of a trained Video-GMAE: reconstruction strip, Gaussian trajectories, training curve.

``python -m gs_tracker_ros.training.figures CHECKPOINT --data DIR --seq NAME --out docs/img [--log log.jsonl]``
"""

from __future__ import annotations

import argparse
import colorsys
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.output import check_output
from ..model.checkpoint import load_model
from ..model.gmae import GMAE
from ..model.masking import random_tube_mask
from ..core.paths import DAVIS_UNLABELED
from ..model.gaussians import render_clip
from ..viz.video import save_image
from .data import center_clip, load_sequences


def _up(img: np.ndarray, k: int) -> np.ndarray:
    return cv2.resize(img, (img.shape[1] * k, img.shape[0] * k), interpolation=cv2.INTER_NEAREST)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((18, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], 0)


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().cpu().numpy()


@torch.no_grad()
def reconstruction_strip(model: GMAE, clip: np.ndarray, mask_ratio: float = 0.9, frames=None, zoom: int = 3,
                         seed: int = 0) -> np.ndarray:
    """Rows: input / masked input / render from the masked clip / render from the full clip."""
    cfg = model.cfg
    t, h, w = clip.shape[:3]
    frames = frames if frames is not None else list(range(t))
    x = torch.from_numpy(clip)[None].float() / 255.0
    s_h, s_w = h // cfg.patch, w // cfg.patch
    vis = random_tube_mask(1, s_h * s_w, mask_ratio, generator=torch.Generator().manual_seed(seed))
    keep = torch.zeros(s_h * s_w, dtype=torch.bool)
    keep[vis[0]] = True
    keep_px = keep.view(s_h, s_w).repeat_interleave(cfg.patch, 0).repeat_interleave(cfg.patch, 1).numpy()
    masked = np.where(keep_px[None, ..., None], clip, (clip * 0.25 + 96).astype(np.uint8))
    model.eval()
    rows = [("input", clip), (f"masked input ({int(mask_ratio * 100)}% tubes hidden)", masked)]
    for name, v in (("render from masked", vis), ("render from full clip", None)):
        g = model(x, v)
        rows.append((name, _to_u8(render_clip(g, h, w).rgb[0])))
    out = []
    for name, imgs in rows:
        row = np.concatenate([np.pad(_up(imgs[i], zoom), ((0, 0), (0, 2), (0, 0)), constant_values=255)
                              for i in frames], 1)
        out.append(_label(row, name))
    return np.concatenate(out, 0)


@torch.no_grad()
def trajectory_image(model: GMAE, clip: np.ndarray, zoom: int = 6, min_opacity: float = 0.3) -> np.ndarray:
    """Projected Gaussian centres over the clip drawn on frame 1 (dot = frame 1, line = path)."""
    g = model.encode(clip)
    c = g.projected_centers()[0].numpy()  # (T, N, 2) continuous px
    opac = g.opacities[0].numpy()
    size = np.exp(g.log_scales[0].numpy()).max(1) / g.means[0, 0, :, 2].numpy() * g.camera.fx
    img = (_up(clip[0], zoom).astype(np.float32) * 0.6).astype(np.uint8)
    n = c.shape[1]
    order = np.argsort(-(opac * np.minimum(size, 6)))
    shown = 0
    for i in order:
        if opac[i] < min_opacity or size[i] > 0.2 * g.width:
            continue
        r, gr, b = colorsys.hsv_to_rgb((i * 0.618) % 1.0, 0.9, 1.0)
        col = (int(r * 255), int(gr * 255), int(b * 255))
        pts = (c[:, i] * zoom).round().astype(np.int32)
        cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, col, 1, cv2.LINE_AA)
        cv2.circle(img, tuple(int(v) for v in pts[0]), 2, col, -1, cv2.LINE_AA)
        shown += 1
    return _label(img, f"{shown}/{n} Gaussians (opacity >= {min_opacity}): path over {c.shape[0]} frames")


def training_curve(log_path: str | Path, width: int = 640, height: int = 300) -> np.ndarray:
    """Training PSNR (grey), held-out model PSNR (blue) and repeat-first baseline (red) vs step."""
    recs = [json.loads(x) for x in Path(log_path).read_text().splitlines() if x.strip()]
    steps = np.array([r["step"] for r in recs], float)
    series = [("train psnr", (150, 150, 150), [r["psnr"] for r in recs])]
    ev = [r for r in recs if "eval_psnr_model" in r]
    if ev:
        es = np.array([r["step"] for r in ev], float)
        series += [("held-out, full clip", (30, 90, 220), [r["eval_psnr_model"] for r in ev], es),
                   ("held-out, tube-masked input", (40, 170, 60), [r["eval_psnr_model_masked"] for r in ev], es),
                   ("repeat first frame", (220, 40, 40), [r["eval_psnr_repeat_first"] for r in ev], es)]
    vals = np.concatenate([np.asarray(s[2], float) for s in series])
    lo, hi = np.floor(np.nanmin(vals)) - 0.5, np.ceil(np.nanmax(vals)) + 0.5
    img = np.full((height, width, 3), 255, np.uint8)
    ml, mb, mt, mr = 40, 25, 10, 10

    def xy(s, v):
        x = ml + (s - steps.min()) / max(1.0, steps.max() - steps.min()) * (width - ml - mr)
        y = height - mb - (v - lo) / (hi - lo) * (height - mb - mt)
        return int(x), int(y)

    for db in range(int(lo) + 1, int(hi) + 1):
        y = xy(steps.min(), db)[1]
        cv2.line(img, (ml, y), (width - mr, y), (230, 230, 230), 1)
        cv2.putText(img, f"{db}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"step {int(steps.max())}", (width - 90, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.35,
                (0, 0, 0), 1, cv2.LINE_AA)
    for k, s in enumerate(series):
        name, col, v = s[0], s[1], np.asarray(s[2], float)
        st = s[3] if len(s) > 3 else steps
        pts = np.array([xy(a, b) for a, b in zip(st, v) if np.isfinite(b)], np.int32)
        if len(pts) > 1:
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, col, 1 if k == 0 else 2, cv2.LINE_AA)
        cv2.putText(img, f"{name} (dB)", (ml + 8, mt + 14 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4, col, 1, cv2.LINE_AA)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=DAVIS_UNLABELED,
                    help="frame folders (relative paths: to the cwd, else to the repository root)")
    ap.add_argument("--seq", default="car-shadow")
    ap.add_argument("--start", type=int, default=10)
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--out", default="docs/img")
    ap.add_argument("--log", default=None, help="training log.jsonl for the curve")
    ap.add_argument("--mask-ratio", type=float, default=0.75, help="tube mask ratio of the masked row")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.checkpoint)
    cfg = model.cfg
    seq = load_sequences([args.data], short=max(128, min(cfg.input_hw)), include=[args.seq])[0]
    clip = center_clip(seq.frames, args.start, cfg.num_frames, args.stride, cfg.input_hw)
    out = Path(args.out)

    def save(name: str, rgb: np.ndarray) -> None:
        print(save_image(check_output(out / name, "--out"), rgb))

    save(f"gmae_recon_{args.seq}.png", reconstruction_strip(model, clip, mask_ratio=args.mask_ratio))
    save(f"gmae_trajectories_{args.seq}.png", trajectory_image(model, clip))
    if args.log:
        save("gmae_training_curve.png", training_curve(args.log))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
