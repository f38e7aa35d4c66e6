"""Mask-stay evaluation (evaluation/masks.py, `gs-tracker eval --dataset masks`) on generated scenes
whose object masks are exact, and on ../shared/data/davis_masks when it is there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.evaluation.masks import (MaskClip, MaskProtocol, evaluate_masks, load_mask_dataset, mask_pairs,
                                             seed_points)
from gs_tracker_ros.evaluation.significance import paired_mask_difference
from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.synthetic.config import SceneConfig
from gs_tracker_ros.synthetic.scene import make_scene
from stand_ins import StaticTracker  # test/ is on sys.path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def moving_object_clip() -> MaskClip:
    """A generated scene with one fast textured shape; the mask is that shape's exact coverage."""
    scene = make_scene(SceneConfig(width=256, height=160, num_frames=24, num_layers=1, fg_speed=6.0,
                                   fg_size=(0.3, 0.35), exit_reenter=False, seed=2))
    frames = np.stack(list(scene.frames()))
    masks = np.stack([scene.layer_ids(t) == 1 for t in range(scene.num_frames)])
    return MaskClip("shape", frames, masks)


def test_seeds_lie_inside_the_eroded_mask_and_are_capped() -> None:
    mask = np.zeros((100, 200), bool)
    mask[20:80, 40:160] = True
    seeds = seed_points(mask, MaskProtocol(erode_px=12, step_px=8, max_points=1000))
    assert len(seeds) > 20
    assert seeds[:, 0].min() >= 40 + 12 and seeds[:, 0].max() <= 160 - 12
    assert seeds[:, 1].min() >= 20 + 12 and seeds[:, 1].max() <= 80 - 12
    capped = seed_points(mask, MaskProtocol(erode_px=12, step_px=8, max_points=10))
    assert len(capped) == 10 and set(map(tuple, capped)) <= set(map(tuple, seeds))
    assert len(seed_points(np.zeros((50, 50), bool), MaskProtocol())) == 0


def test_pairs_count_visible_points_inside_the_dilated_mask() -> None:
    masks = np.zeros((3, 40, 40), bool)
    masks[:, 10:20, 10:20] = True
    xy = np.array([[[15, 15], [15, 15], [15, 15]],     # on the object on both scored frames
                   [[15, 15], [24, 15], [30, 15]],     # 4 px beyond the edge (inside a 6 px dilation), then 10
                   [[15, 15], [15, 15], [15, 15]]], np.float32)
    visible = np.array([[1, 1, 1], [1, 1, 1], [1, 0, 0]], bool)  # the third one is called occluded
    counts = mask_pairs(xy, visible, masks, dilate_px=6)
    assert counts["pairs"].tolist() == [2, 2, 2]
    assert counts["visible"].tolist() == [2, 2, 0]
    assert counts["stay"].tolist() == [2, 1, 0]
    assert mask_pairs(xy, visible, masks, dilate_px=0)["stay"].tolist() == [2, 0, 0]


def test_a_tracker_that_follows_the_object_stays_on_it(moving_object_clip) -> None:
    ours = evaluate_masks(lambda: make_tracker("probfuse"), [moving_object_clip], progress=False)
    static = evaluate_masks(StaticTracker, [moving_object_clip], progress=False)
    assert ours["overall"]["points"] == static["overall"]["points"] > 10
    assert static["overall"]["visible_rate"] == 1.0
    assert ours["overall"]["mask_stay"] > 0.9 > 0.7 > static["overall"]["mask_stay"]
    diff = paired_mask_difference(ours, static, n_boot=500)
    assert diff["mask_stay"]["low"] > 0 and diff["mask_stay"]["diff"] == pytest.approx(
        ours["overall"]["mask_stay"] - static["overall"]["mask_stay"])
    assert diff["visible_rate"]["diff"] < 0  # ours calls some points hidden, the static one never does


def _write_dataset(clip: MaskClip, root: Path) -> tuple[Path, Path]:
    masks_dir, frames_dir = root / "masks" / clip.name, root / "frames" / clip.name
    masks_dir.mkdir(parents=True)
    frames_dir.mkdir(parents=True)
    for t, (frame, mask) in enumerate(zip(clip.frames, clip.masks)):
        cv2.imwrite(str(frames_dir / f"{t:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(masks_dir / f"{t:05d}.png"), mask.astype(np.uint8) * 255)
    return masks_dir.parent, frames_dir.parent


def test_loader_pairs_masks_with_frames_and_names_what_is_missing(moving_object_clip, tmp_path) -> None:
    masks, frames = _write_dataset(moving_object_clip, tmp_path)
    clips = load_mask_dataset(masks, frames)
    assert [c.name for c in clips] == ["shape"] and np.array_equal(clips[0].masks, moving_object_clip.masks)
    with pytest.raises(InputError, match="frames folder"):
        load_mask_dataset(masks, tmp_path / "nowhere")
    (masks / "shape" / "00023.png").unlink()
    with pytest.raises(InputError, match="24 frames but only 23 masks"):
        load_mask_dataset(masks, frames)


def test_cli_masks_table_json_and_differences(moving_object_clip, tmp_path) -> None:
    masks, frames = _write_dataset(moving_object_clip, tmp_path)
    out = tmp_path / "masks.json"
    res = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "masks", str(masks),
                          "--mask-frames", str(frames), "--method", "probfuse", "--method", "klt", "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "| probfuse | shape |" in res.stdout and "diff mask_stay" in res.stdout
    data = json.loads(out.read_text())
    assert [r["method"] for r in data["results"]] == ["probfuse", "klt"]
    for r in data["results"]:
        assert 0.0 <= r["overall"]["mask_stay"] <= r["overall"]["visible_rate"] <= 1.0
    assert data["differences"][0]["against"] == "probfuse"
    bad = subprocess.run([sys.executable, "-m", "gs_tracker_ros", "eval", "--dataset", "cycle", str(frames),
                          "--mask-frames", str(frames)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--mask-frames" in bad.stderr and "Traceback" not in bad.stderr


def test_davis_masks_load_with_their_frames() -> None:
    data = REPO.parent / "shared" / "data" / "davis_masks"
    if not (data / "goat").is_dir():
        pytest.skip(f"davis_masks not found at {data}")
    clips = load_mask_dataset(data, max_frames=3)
    assert len(clips) == 8 and all(c.masks.shape == c.frames.shape[:3] for c in clips)
    assert all(len(seed_points(c.masks[0], MaskProtocol())) > 0 for c in clips)
