"""``gs-tracker bench --profile`` / ``--scaling``: the stage profile and the scaling table."""

import json
import os

import numpy as np
import pytest

from gs_tracker_ros.cli import bench_cmd
from gs_tracker_ros.cli.main import main
from gs_tracker_ros.evaluation.profiling import profile_tracker
from gs_tracker_ros.core.geometry import first_grid_points
from gs_tracker_ros.methods import make_tracker


@pytest.fixture(scope="module")
def frames():
    return bench_cmd.bench_frames(16, width=320, height=240)


def test_profile_times_every_stage_and_changes_no_position(frames):
    plain = make_tracker("probfuse")
    plain.step(frames[0])
    plain.add_queries(first_grid_points(320, 240, 100))
    expected = [plain.step(f) for f in frames[1:]]

    timed = make_tracker("probfuse")
    prof = profile_tracker(timed, frames, 100, warmup=2)
    got = timed.state()
    assert np.array_equal(got.xy, expected[-1].xy) and np.array_equal(got.variance, expected[-1].variance)
    assert np.array_equal(got.visible, expected[-1].visible)

    chains = [k for k in prof.stages if k.startswith("lk chain")]
    assert chains == ["lk chains t-* batched (forward + backward)"]  # the default LK backend: one call a frame
    for stage in ("grey conversion", "fusion (integrate)", "hidden-point step", "state build (TrackState)",
                  "chain filter (descriptor similarity)", "observer (re-localisation)"):
        assert stage in prof.stages
    assert all(v >= 0 for v in prof.stages.values())
    assert prof.frames == len(frames) - 1 - 2
    # exclusive times: the stages never add up to more than the whole step
    assert 0 < sum(prof.stages.values()) <= prof.step_ms * 1.001
    assert prof.untimed_ms >= -1e-3
    assert list(prof.cpu_stages) == list(prof.stages) and prof.step_cpu_ms > 0
    assert all(v >= -0.05 for v in prof.cpu_stages.values())  # CPU clock ticks are coarser


def test_bench_profile_cli_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_cmd, "PROFILE_POINTS", (64,))
    monkeypatch.setattr(bench_cmd, "WIDTH", 320)
    monkeypatch.setattr(bench_cmd, "HEIGHT", 240)
    out = tmp_path / "profile.json"
    assert main(["bench", "--profile", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| lk chains t-* batched (forward + backward) |" in text and "**whole step**" in text
    res = json.loads(out.read_text())
    per = res["points"]["64"]
    assert per["step_ms"] > 0 and per["step_cpu_ms"] > 0 and per["lk_pair"]["all_points_ms"] > 0
    ros = per["ros"]
    if isinstance(ros, str):
        assert ros.startswith("skipped")
    else:
        assert set(ros) == {"ros: tracks message build", "ros: tracks message serialisation", "ros: overlay draw",
                            "ros: overlay Image message + serialisation"}


def test_bench_profile_rejects_a_method_without_stages(capsys):
    assert main(["bench", "--profile", "--quick", "--method", "klt"]) == 2
    assert "not one" in capsys.readouterr().err


def test_bench_scaling_times_probfuse_and_klt_per_size_and_count(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench_cmd, "SCALING_POINTS", (16, 64))
    monkeypatch.setattr(bench_cmd, "SCALING_SIZES", ((160, 120), (320, 240)))
    out = tmp_path / "scaling.json"
    assert main(["bench", "--scaling", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| 320x240 | 64 |" in text and "probfuse / klt" in text
    res = json.loads(out.read_text())
    assert [(r["width"], r["points"]) for r in res["rows"]] == [(160, 16), (160, 64), (320, 16), (320, 64)]
    for row in res["rows"]:
        for method in ("probfuse", "klt"):
            assert row[method]["fps_median"] > 0 and row[method]["latency_ms_p50"] > 0
            # process CPU time of a step: some work, and at most every core busy for the whole step
            # (cpu <= wall * cores holds frame by frame, so for the medians too; 1 ms slack for the
            # two clocks' resolution)
            assert 0 < row[method]["cpu_ms_p50"] <= row[method]["latency_ms_p50"] * (os.cpu_count() or 1) + 1.0


def test_chain_workers_run_the_chains_on_threads_with_the_same_positions(frames):
    import threading

    results = {}
    for workers in (1, 2):
        # the batched LK backend (the default) runs a frame's chains in one call; the chain
        # workers are for sources that estimate chain by chain, such as OpenCV's LK
        tracker = make_tracker("probfuse", {"lk": {"backend": "opencv"}})
        tracker.chain_workers = workers
        threads = set()
        estimate = tracker.sources[0].estimate

        def spy(*args, _estimate=estimate, _threads=threads):
            _threads.add(threading.current_thread().name)
            return _estimate(*args)

        tracker.sources[0].estimate = spy
        tracker.step(frames[0])
        tracker.add_queries(first_grid_points(320, 240, 100))
        results[workers] = [tracker.step(f) for f in frames[1:]]
        # one worker: all on the caller's thread; two: every frame with several chains on the pool
        assert any(name.startswith("chains") for name in threads) == (workers == 2), threads
    for a, b in zip(results[1], results[2]):
        assert np.array_equal(a.xy, b.xy) and np.array_equal(a.variance, b.variance)
        assert np.array_equal(a.visible, b.visible) and np.array_equal(a.status, b.status)


def test_bench_rejects_bad_chain_workers(capsys):
    assert main(["bench", "--scaling", "--quick", "--chain-workers", "0"]) == 2
    assert main(["bench", "--profile", "--quick", "--chain-workers", "2"]) == 2
    assert "--chain-workers" in capsys.readouterr().err


def test_throughput_counts_the_frames_a_schedule_makes_expensive():
    """fps (median) is the typical frame; fps (mean) the throughput a stream gets. With a heavy
    stage on every 3rd frame (as relocalize.every=3) the median frame is a cheap one."""
    import time

    from gs_tracker_ros.evaluation.timing import time_tracker

    class EveryThird:
        def __init__(self):
            self.t = 0

        def add_queries(self, xy):
            return np.arange(len(xy))

        def step(self, frame):
            self.t += 1
            time.sleep(0.030 if self.t % 3 == 0 else 0.002)

    frames = [np.zeros((48, 64, 3), np.uint8)] * 16
    r = time_tracker(EveryThird(), frames, 4, warmup=0)
    assert r["fps_median"] > 250 and r["fps_mean"] < 110  # 1000/2 ms vs 1000/(34/3 ms) = 88
    assert r["fps_mean"] == pytest.approx(1000.0 / r["latency_ms_mean"])
