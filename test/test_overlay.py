"""Overlay drawing, track history, video writing and contact sheets."""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
import pytest

from gs_tracker_ros.core.errors import InputError
from gs_tracker_ros.core.types import TrackState, TrackStatus
from gs_tracker_ros.viz import (
    OverlayStyle,
    TrackHistory,
    VideoWriter,
    draw_tracks,
    make_contact_sheet,
    save_contact_sheet,
    track_colour,
)


def _frame(h: int = 120, w: int = 160) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(40, 90, w, dtype=np.uint8)[None]
    img[..., 2] = 60
    return img


def _state(t: int, xy, visible, variance=None, ids=None) -> TrackState:
    xy = np.asarray(xy, np.float32).reshape(-1, 2)
    n = len(xy)
    return TrackState(t, np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64), xy,
                      np.zeros(n, np.float32) if variance is None else np.asarray(variance, np.float32),
                      np.asarray(visible, bool).reshape(n))


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0


def test_history_is_bounded_and_forgets_removed_ids():
    h = TrackHistory(max_len=5)
    for t in range(12):
        h.update(_state(t, [[t, 1.0], [2.0, t]], [True, t % 2 == 0], variance=[1.0, 4.0]))
    assert len(h) == 2 and h.frame_index == 11
    tail = h.tail(0)
    assert tail.shape == (5, 3)
    np.testing.assert_array_equal(tail[:, 0], [7, 8, 9, 10, 11])
    assert h.variance(1) == 4.0
    h.update(_state(12, [[0.0, 0.0]], [True], ids=[1]))
    assert h.ids() == [1] and 0 not in h
    keep = TrackHistory(max_len=3, keep_missing=True)
    keep.update_arrays([4, 5], [[0, 0], [1, 1]], [True, True])
    keep.update_arrays([5], [[2, 2]], [False])
    assert keep.ids() == [4, 5] and len(keep.tail(5)) == 2
    with pytest.raises(InputError):
        keep.update_arrays([1, 2], [[0, 0]], [True])


def test_draw_changes_pixels_near_visible_point_and_not_input():
    img = _frame()
    before = img.copy()
    h = TrackHistory()
    for t in range(6):
        h.update(_state(t, [[40 + 4 * t, 60.0]], [True]))
    out = draw_tracks(img, h, header=False)
    np.testing.assert_array_equal(img, before)  # input untouched
    assert out is not img and out.dtype == np.uint8 and out.shape == img.shape
    changed = _changed(out, img)
    assert changed[56:65, 56:65].mean() > 0.5  # the dot at (60, 60)
    assert changed[58:63, 40:55].any()  # the tail behind it
    assert not changed[:, 100:].any() and not changed[:40].any()  # nothing far away
    # the dot is drawn in the track's colour
    c = np.array(track_colour(0))
    assert np.abs(out[60, 60].astype(int) - c).max() <= 2


def _status_state(t: int, xy, status, variance=None, ids=None) -> TrackState:
    base = _state(t, xy, np.asarray(status) == TrackStatus.VISIBLE, variance, ids)
    return TrackState(base.frame_index, base.ids, base.xy, base.variance, base.visible,
                      np.asarray(status, np.uint8))


def test_occluded_point_is_a_small_faint_ring():
    img = _frame()
    hv, ho = TrackHistory(), TrackHistory()
    hv.update(_state(0, [[80.0, 60.0]], [True]))
    ho.update(_state(0, [[80.0, 60.0]], [False]))  # hidden without a status: occluded
    vis = draw_tracks(img, hv, header=False)
    occ = draw_tracks(img, ho, header=False)
    cv_, co = _changed(vis, img), _changed(occ, img)
    assert co.sum() > 5 and not co[60, 80]  # a hollow ring around the point
    assert co.sum() < cv_.sum() / 2  # smaller than the visible dot
    ys, xs = np.nonzero(co)
    assert np.abs(xs - 80).max() <= 4 and np.abs(ys - 60).max() <= 4
    # faint: blended with the frame, weaker than the visible dot's colour
    diff_o = np.abs(occ.astype(int) - img.astype(int)).sum(axis=2).max()
    diff_v = np.abs(vis.astype(int) - img.astype(int)).sum(axis=2).max()
    assert diff_o < 0.75 * diff_v


def test_out_of_view_points_are_not_drawn_unless_edge_markers():
    img = _frame()
    h = TrackHistory()
    h.update(_status_state(0, [[180.0, 60.0]], [TrackStatus.OUT_OF_VIEW], variance=[400.0]))
    assert not _changed(draw_tracks(img, h, header=False), img).any()
    marked = _changed(draw_tracks(img, h, header=False, style=OverlayStyle(edge_markers=True)), img)
    ys, xs = np.nonzero(marked)
    assert marked.any() and xs.min() >= 150 and np.abs(ys - 60).max() <= 3  # a tick on the right border


