"""The accuracy/cost figure (evaluation/plots/cost.py) drawn from what eval and bench write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gs_tracker_ros.cli.bench_cmd import time_method
from gs_tracker_ros.evaluation.cycle import CycleClip, evaluate_cycle
from gs_tracker_ros.evaluation.jitter import evaluate_badja_jittered
from gs_tracker_ros.evaluation.runner import evaluate_badja
from gs_tracker_ros.evaluation.synthetic_gt import scene_sequence
from gs_tracker_ros.methods import make_tracker
from gs_tracker_ros.synthetic.config import SceneConfig
from gs_tracker_ros.synthetic.scene import make_scene
from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.evaluation.plots.cost import cost_point, main, plot_accuracy_cost


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """badja / cycle / bench JSON files of klt and dis-chain-fast on generated scenes, in the layouts
    the CLI writes (one result, several under "results", and bench's "methods")."""
    out = tmp_path_factory.mktemp("runs")
    scene = make_scene(SceneConfig(seed=3, width=160, height=120, num_frames=8))
    seqs = [scene_sequence(scene, num_points=16, seed=0, name="scene3")]
    clip = CycleClip("scene3", np.stack(list(scene.frames())))
    frames = list(scene.frames())
    badja, cycle, bench = [], [], {"methods": {}}
    for method in ("klt", "dis-chain-fast"):
        res = evaluate_badja(lambda m=method: make_tracker(m), seqs, progress=False)
        if method == "klt":
            res["query_jitter"] = evaluate_badja_jittered(lambda: make_tracker("klt"), seqs, 1.0, 2)
        badja.append(res)
        cycle.append(evaluate_cycle(lambda m=method: make_tracker(m), [clip], grid=4))
        bench["methods"][method] = {"points_256": time_method(method, TrackerConfig(), frames, 16, warmup=1)}
    (out / "badja.json").write_text(json.dumps({"results": badja}))
    (out / "badja_klt.json").write_text(json.dumps(badja[0]))
    (out / "cycle.json").write_text(json.dumps({"results": cycle}))
    (out / "bench.json").write_text(json.dumps(bench))
    return out, badja, cycle, bench


def test_a_row_takes_its_method_from_each_file(runs) -> None:
    out, badja, cycle, bench = runs
    # generated scenes have no segmentation areas (delta_seg is NaN): delta_avg
    klt = cost_point("klt", out / "badja_klt.json", out / "cycle.json", out / "bench.json", "klt", key="delta_avg")
    dis = cost_point("dis", out / "badja.json", out / "cycle.json", out / "bench.json", "dis-chain-fast",
                     key="delta_avg")
    assert klt.jittered and not dis.jittered
    assert klt.score["pooled"] == badja[0]["query_jitter"]["overall"]["delta_avg"]["mean"] > 0
    assert dis.score["scene3"] == badja[1]["sequences"]["scene3"]["delta_avg"] > 0
    assert dis.within_4px == cycle[1]["overall"]["within_4px"]
    assert klt.ms_per_frame == bench["methods"]["klt"]["points_256"]["latency_ms_mean"] > 0
    assert klt.ratio_vs_klt == 1.0
    assert dis.ratio_vs_klt == pytest.approx(dis.ms_per_frame / klt.ms_per_frame)
    with pytest.raises(ValueError, match="no result of method 'probfuse'"):
        cost_point("x", out / "badja.json", out / "cycle.json", out / "bench.json", "probfuse")


def test_the_figure_is_drawn_from_the_command_line(runs, tmp_path, capsys) -> None:
    import cv2

    out = runs[0]
    png = tmp_path / "cost.png"
    files = [str(out / "badja.json"), str(out / "cycle.json"), str(out / "bench.json")]
    assert main(["--out", str(png), "--score", "delta_avg", "--row", "klt", *files, "klt",
                 "--row", "dis", *files, "dis-chain-fast"]) == 0
    image = cv2.imread(str(png))
    assert image is not None and image.shape[1] >= 1000 and image.std() > 10
    assert "klt:" in capsys.readouterr().out
    assert main(["--out", str(png), "--row", "x", str(tmp_path / "missing.json"), *files[1:], "klt"]) == 2
    with pytest.raises(ValueError, match="no variants"):
        plot_accuracy_cost([], png)
