"""Self-supervised Video-GMAE pretraining: masked clip -> Gaussians -> splat -> reconstruct.

Runs on one CPU thread for the tiny model and the same code on CUDA, optionally data-parallel
(``torchrun --nproc_per_node=K -m gs_tracker_ros train CONFIG``: WORLD_SIZE > 1 turns on DDP;
rank 0 logs and writes checkpoints).

Outputs in ``out_dir``: ``last.pt`` (fp32 weights + optimiser + step, for ``--resume``),
``model_fp16.pt`` (weights only, half precision), ``log.jsonl`` (one JSON object per log line)
and ``config.yaml`` (the resolved configuration).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..core.errors import ConfigError, InputError
from ..core.output import append_line, check_output, write_text
from ..core.signals import StopOnSignal
from ..model.checkpoint import load_checkpoint_blob, save_checkpoint
from ..model.gmae import GMAE
from ..model.masking import motion_aware_tube_mask, random_tube_mask
from ..core.paths import resolve_path
from ..model.gaussians import render_clip
from .config import TrainConfig
from .data import ClipSampler, load_sequences, lk_grid_tracks, patch_motion
from .evaluate import heldout_clips, reconstruction_metrics
from .losses import supervised_losses, trajectory_loss


def lr_at(step: int, cfg: TrainConfig) -> float:
    o = cfg.optim
    if step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    p = min(1.0, (step - o.warmup) / max(1, o.steps - o.warmup))
    return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + math.cos(math.pi * p))


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or name in ("mask_token", "query_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str | Path, resume: bool = False, log=print) -> None:
        self.cfg, self.out = cfg, Path(out_dir)
        self.log_fn = log
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.set_num_threads(max(1, cfg.run.num_threads))
        if cfg.run.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("run.device is 'cuda' but CUDA is not available")
        use_cuda = cfg.run.device == "cuda" or (cfg.run.device == "auto" and torch.cuda.is_available())
        self.device = torch.device(f"cuda:{self.local_rank}" if use_cuda else "cpu")
        if use_cuda:
            torch.cuda.set_device(self.device)
        if self.world > 1:
            import torch.distributed as dist

            dist.init_process_group("nccl" if use_cuda else "gloo")
        torch.manual_seed(cfg.run.seed + self.rank)
        self.model = GMAE(cfg.model).to(self.device)
        self.net = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model, device_ids=[self.local_rank] if use_cuda else None)
        self.opt = torch.optim.AdamW(param_groups(self.model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                     betas=(0.9, 0.95))
        self.step = 0
        self.elapsed_before = 0.0
        # inputs first: a bad --resume checkpoint or --out fails before minutes of data loading
        resume_blob = load_resume_checkpoint(self.out / "last.pt") if resume else None
        if self.rank == 0:
            check_output(self.out / "last.pt", "--out")  # creates the folder, writes a probe in it
        mc = cfg.model
        train_seqs = load_sequences(cfg.data.paths, cfg.data.preload_short, exclude=cfg.data.holdout,
                                    min_frames=mc.num_frames)
        train_seqs += self._synthetic_sequences()
        self.sampler = ClipSampler(train_seqs, mc.num_frames, mc.input_hw, cfg.data.max_stride,
                                   tuple(cfg.data.crop_scale), seed=cfg.run.seed * 1000 + self.rank)
        self.train_names = [s.name for s in train_seqs]
        self.eval_clips = None
        if cfg.data.holdout and self.rank == 0 and cfg.run.eval_clips > 0:
            try:
                hold = load_sequences(cfg.data.paths, cfg.data.preload_short, include=list(cfg.data.holdout),
                                      min_frames=mc.num_frames)
                per = max(1, cfg.run.eval_clips // len(hold))
                self.eval_clips, _ = heldout_clips(hold, mc.num_frames, mc.input_hw, stride=2, clips_per_seq=per)
            except InputError:
                self.eval_clips = None
        self.np_rng = np.random.default_rng(cfg.run.seed + 17 * self.rank)
        self.scene_sampler = None
        if cfg.supervised.enabled:
            from .scenes import SceneClipSampler

            sup = cfg.supervised
            tex = self._real_textures(sup.real_textures)
            self.scene_sampler = SceneClipSampler(sup.scenes, mc.num_frames, mc.input_hw, sup.points, sup.max_stride,
                                                  sup.scene_frames, tex.get("real_textures", ""),
                                                  tex.get("real_textures_exclude", ()),
                                                  seed=cfg.run.seed * 1000 + self.rank)
        self.mask_gen = torch.Generator().manual_seed(cfg.run.seed + 31 * self.rank)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
        if resume_blob is not None:
            self._resume(resume_blob)
        elif cfg.run.init_from:
            blob = load_checkpoint_blob(resolve_path(cfg.run.init_from))
            self.model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["model"].items()})
            self.log_fn(f"initialised weights from {cfg.run.init_from}")

    def _synthetic_sequences(self):
        n = self.cfg.data.synthetic_clips
        if n <= 0:
            return []
        try:
            from ..synthetic import make_training_sequences  # type: ignore[attr-defined]
        except ImportError:
            self.log_fn("synthetic scenes requested but gs_tracker_ros.synthetic has no make_training_sequences; skipped")
            return []
        from .data import Sequence

        short = self.cfg.data.preload_short
        clips = make_training_sequences(n, width=short * 3 // 2, height=short, seed=self.cfg.run.seed,
                                        **self._real_textures(self.cfg.data.synthetic_textures))
        return [Sequence(f"synthetic_{i}", np.asarray(f, np.uint8)) for i, f in enumerate(clips)]

    def _real_textures(self, folder: str) -> dict:
        """Keyword arguments for generated scenes textured with crops of ``folder``'s frames (held-out
        sequences excluded); none when ``folder`` is empty, or absent (said in the log)."""
        if not folder:
            return {}
        if not resolve_path(folder).is_dir():
            self.log_fn(f"real-crop textures: {folder} not found, generated scenes use procedural textures only")
            return {}
        return {"real_textures": folder, "real_textures_exclude": tuple(self.cfg.data.holdout)}

    # ------------------------------------------------------------------ checkpoints
    def _resume(self, blob: dict) -> None:
        """Continue from a :func:`load_resume_checkpoint` blob: weights, optimiser, step, RNGs."""
        path = self.out / "last.pt"
        try:
            self.model.load_state_dict({k: v.float() if v.is_floating_point() else v
                                        for k, v in blob["model"].items()})
            self.opt.load_state_dict(blob["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise InputError(f"--resume: {path} does not fit this config's model ({first[:200]})") from None
        self.step = int(blob["step"])
        self.elapsed_before = float(blob.get("elapsed_s", 0.0))
        if "sampler_rng" in blob:
            self.sampler.rng.bit_generator.state = json.loads(blob["sampler_rng"])
        if "mask_rng" in blob:
            self.mask_gen.set_state(blob["mask_rng"])
        if "scene_rng" in blob and self.scene_sampler is not None:
            self.scene_sampler.rng.bit_generator.state = json.loads(blob["scene_rng"])
        self.log_fn(f"resumed from {path} at step {self.step}")

    def save(self) -> None:
        if self.rank != 0:
            return
        extra = {
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "elapsed_s": self.elapsed(),
            "train_config": json.dumps(self.cfg.to_dict()),
            "sampler_rng": json.dumps(self.sampler.rng.bit_generator.state),
            "mask_rng": self.mask_gen.get_state(),
        }
        if self.scene_sampler is not None:
            extra["scene_rng"] = json.dumps(self.scene_sampler.rng.bit_generator.state)
        save_checkpoint(self.out / "last.pt", self.model, extra)
        save_checkpoint(self.out / "model_fp16.pt", self.model, {"step": self.step}, half=True)

    def elapsed(self) -> float:
        return self.elapsed_before + (time.time() - self.t_start)

    # ------------------------------------------------------------------ one step
    def _batch(self):
        cfg = self.cfg
        b = cfg.optim.batch_size
        clips = self.sampler.batch(b)  # (B, T, H, W, 3) uint8
        mc = cfg.model
        s = (mc.height // mc.patch) * (mc.width // mc.patch)  # spatial patches
        tracks = valid = None
        if cfg.loss.traj > 0:
            tv = [lk_grid_tracks(c, cfg.loss.traj_grid) for c in clips]
            tracks = torch.from_numpy(np.stack([x[0] for x in tv])).to(self.device)
            valid = torch.from_numpy(np.stack([x[1] for x in tv])).to(self.device)
        if self.np_rng.random() < cfg.mask.unmasked_prob:
            vis = None
        elif cfg.mask.motion_aware:
            motion = torch.from_numpy(np.stack([patch_motion(c, mc.patch) for c in clips]))
            vis = motion_aware_tube_mask(motion, cfg.mask.ratio, generator=self.mask_gen)
        else:
            vis = random_tube_mask(b, s, cfg.mask.ratio, generator=self.mask_gen)
        x = torch.from_numpy(clips).to(self.device).float() / 255.0
        return x, (vis.to(self.device) if vis is not None else None), tracks, valid

    def train_step(self) -> dict:
        cfg = self.cfg
        for grp in self.opt.param_groups:
            grp["lr"] = lr_at(self.step, cfg)
        x, vis, tracks, valid = self._batch()
        self.net.train()
        g = self.net(x, vis)
        b, t, h, w, _ = x.shape
        ropts = {"tile_size": cfg.render.tile_size, "max_per_tile": cfg.render.max_per_tile} if self.device.type == "cpu" else {}
        bg = torch.full((3,), cfg.render.background, device=self.device)
        out = render_clip(g, h, w, background=bg, **ropts)
        diff = out.rgb - x
        mse = (diff**2).mean()
        loss = cfg.loss.l1 * diff.abs().mean() + cfg.loss.mse * mse
        stats = {}
        if cfg.loss.traj > 0:
            lt = trajectory_loss(g, tracks, valid, ropts)
            loss = loss + cfg.loss.traj * lt
            stats["traj"] = float(lt.detach())
        self.opt.zero_grad(set_to_none=True)
        sup = cfg.supervised
        if self.scene_sampler is not None and self.step % sup.every == 0:
            # its own backward, before the reconstruction one: under DDP the gradients accumulate
            # locally (no_sync) and the next, synchronised backward averages them over the ranks
            lt, lv = self.supervised_loss(self.scene_sampler.batch(sup.batch_size), ropts)
            sup_loss = sup.weight * lt + sup.vis_weight * lv
            with self.net.no_sync() if self.world > 1 else contextlib.nullcontext():
                sup_loss.backward()
            loss = loss + sup_loss.detach()
            stats.update(sup_traj=float(lt.detach()), sup_vis=float(lv.detach()))
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.opt.step()
        self.step += 1
        m = float(mse.detach())
        stats.update(loss=float(loss.detach()), psnr=10 * math.log10(1.0 / max(m, 1e-10)), grad_norm=float(gn),
                     masked=vis is not None)
        return stats

    def supervised_loss(self, batch, render_opts: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """``(trajectory, visibility)`` losses of the model on labelled clips (unmasked input, as at inference)."""
        self.net.train()
        x = torch.from_numpy(batch.clips).to(self.device).float() / 255.0
        g = self.net(x, None)
        dev = {k: torch.from_numpy(getattr(batch, k)).to(self.device) for k in ("tracks", "visible", "in_view")}
        return supervised_losses(g, dev["tracks"], dev["visible"], dev["in_view"], render_opts)

    # ------------------------------------------------------------------ loop
    def evaluate(self) -> dict:
        if self.eval_clips is None:
            return {}
        ropts = {"tile_size": self.cfg.render.tile_size, "max_per_tile": None} if self.device.type == "cpu" else {}
        r = reconstruction_metrics(self.model, self.eval_clips, self.cfg.mask.ratio, seed=0, render_options=ropts,
                                   background=self.cfg.render.background)
        self.model.train()
        return {f"eval_{k}": v for k, v in r.items() if k != "num_clips"}

    def write_log(self, rec: dict) -> None:
        if self.rank != 0:
            return
        append_line(self.out / "log.jsonl", json.dumps(rec))

    def fit(self) -> dict:
        cfg = self.cfg
        self.t_start = time.time()
        if self.rank == 0:
            import yaml

            write_text(self.out / "config.yaml", yaml.safe_dump(json.loads(json.dumps(cfg.to_dict())), sort_keys=False))
            n_par = sum(p.numel() for p in self.model.parameters())
            self.log_fn(f"training GMAE ({n_par / 1e6:.2f} M params, {cfg.model.num_gaussians} Gaussians) on "
                        f"{len(self.train_names)} sequences, device {self.device}, world {self.world}, "
                        f"from step {self.step} to {cfg.optim.steps}")
        with StopOnSignal() as signals:
            last = self._loop(signals)
        if self.world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
        return last

    def _loop(self, signals: StopOnSignal) -> dict:
        """Train until ``optim.steps``, ``run.max_minutes`` or a signal (then ``last.pt`` is saved
        and ``KeyboardInterrupt`` says so); returns the last log record."""
        cfg = self.cfg
        window: list[dict] = []
        t_win = time.time()
        last = {}
        while self.step < cfg.optim.steps:
            if signals.requested:
                self.save()
                raise KeyboardInterrupt(f"{signals.requested} at step {self.step}: saved {self.out / 'last.pt'} "
                                        "(--resume continues from it)")
            stats = self.train_step()
            window.append(stats)
            stop = cfg.run.max_minutes > 0 and self.elapsed() > cfg.run.max_minutes * 60
            done = self.step >= cfg.optim.steps or stop
            if self.step % cfg.run.log_every == 0 or done:
                dt = time.time() - t_win
                rec = {
                    "step": self.step,
                    "loss": float(np.mean([s["loss"] for s in window])),
                    "psnr": float(np.mean([s["psnr"] for s in window])),
                    "psnr_masked": float(np.mean([s["psnr"] for s in window if s["masked"]] or [float("nan")])),
                    "grad_norm": float(np.mean([s["grad_norm"] for s in window])),
                    "lr": lr_at(self.step - 1, cfg),
                    "steps_per_s": len(window) / max(dt, 1e-9),
                    "elapsed_s": round(self.elapsed(), 1),
                }
                for key in ("traj", "sup_traj", "sup_vis"):
                    vals = [s[key] for s in window if key in s]
                    if vals:
                        rec[key] = float(np.mean(vals))
                if self.step % cfg.run.eval_every == 0 or done:
                    rec.update(self.evaluate())
                self.write_log(rec)
                if self.rank == 0:
                    extra = "".join(f" {k[5:]}={v:.2f}" for k, v in rec.items() if k.startswith("eval_psnr"))
                    self.log_fn(f"step {rec['step']:6d}  loss {rec['loss']:.4f}  psnr {rec['psnr']:.2f}  "
                                f"lr {rec['lr']:.2e}  {rec['steps_per_s']:.2f} it/s  {rec['elapsed_s']:.0f}s{extra}")
                    sys.stdout.flush()
                last = rec
                window, t_win = [], time.time()
            if self.step % cfg.run.ckpt_every == 0 or done:
                self.save()
            if stop:
                self.log_fn(f"stopping: reached max_minutes={cfg.run.max_minutes}")
                break
        return last


def load_resume_checkpoint(path: Path) -> dict:
    """The ``last.pt`` blob ``--resume`` continues from; :class:`InputError` with one line when it
    is missing, corrupt or not a training checkpoint (e.g. weights only, such as model_fp16.pt)."""
    if not path.is_file():
        raise InputError(f"--resume: no checkpoint at {path}")
    try:
        blob = load_checkpoint_blob(path)
    except InputError as err:
        raise InputError(f"--resume: {err}") from None
    missing = [k for k in ("optimizer", "step") if k not in blob]
    if missing or not isinstance(blob["model"], dict):
        raise InputError(f"--resume: {path} is not a training checkpoint written by gs-tracker train "
                         f"(no {' / '.join(missing) or 'weights'} in it)")
    return blob


def train(cfg: TrainConfig, out_dir: str | Path, resume: bool = False, log=print) -> dict:
    """Train (or resume) and return the last log record."""
    return Trainer(cfg, out_dir, resume, log).fit()