def test_hidden_uncertainty_circle_only_on_request():
    img = np.zeros((200, 200, 3), np.uint8)
    h = TrackHistory()
    h.update(_status_state(0, [[100.0, 100.0]], [TrackStatus.OCCLUDED], variance=[100.0]))  # 2 sigma = 20 px
    r_of = lambda out: np.hypot(*(np.array(np.nonzero(_changed(out, img)))[::-1] - 100.0)).max()
    assert r_of(draw_tracks(img, h, header=False)) <= 4
    assert 19 <= r_of(draw_tracks(img, h, header=False, style=OverlayStyle(show_hidden_uncertainty=True))) <= 22


def test_tails_are_drawn_only_along_visible_segments():
    img = np.zeros((120, 200, 3), np.uint8)
    h = TrackHistory()
    # visible at x = 20..40, hidden while it "jumps" to x = 150, visible again at 150..160
    path = [(20, True), (30, True), (40, True), (90, False), (140, False), (150, True), (160, True)]
    for t, (x, vis) in enumerate(path):
        h.update(_state(t, [[float(x), 60.0]], [vis]))
    out = _changed(draw_tracks(img, h, header=False), img)
    assert out[58:63, 22:38].any() and out[58:63, 151:155].any()  # the visible segments
    assert not out[:, 50:140].any()  # nothing bridges the hidden gap


def test_a_visible_point_the_tracker_doubts_is_a_faint_hollow_ring():
    img = _frame()
    sure, doubt, unknown = TrackHistory(), TrackHistory(), TrackHistory()
    for h, p in ((sure, 0.1), (doubt, 0.8), (unknown, np.nan)):
        st = _state(0, [[80.0, 60.0]], [True])
        h.update(TrackState(0, st.ids, st.xy, st.variance, st.visible, st.status, np.array([p], np.float32)))
    s, d, u = (draw_tracks(img, h, header=False) for h in (sure, doubt, unknown))
    assert _changed(s, img)[60, 80] and not _changed(d, img)[60, 80]  # filled dot vs hollow ring
    assert _changed(d, img).sum() > 5
    np.testing.assert_array_equal(u, s)  # no p_lost (a baseline): drawn as sure
    diff_d = np.abs(d.astype(int) - img.astype(int)).sum(axis=2).max()
    diff_s = np.abs(s.astype(int) - img.astype(int)).sum(axis=2).max()
    assert diff_d < diff_s  # faint
    legend_sure, legend_doubt = draw_tracks(img, sure), draw_tracks(img, doubt)
    assert not np.array_equal(legend_sure[-25:], legend_doubt[-25:])  # the legend counts it apart


def test_legend_counts_points_per_status():
    img = np.zeros((240, 320, 3), np.uint8)
    h = TrackHistory()
    h.update(_status_state(0, [[160, 60], [170, 60], [180, 60], [400, 60]],
                           [TrackStatus.VISIBLE, TrackStatus.OCCLUDED, TrackStatus.OCCLUDED, TrackStatus.OUT_OF_VIEW]))
    with_legend = _changed(draw_tracks(img, h), img)
    without = _changed(draw_tracks(img, h, style=OverlayStyle(legend=False)), img)
    assert with_legend[-20:, :100].mean() > 0.05 and not without[-20:, :100].any()  # bottom-left corner
    assert without[:20, :60].any()  # the header stays


def test_uncertainty_circle_is_clamped_and_ids_labels():
    img = np.zeros((200, 200, 3), np.uint8)
    h = TrackHistory()
    h.update(_state(0, [[100.0, 100.0]], [True], variance=[100.0]))  # 2 sigma = 20 px
    plain = _changed(draw_tracks(img, h, header=False), img)  # circles only on request
    assert np.hypot(*(np.array(np.nonzero(plain))[::-1] - 100.0)).max() < 8
    out = _changed(draw_tracks(img, h, header=False, style=OverlayStyle(show_uncertainty=True)), img)
    r = np.hypot(*(np.array(np.nonzero(out))[::-1] - 100.0))
    assert 19 <= r.max() <= 22
    h.update(_state(1, [[100.0, 100.0]], [True], variance=[1e6]))  # clamped to 40 px
    out = _changed(draw_tracks(img, h, header=False, style=OverlayStyle(max_sigma_radius=40, show_uncertainty=True)),
                   img)
    r = np.hypot(*(np.array(np.nonzero(out))[::-1] - 100.0))
    assert 39 <= r.max() <= 42
    with_ids = draw_tracks(img, h, header=False, style=OverlayStyle(show_ids=True))
    assert _changed(with_ids, img)[80:100, 105:125].any()


