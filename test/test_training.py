"""Training pipeline: data, config, LK pseudo-labels, the ``train`` command, resume, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from gs_tracker_ros.cli.main import main
from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.model.checkpoint import load_checkpoint_blob
from gs_tracker_ros.training.config import TrainConfig, load_config
from gs_tracker_ros.training.data import ClipSampler, discover, lk_grid_tracks, load_sequences, patch_motion
from gs_tracker_ros.training.evaluate import evaluate_reconstruction

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _texture(h, w, seed):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 4, w // 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (3, 3), 0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    for k, name in enumerate(["seq_a", "seq_b", "held"]):
        d = root / name
        d.mkdir()
        tex = _texture(80, 120, k)
        for i in range(10):
            frame = np.roll(tex, 2 * i, axis=1)[:40, :60]  # texture sliding right by 2 px per frame
            cv2.imwrite(str(d / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return root


def _tiny_config(dataset: Path, tmp_path: Path, **run) -> Path:
    cfg = {
        "model": dict(img_size=32, num_frames=4, enc_dim=32, enc_depth=1, enc_heads=2, dec_dim=32, dec_depth=1,
                      dec_heads=2, gaussian_grid=4),
        "data": {"paths": [str(dataset)], "holdout": ["held"], "preload_short": 40, "max_stride": 2},
        "optim": {"steps": 3, "batch_size": 2, "warmup": 2},
        "loss": {"traj": 0.5, "traj_grid": 4},
        "mask": {"ratio": 0.75, "motion_aware": True, "unmasked_prob": 0.5},
        "run": dict({"log_every": 1, "ckpt_every": 2, "eval_every": 2, "eval_clips": 2}, **run),
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_shipped_configs_parse():
    cfg = load_config(ROOT / "training" / "configs" / "train_cpu_small.yaml")
    assert cfg.run.num_threads == 1 and cfg.model.num_gaussians >= 100
    assert set(cfg.data.holdout) == {"blackswan", "car-shadow", "goat"}
    gpu = load_config(ROOT / "training" / "configs" / "train_gpu.yaml")
    assert gpu.run.device in ("auto", "cuda")
    wide = load_config(ROOT / "training" / "configs" / "train_cpu_wide.yaml")
    assert wide.model.input_hw == (64, 112) and wide.model.num_gaussians == 16 * 28
    assert wide.model.scale_max * wide.model.width <= 5.1  # the size cap: sigma <= ~5 model px
    assert (ROOT / wide.run.init_from).is_file()  # fine-tunes the shipped checkpoint (same weight shapes)
    with pytest.raises(ConfigError, match="img_size"):
        TrainConfig.from_dict({"model": {"img_size": [64, 100]}})  # 100 is not a multiple of the patch
    with pytest.raises(ConfigError, match="img_size"):
        TrainConfig.from_dict({"model": {"img_size": [64, 112, 3]}})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"optim": {"stepz": 3}})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"bogus": {}})
    with pytest.raises(ConfigError):
        TrainConfig.from_dict({"mask": {"ratio": 1.0}})


def test_discover_sampler_and_holdout(dataset):
    names = [n for n, _ in discover([dataset])]
    assert names == ["held", "seq_a", "seq_b"]
    seqs = load_sequences([dataset], short=40, exclude=["held"])
    assert [s.name for s in seqs] == ["seq_a", "seq_b"] and seqs[0].frames.shape == (10, 40, 60, 3)
    sampler = ClipSampler(seqs, num_frames=4, size=32, max_stride=3, seed=0)
    batch = sampler.batch(3)
    assert batch.shape == (3, 4, 32, 32, 3) and batch.dtype == np.uint8
    assert patch_motion(batch[0], 8).shape == (16,)


def test_lk_pseudo_labels_follow_a_translation():
    tex = _texture(64, 96, 3)
    clip = np.stack([np.roll(tex, 2 * i, axis=1)[:, 8:72] for i in range(4)])  # 64x64, +2 px/frame in x
    tracks, valid = lk_grid_tracks(clip, grid=4)
    assert tracks.shape == (4, 16, 2) and valid.shape == (4, 16)
    ok = valid[3]
    assert ok.sum() >= 10
    err = np.abs(tracks[3, ok] - tracks[0, ok] - [6.0, 0.0]).max(1)
    assert (err < 0.5).mean() >= 0.8  # (the rolled texture has a seam some points sit on)


def test_train_resume_and_evaluate(dataset, tmp_path):
    cfg_path = _tiny_config(dataset, tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(cfg_path), "--out", str(out)]) == 0
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) and "traj" in r for r in lines)
    assert "eval_psnr_model" in lines[1] and "eval_psnr_repeat_first" in lines[1]
    blob = load_checkpoint_blob(out / "last.pt")
    assert blob["step"] == 3 and "optimizer" in blob
    assert (out / "model_fp16.pt").is_file() and (out / "config.yaml").is_file()
    # resume continues from step 3
    assert main(["train", str(cfg_path), "--out", str(out), "--resume", "--steps", "5"]) == 0
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines][-2:] == [4, 5]
    assert load_checkpoint_blob(out / "last.pt")["step"] == 5
    # fine-tuning starts from saved weights (run.init_from) with a fresh optimiser and step count
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["run"]["init_from"] = str(out / "model_fp16.pt")
    cfg["model"]["scale_max"] = 0.1
    ft_path = tmp_path / "ft.yaml"
    ft_path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(ft_path), "--out", str(tmp_path / "ft"), "--steps", "1"]) == 0
    assert load_checkpoint_blob(tmp_path / "ft" / "last.pt")["step"] == 1
    res = evaluate_reconstruction(out / "model_fp16.pt", [dataset], names=["held"], stride=1, clips_per_seq=2)
    o = res["overall"]
    assert o["num_clips"] == 2 and set(res["per_sequence"]) == {"held"}
    for k in ("psnr_model", "psnr_model_masked", "psnr_repeat_first", "psnr_repeat_first_later"):
        assert np.isfinite(o[k])


def test_train_errors_are_user_errors(dataset, tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    cfg_path = _tiny_config(dataset, tmp_path)
    assert main(["train", str(cfg_path), "--out", str(tmp_path / "fresh"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_motion_pair_errors_on_a_labelled_sequence(tmp_path):
    from gs_tracker_ros.motion.base import MotionEstimate, MotionSource
    from gs_tracker_ros.training.evaluate import motion_pair_errors

    seq = tmp_path / "toy"
    (seq / "frames").mkdir(parents=True)
    for i in range(8):
        cv2.imwrite(str(seq / "frames" / f"{i:05d}.jpg"), np.full((32, 40, 3), 20 * i, np.uint8))
    n, t = 3, 8
    xy = np.zeros((n, t, 2), np.float32)
    xy[..., 0] = 5 + 2.0 * np.arange(t)  # every joint moves +2 px / frame in x
    xy[..., 1] = np.arange(n)[:, None] * 5 + 5
    ann = np.zeros(t, bool)
    ann[[0, 3, 6]] = True
    np.savez(seq / "gt.npz", tracks_xy=xy, visible=np.ones((n, t), bool), annotated_frames=ann,
             image_hw=np.array([32, 40]))

    class Constant(MotionSource):
        def estimate(self, buffer, a, b, points):
            k = len(points)
            return MotionEstimate(np.tile([[2.0 * (b - a), 0.0]], (k, 1)).astype(np.float32),
                                  np.ones(k, np.float32), np.ones(k, bool))

    r = motion_pair_errors(Constant, seq, max_gap=6)
    assert r["pairs_points"] == 3 * n  # pairs (0,3), (3,6), (0,6)
    assert r["epe_mean"] == pytest.approx(0.0, abs=1e-5) and r["valid_share"] == 1.0
    assert r["zero_motion_epe_mean"] == pytest.approx((6 + 6 + 12) / 3)


def test_non_square_clips_keep_the_aspect_ratio(dataset, tmp_path):
    from gs_tracker_ros.training.data import center_clip, crop_box

    assert crop_box(480, 854, (64, 112)) == (480, 840)  # the widest 7:4 crop of a 854x480 frame
    ch, cw = crop_box(480, 854, (64, 112), scale=0.5)
    assert (ch, cw) == (240, 420) and cw / ch == pytest.approx(112 / 64)
    assert crop_box(100, 100, (64, 112)) == (57, 100)  # a narrower frame: limited by its width
    seqs = load_sequences([dataset], short=40, exclude=["held"])
    batch = ClipSampler(seqs, num_frames=4, size=(24, 40), max_stride=2, seed=0).batch(3)
    assert batch.shape == (3, 4, 24, 40, 3)
    # the frames (40x60) slide right by 2 px per frame; a 36x60 crop resized to 24x40 keeps x and y alike
    clip = center_clip(seqs[0].frames, 0, 4, 1, (24, 40))
    assert clip.shape == (4, 24, 40, 3)
    tracks, valid = lk_grid_tracks(clip, grid=4)
    step = (tracks[3] - tracks[0])[valid[3]] / 3.0
    assert np.median(step[:, 0]) == pytest.approx(2.0 * 40 / 60, abs=0.15) and abs(np.median(step[:, 1])) < 0.15
    # a non-square model trains: 3x5 patches, 2x2 Gaussians each (gaussian_grid 6 rows) = 60 Gaussians
    cfg_path = _tiny_config(dataset, tmp_path)
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["model"].update(img_size=[24, 40], gaussian_grid=6)
    cfg["optim"]["steps"] = 2
    cfg_path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "wide"
    assert main(["train", str(cfg_path), "--out", str(out)]) == 0
    blob = load_checkpoint_blob(out / "last.pt")
    assert blob["model_config"]["img_size"] == [24, 40] and blob["step"] == 2
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert "eval_psnr_model" in lines[-1] and np.isfinite(lines[-1]["loss"])
    res = evaluate_reconstruction(out / "model_fp16.pt", [dataset], names=["held"], stride=1, clips_per_seq=1)
    assert res["size"] == [24, 40] and np.isfinite(res["overall"]["psnr_model"])


def test_synthetic_clips_with_real_crop_textures(dataset, tmp_path):
    from gs_tracker_ros.training.train import Trainer

    cfg = load_config(_tiny_config(dataset, tmp_path))
    cfg.data.synthetic_clips = 2
    cfg.data.synthetic_textures = str(dataset)
    logs = []
    trainer = Trainer(cfg, tmp_path / "syn", log=logs.append)
    synthetic = [s for s in trainer.sampler.seqs if s.name.startswith("synthetic_")]
    assert len(synthetic) == 2 and synthetic[0].frames.shape[1:] == (40, 60, 3)
    assert not any("procedural" in line for line in logs)
    cfg.data.synthetic_textures = str(tmp_path / "absent")
    Trainer(cfg, tmp_path / "syn2", log=logs.append)
    assert any("not found, generated scenes use procedural textures only" in line for line in logs)


# ---------------------------------------------------------------- supervised stage on generated scenes
def _supervised_config(dataset, tmp_path, **sup):
    cfg = yaml.safe_load(_tiny_config(dataset, tmp_path).read_text())
    cfg["model"].update(img_size=[32, 48], gaussian_grid=8)
    cfg["supervised"] = dict({"weight": 1.0, "vis_weight": 0.5, "scenes": 3, "scene_frames": 12, "batch_size": 2,
                              "points": 24}, **sup)
    path = tmp_path / "sup.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_scene_clips_carry_exact_labels():
    from gs_tracker_ros.training.scenes import SceneClipSampler

    sampler = SceneClipSampler(3, num_frames=4, size=(32, 48), points=20, max_stride=2, scene_frames=12, seed=1)
    for _ in range(6):
        clip, tracks, visible, in_view = sampler.sample()
        assert clip.shape == (4, 32, 48, 3) and tracks.shape == (4, 20, 2) and visible.shape == (4, 20)
        assert visible[0].all() and (visible <= in_view).all()
        # a visible point shows the colour it had on the query frame (exact tracks, any direction/flip)
        ref = clip[0, np.round(tracks[0, :, 1]).astype(int), np.round(tracks[0, :, 0]).astype(int)].astype(float)
        def colour_at(img, xy):
            xy = np.ascontiguousarray(xy, np.float32)
            return cv2.remap(img.astype(np.float32), xy[:, :1].copy(), xy[:, 1:].copy(), cv2.INTER_LINEAR)[:, 0]

        for t in range(1, 4):
            v = visible[t]
            assert np.median(np.abs(colour_at(clip[t], tracks[t, v]) - ref[v]).max(1)) < 6  # noise + resampling
        wrong = np.median(np.abs(colour_at(clip[3], tracks[3] + [3.0, 0.0]) - ref).max(1))
        assert wrong > 15  # labels off by 3 px would not match: the check can fail
    batch = sampler.batch(3)
    assert batch.clips.shape == (3, 4, 32, 48, 3) and batch.tracks.dtype == np.float32


def test_one_supervised_step_reduces_the_supervised_loss(dataset, tmp_path):
    from gs_tracker_ros.training.train import Trainer

    cfg = load_config(_supervised_config(dataset, tmp_path))
    torch.manual_seed(0)
    trainer = Trainer(cfg, tmp_path / "sup_step", log=lambda *_: None)
    batch = trainer.scene_sampler.batch(2)
    ropts = {"tile_size": 8, "max_per_tile": 64}

    def total():
        lt, lv = trainer.supervised_loss(batch, ropts)
        return cfg.supervised.weight * lt + cfg.supervised.vis_weight * lv, lt, lv

    before, lt0, lv0 = total()
    assert torch.isfinite(before) and lt0 > 0 and lv0 > 0
    for grp in trainer.opt.param_groups:
        grp["lr"] = 1e-3
    trainer.opt.zero_grad()
    before.backward()
    trainer.opt.step()
    with torch.no_grad():
        after, _, _ = total()
    assert float(after.detach()) < float(before.detach()), (float(before.detach()), float(after.detach()))


def test_train_with_the_supervised_stage_logs_and_resumes(dataset, tmp_path):
    cfg_path = _supervised_config(dataset, tmp_path, every=2)
    out = tmp_path / "sup_run"
    assert main(["train", str(cfg_path), "--out", str(out)]) == 0
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3]
    assert "sup_traj" in lines[0] and "sup_vis" in lines[0] and "sup_traj" not in lines[1]  # every 2nd step
    blob = load_checkpoint_blob(out / "last.pt")
    assert "scene_rng" in blob
    assert main(["train", str(cfg_path), "--out", str(out), "--resume", "--steps", "5"]) == 0
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines][-2:] == [4, 5] and "sup_traj" in lines[-1]
    assert load_checkpoint_blob(out / "last.pt")["step"] == 5
    with pytest.raises(ConfigError, match="supervised"):
        TrainConfig.from_dict({"supervised": {"weight": -1.0}})
    with pytest.raises(ConfigError, match="supervised"):
        TrainConfig.from_dict({"supervised": {"weight": 1.0, "points": 0}})
