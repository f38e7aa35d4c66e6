"""The trade-off figure (evaluation/plots/tradeoff.py) drawn from the differences eval writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gs_tracker_ros.cli.eval_cmd import difference_table
from gs_tracker_ros.evaluation.masks import MaskClip, evaluate_masks
from gs_tracker_ros.evaluation.plots.tradeoff import main, plot_tradeoff, tradeoff_points
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.evaluation.synthetic_gt import scene_sequence
from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.synthetic.config import SceneConfig
from gs_tracker_ros.synthetic.scene import make_scene
from stand_ins import StaticTracker  # test/ is on sys.path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """badja and masks eval JSON files (klt, static, dis-chain-fast; differences against klt) on
    generated scenes, in the layout `gs-tracker eval --json` writes."""
    out = tmp_path_factory.mktemp("tradeoff")
    seqs = []
    for seed in (1, 2):
        scene = make_scene(SceneConfig(seed=seed, width=160, height=120, num_frames=8))
        seqs.append(scene_sequence(scene, num_points=16, seed=seed, name=f"scene{seed}"))
    scene = make_scene(SceneConfig(width=192, height=128, num_frames=10, num_layers=1, fg_speed=5.0,
                                   fg_size=(0.3, 0.35), exit_reenter=False, seed=2))
    clip = MaskClip("shape", np.stack(list(scene.frames())),
                    np.stack([scene.layer_ids(t) == 1 for t in range(scene.num_frames)]))
    factories = {"klt": lambda: make_tracker("klt"), "static": StaticTracker,  # the runners reset it
                 "dis-chain-fast": lambda: make_tracker("dis-chain-fast")}
    files = {}
    for kind in ("badja", "masks"):
        results = [evaluate_badja(f, seqs, progress=False) if kind == "badja" else
                   evaluate_masks(f, [clip], progress=False) for f in factories.values()]
        _, rows = difference_table(results, results[0], kind)
        files[kind] = out / f"{kind}.json"
        files[kind].write_text(json.dumps({"results": results, "differences": rows}))
    return files


def test_points_are_the_pooled_differences_and_the_worst_video(runs) -> None:
    # generated scenes have no segmentation areas (delta_seg is NaN): delta_avg and AJ
    points = tradeoff_points(runs["badja"], runs["masks"], ("delta_avg", "AJ"))
    badja = {d["method"]: d for d in json.loads(runs["badja"].read_text())["differences"]}
    masks = {d["method"]: d for d in json.loads(runs["masks"].read_text())["differences"]}
    assert [p.label for p in points] == ["static", "dis-chain-fast"]
    for p in points:
        assert p.against == "klt"
        assert p.mask_stay.diff == pytest.approx(100 * masks[p.label]["differences"]["pooled"]["mask_stay"]["diff"])
        pooled = badja[p.label]["differences"]["pooled"]["delta_avg"]
        assert (p.badja["delta_avg"].low, p.badja["delta_avg"].high) == pytest.approx(
            (100 * pooled["low"], 100 * pooled["high"]))
        video, worst = p.worst_video["AJ"]
        per_video = {v: 100 * d["AJ"]["diff"] for v, d in badja[p.label]["differences"].items() if v != "pooled"}
        assert set(per_video) == {"scene1", "scene2"} and worst.diff == pytest.approx(min(per_video.values()))
        assert per_video[video] == pytest.approx(worst.diff)
    static = points[0]  # a tracker that does nothing loses to klt on both sets, beyond the noise
    assert static.mask_stay.diff < 0 and static.badja["delta_avg"].diff < 0
    assert static.mask_stay.beyond_noise and static.badja["delta_avg"].beyond_noise


def test_the_figure_is_drawn_from_the_command_line(runs, tmp_path, capsys) -> None:
    import cv2

    png = tmp_path / "tradeoff.png"
    assert main([str(runs["badja"]), str(runs["masks"]), "--out", str(png), "--score", "delta_avg",
                 "--score", "AJ"]) == 0
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] >= 1000 and image.std() > 10
    printed = capsys.readouterr().out
    assert "static: mask-stay -" in printed and "worst scene" in printed
    with pytest.raises(ValueError, match="no methods or variants"):
        plot_tradeoff([], png)


def test_bad_inputs_name_the_problem(runs, tmp_path, capsys) -> None:
    png = tmp_path / "x.png"
    lone = tmp_path / "lone.json"
    lone.write_text(json.dumps({"method": "klt", "overall": {}, "sequences": {}}))  # one method: no differences
    assert main([str(lone), str(runs["masks"]), "--out", str(png)]) == 2
    assert "no paired differences" in capsys.readouterr().err
    assert main([str(runs["badja"]), str(runs["badja"]), "--out", str(png)]) == 2  # badja given as masks
    assert "no mask-stay difference" in capsys.readouterr().err
    assert main([str(runs["badja"]), str(runs["masks"]), "--out", str(png), "--score", "nope"]) == 2
    assert "no paired difference of score 'nope'" in capsys.readouterr().err
    other = json.loads(runs["masks"].read_text())
    for row in other["differences"]:
        row["method"] += "[x]"
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(other))
    assert main([str(runs["badja"]), str(renamed), "--out", str(png)]) == 2
    assert "no method or variant in common" in capsys.readouterr().err
    assert not png.exists()