def test_colours_stable_and_header():
    assert track_colour(7) == track_colour(7)
    assert len({track_colour(i) for i in range(12)}) >= 8
    img = _frame()
    h = TrackHistory()
    h.update(_state(41, [[150.0, 110.0]], [True]))
    out = draw_tracks(img, h, fps=29.97)
    assert _changed(out, img)[:15, :60].mean() > 0.3  # header box top-left
    grey = draw_tracks(img[..., 1], h, header=False)
    assert grey.shape == img.shape
    with pytest.raises(InputError):
        draw_tracks(img.astype(np.float32), h)


def test_video_writer_round_trip(tmp_path):
    path = tmp_path / "sub" / "dir" / "v.mp4"
    rng = np.random.default_rng(0)
    frames = [np.full((64, 96, 3), 20 * k, np.uint8) for k in range(7)]
    frames[3][10:30, 10:40] = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mp4v is expected to be available: no fallback warning
        with VideoWriter(path, fps=10) as vw:
            for f in frames:
                vw.write(f)
    assert vw.path == path and vw.frame_count == 7 and path.stat().st_size > 0
    cap = cv2.VideoCapture(str(path))
    read = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        read.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    assert len(read) == 7
    assert read[0].shape == (64, 96, 3)
    assert abs(int(read[5][40, 60].mean()) - 100) < 12  # grey level 100 survives compression
    with pytest.raises(InputError):
        with VideoWriter(tmp_path / "w.mp4") as vw2:
            vw2.write(frames[0])
            vw2.write(np.zeros((32, 32, 3), np.uint8))  # size change


def test_video_writer_bad_paths(tmp_path):
    with pytest.raises(InputError):
        VideoWriter(tmp_path)  # a directory
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError):
        VideoWriter(blocker / "v.mp4")  # parent is a file
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(InputError):
                VideoWriter(ro / "v.mp4")
        finally:
            ro.chmod(0o700)


def test_contact_sheet(tmp_path):
    frames = [np.full((30, 40, 3), 60 * k, np.uint8) for k in range(5)]
    sheet = make_contact_sheet(frames, cols=3, pad=2)
    assert sheet.shape == (2 * 30 + 3 * 2, 3 * 40 + 4 * 2, 3)
    assert (sheet[2 + 30 + 2 + 5, 2 + 40 + 2 + 5] == 240).all()  # frame 4 at row 1, col 1
    path = tmp_path / "pics" / "sheet.png"
    save_contact_sheet(frames, path, cols=2, labels=[f"t={k}" for k in range(5)])
    back = cv2.imread(str(path))
    assert back is not None and back.shape[:2] == (3 * 30 + 4 * 4, 2 * 40 + 3 * 4)
    with pytest.raises(InputError):
        save_contact_sheet([], tmp_path / "e.png")


def test_gt_demo_writes_video_and_sheet(tmp_path):
    from gs_tracker_ros.synthetic import SceneConfig, make_scene
    from gs_tracker_ros.synthetic.demo import render_gt_demo

    scene = make_scene(SceneConfig(width=160, height=96, num_frames=10, num_layers=2, seed=1))
    times = render_gt_demo(scene, tmp_path / "d.mp4", tmp_path / "d.png", num_points=12, sheet_frames=4)
    assert times["total_s"] > 0
    cap = cv2.VideoCapture(str(tmp_path / "d.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    cap.release()
    assert cv2.imread(str(tmp_path / "d.png")) is not None


def test_tail_runs_split_at_hidden_positions_and_age_bands():
    from gs_tracker_ros.viz.overlay import _tail_runs

    v, o = float(TrackStatus.VISIBLE), float(TrackStatus.OCCLUDED)
    xy = np.array([[10.0, 20.0], [11.03, 20.5], [12.0, 21.0], [13.0, 21.5], [14.0, 22.0], [15.0, 22.5]])
    gap = np.column_stack([xy, [v, v, o, v, v, v]])
    seen = np.column_stack([xy + 100.0, [v] * 6])
    runs = _tail_runs({7: gap, 3: seen, 5: gap[:1]}, bands=4, tail_len=15)
    assert list(runs) == [7, 3]  # the order of the tails; a single position draws no tail
    # n = 6 of 15: segments 0..4 have bands [1, 0, 0, 0, 0]; segments 1 and 2 touch the hidden point
    assert runs[7][1] == [(0, 1, 1), (3, 5, 0)]
    assert runs[3][1] == [(0, 1, 1), (1, 5, 0)]
    assert np.array_equal(runs[7][0], np.round(xy * 16).astype(np.int32))
