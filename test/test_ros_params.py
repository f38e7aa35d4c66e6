"""Node parameters: generated from TrackerConfig, descriptor ranges consistent with its
validation, run-time changes validated (structural ones rejected with a reason), the shipped
config/tracker.yaml and the docs/ros.md table in sync, and the grid seeder. The node-level checks
run a TrackerNode in this process (no other process, no traffic)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from gs_tracker_ros.tracking.config import TrackerConfig
from gs_tracker_ros.core.errors import ConfigError
from gs_tracker_ros.ros import parameters as P
from gs_tracker_ros.core.geometry import grid_points
from gs_tracker_ros.core.seeding import GridSeeder

REPO = Path(__file__).resolve().parents[1]
YAML_PATH = REPO / "config" / "tracker.yaml"
DOC_PATH = REPO / "docs" / "ros.md"
YAML_NODE_KEY = "/**/gs_tracker_node"
# Values config/tracker.yaml deliberately sets to something other than the default.
YAML_OVERRIDES = {"seed_grid_size": 8}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


# ---------------------------------------------------------------------------------- specs (no ROS)
def test_tracker_parameters_are_generated_one_to_one_from_the_config():
    leaves = _flatten(dataclasses.asdict(TrackerConfig()))
    expected = {P.TRACKER_PREFIX + k: (list(v) if isinstance(v, tuple) else v)
                for k, v in leaves.items() if k not in P.NODE_OWNED_CONFIG_KEYS}
    generated = {s.name: s.default for s in P.tracker_param_specs()}
    assert generated == expected
    for spec in P.tracker_param_specs():
        assert spec.description and not spec.description.startswith("TrackerConfig."), spec.name
    # max_tracks is the node parameter, mapped onto the config
    assert P.SPECS["max_tracks"].config_key == "max_tracks"
    assert P.tracker_config_from_params({"max_tracks": 77}).max_tracks == 77


RANGES = {s.config_key: s.range for s in P.tracker_param_specs() if s.range is not None}
# keys whose upper bound is open (a cosine similarity < 1): the descriptor's range is inclusive
HIGH_OPEN = {leaf.key for leaf in P._leaf_fields(TrackerConfig) if leaf.setting.high_open}
# a search radius must stay <= its partner's (validated across the two fields): set the partner wide
PARTNER = {"relocalize.keypoints.search_px": {"relocalize.keypoints.max_search_px": 1024.0},
           "relocalize.learned.search_px": {"relocalize.learned.refind_search_px": 512.0}}
RUNTIME_KEYS = {s.config_key for s in P.tracker_param_specs() if s.runtime}


def test_declared_ranges_and_runtime_keys_are_on_numeric_fields():
    leaves = _flatten(dataclasses.asdict(TrackerConfig()))
    for key in RANGES:
        assert isinstance(leaves[key], (int, float)) and not isinstance(leaves[key], bool), key
    # the declarations the node relies on (read on every frame / shaping the pipeline)
    assert {"integration.outlier_px", "lk.fb_threshold", "schedule.stride", "hidden.enabled"} <= RUNTIME_KEYS
    assert not {k for k in RUNTIME_KEYS if k.startswith("klt.")}  # the klt section is structural
    assert "integration.intervals" not in RUNTIME_KEYS and "lk.window" in RANGES
    assert P.SPECS["tracker.integration.fusion"].choices == ("inverse_variance", "mixture")


def test_a_setting_declared_on_a_field_becomes_a_checked_parameter():
    """One declaration gives the ROS spec (doc, range, run-time flag), the range check and --set."""
    from gs_tracker_ros.core.config import check_settings, config_from_dict, setting

    @dataclasses.dataclass
    class Section:
        """Attributes:
            gain: from the docstring."""
        gain: float = setting(2.0, range=(0.0, 8.0), low_open=True, runtime=True, unit="px")
        level: int = setting(1, "one line on the field", range=(0, 3))

    leaves = {leaf.key: leaf for leaf in P._leaf_fields(Section, "s.")}
    assert leaves["s.gain"].doc == "from the docstring." and leaves["s.gain"].setting.runtime
    assert leaves["s.level"].doc == "one line on the field" and leaves["s.level"].setting.range == (0, 3)
    assert config_from_dict(Section, {"gain": "4"}).gain == 4.0
    with pytest.raises(ConfigError, match=r"config key 's.gain' = 0.0 is out of range: must be in \(0, 8\] px"):
        check_settings(Section(gain=0.0), "s.")
    with pytest.raises(ConfigError, match=r"'s.level' = 4 .* in \[0, 3\]$"):
        check_settings(Section(level=4), "s.")


@pytest.mark.parametrize("key", sorted(RANGES))
def test_descriptor_ranges_agree_with_config_validation(key):
    """Outside the descriptor range is invalid for TrackerConfig too; inside is (mostly) valid."""
    lo, hi = RANGES[key]
    default = _flatten(dataclasses.asdict(TrackerConfig()))[key]
    is_int = isinstance(default, int)
    below = lo - 1 if is_int else lo - max(1e-3, abs(lo) * 1e-3)
    with pytest.raises(ConfigError):
        TrackerConfig().replace(**{key: below})
    if math.isfinite(hi):
        above = hi + 1 if is_int else hi + max(1e-3, abs(hi) * 1e-3)
        with pytest.raises(ConfigError):
            TrackerConfig().replace(**{key: above})
        if key in HIGH_OPEN:  # the upper end is rejected by validation, with the reason
            with pytest.raises(ConfigError, match=r"must be in \[.*\)"):
                TrackerConfig().replace(**{key: hi})
        else:
            TrackerConfig().replace(**{key: hi}, **PARTNER.get(key, {}))  # the upper end is valid
    mid = (lo + hi) / 2 if math.isfinite(hi) else lo + 1.0
    if is_int:
        mid = int(mid) | 1  # odd (LK window)
    TrackerConfig().replace(**{key: mid}, **PARTNER.get(key, {}))


def test_every_numeric_node_parameter_has_a_range():
    for spec in P.NODE_PARAMS:
        if spec.type_name in ("int", "double"):
            assert spec.range is not None, spec.name


def test_check_update_rejects_structural_and_invalid_values_with_reasons():
    values = P.default_values()
    with pytest.raises(ConfigError, match=r"'method' is structural.*restart"):
        P.check_update(values, {"method": "klt"})
    with pytest.raises(ConfigError, match="structural"):
        P.check_update(values, {"tracker.integration.intervals": [1, 2]})
    with pytest.raises(ConfigError, match=r"parameter 'tracker.flow.sigma0'.*\(0, 50\]"):
        P.check_update(values, {"tracker.flow.sigma0": 0.0})
    with pytest.raises(ConfigError, match="tracker.integration.rho"):
        P.check_update(values, {"tracker.integration.rho": 1.5})
    with pytest.raises(ConfigError, match="unknown parameter"):
        P.check_update(values, {"tracker.nope": 1.0})
    cfg = P.check_update(values, {"tracker.integration.outlier_px": 8.0, "tracker.lk.fb_threshold": 3.0})
    assert cfg.integration.outlier_px == 8.0 and cfg.lk.fb_threshold == 3.0


def test_apply_runtime_config_updates_in_place():
    target = TrackerConfig()
    integration, lk = target.integration, target.lk
    new = target.replace(**{"integration.outlier_px": 8.0, "lk.fb_threshold": 2.5})
    P.apply_runtime_config(target, new, ["integration.outlier_px", "lk.fb_threshold"])
    assert target.integration is integration and target.lk is lk  # same objects the sources hold
    assert integration.outlier_px == 8.0 and lk.fb_threshold == 2.5


# ---------------------------------------------------------------------------------- files
def test_shipped_yaml_matches_the_declared_parameters():
    """Every key is a parameter of the right type; every node parameter is listed; listed values
    are the defaults unless YAML_OVERRIDES says otherwise (a stale value would silently override a
    changed default). Tracker keys not listed keep their TrackerConfig defaults."""
    data = yaml.safe_load(YAML_PATH.read_text())
    assert list(data) == [YAML_NODE_KEY]
    params = _flatten(data[YAML_NODE_KEY]["ros__parameters"])
    unknown = sorted(set(params) - set(P.SPECS))
    assert not unknown, f"{YAML_PATH.name}: unknown parameters {unknown}"
    missing = sorted(s.name for s in P.NODE_PARAMS if s.name not in params)
    assert not missing, f"{YAML_PATH.name}: node parameters missing {missing}"
    for name, value in params.items():
        spec = P.SPECS[name]
        # exact types: rclpy rejects 10 for a double parameter
        assert type(value) is type(spec.default), f"{name}: {value!r} is not a {spec.type_name}"
        assert value == YAML_OVERRIDES.get(name, spec.default), (
            f"{YAML_PATH.name}: {name} = {value!r}, but the default is now {spec.default!r}: update the file")
    P.check_node_values(params)
    P.tracker_config_from_params(params)  # and valid


def _yaml_comments(text: str) -> dict[str, str]:
    """``{dotted parameter name: its end-of-line comment}`` of the ``ros__parameters`` lines."""
    out, stack = {}, []
    for line in text.splitlines():
        body = line.split("#", 1)[0]
        if not body.strip() or ":" not in body:
            continue
        indent = len(line) - len(line.lstrip())
        stack = [(i, k) for i, k in stack if i < indent]
        key = body.strip().split(":", 1)[0].strip()
        stack.append((indent, key))
        names = [k for _, k in stack]
        if "ros__parameters" in names:
            out[".".join(names[names.index("ros__parameters") + 1:])] = line.split("#", 1)[1] if "#" in line else ""
    return out


def test_shipped_yaml_says_run_time_exactly_where_the_declaration_does():
    comments = _yaml_comments(YAML_PATH.read_text())
    listed = {name: text for name, text in comments.items() if name in P.SPECS}
    assert len(listed) > 20
    for name, text in listed.items():
        assert ("run time" in text) == P.SPECS[name].runtime, (
            f"{YAML_PATH.name}: {name} is {'' if P.SPECS[name].runtime else 'not '}run-time changeable "
            f"(its config field's declaration): fix the comment")


def test_docs_parameter_table_is_in_sync():
    text = DOC_PATH.read_text()
    table = P.markdown_table()
    assert table in text, (
        "docs/ros.md parameter table is out of date (the tracker config changed?): regenerate it with "
        "`.venv/bin/python -m gs_tracker_ros.ros.parameters --write-docs docs/ros.md`")


# ---------------------------------------------------------------------------------- seeding
def test_grid_points_cover_the_image():
    pts = grid_points(160, 120, 4)
    assert pts.shape == (16, 2)
    assert pts[:, 0].min() > 0 and pts[:, 0].max() < 159 and pts[:, 1].min() > 0 and pts[:, 1].max() < 119
    assert grid_points(160, 120, 0).shape == (0, 2)


def test_seeder_seeds_reseeds_and_respects_limits():
    s = GridSeeder(grid_size=4, reseed_when_below=0.5)
    plan = s.plan(np.zeros(0), np.zeros((0, 2)), np.zeros(0, bool), 160, 120, max_tracks=100)
    assert plan.add_xy.shape == (16, 2) and plan.remove_ids.size == 0
    ids = np.arange(16)
    s.adopt(ids)
    xy = plan.add_xy
    vis = np.ones(16, bool)
    assert s.plan(ids, xy, vis, 160, 120, 100).empty  # all visible
    vis[:9] = False  # 7 / 16 visible < 0.5
    user_id = 100  # a service query, occluded: never removed by the seeder
    plan = s.plan(np.r_[ids, user_id], np.r_[xy, [[5.0, 5.0]]], np.r_[vis, False], 160, 120, 100)
    assert sorted(plan.remove_ids.tolist()) == list(range(9))
    assert plan.add_xy.shape[0] == 9  # the cells that lost their point
    # budget: never beyond max_tracks
    plan = s.plan(np.r_[ids, user_id], np.r_[xy, [[5.0, 5.0]]], np.r_[vis, False], 160, 120, max_tracks=10)
    assert 17 - plan.remove_ids.size + plan.add_xy.shape[0] <= 10
    assert GridSeeder(0).plan(ids, xy, vis, 160, 120, 100).empty  # off


# ---------------------------------------------------------------------------------- node (in-process)
@pytest.fixture
def make_node(ros_context):
    from gs_tracker_ros.ros.node import TrackerNode

    nodes = []

    def make(**overrides):
        from rclpy.parameter import Parameter

        node = TrackerNode(context=ros_context,
                           parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
        nodes.append(node)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            node.destroy_node()


def _set(node, name, value):
    from rclpy.parameter import Parameter

    return node.set_parameters([Parameter(name, value=value)])[0]


def test_runtime_parameters_reach_the_running_tracker(make_node):
    node = make_node()
    tracker = node._tracker
    assert tracker.config is node._config
    res = _set(node, "tracker.integration.outlier_px", 8.0)
    assert res.successful, res.reason
    assert tracker.config.integration.outlier_px == 8.0
    assert _set(node, "tracker.lk.fb_threshold", 4.0).successful
    assert tracker.sources[0].config.fb_threshold == 4.0  # the LK source reads the same object
    assert _set(node, "reseed_when_below", 0.25).successful and node._seeder.reseed_when_below == 0.25
    assert _set(node, "seed_grid_size", 6).successful and node._seeder.grid_size == 6
    assert _set(node, "tracker.schedule.frame_budget_ms", 25.0).successful
    assert tracker.schedule.config.frame_budget_ms == 25.0  # the schedule reads the same object
    assert not _set(node, "tracker.schedule.stride", 0).successful
    assert node._tracker is tracker  # not rebuilt: tracks survive


def test_invalid_and_structural_changes_are_rejected_with_a_reason(make_node):
    node = make_node()
    before = node._config.integration.rho
    res = _set(node, "tracker.integration.rho", 1.5)  # descriptor range
    assert not res.successful and "tracker.integration.rho" in res.reason
    res = _set(node, "tracker.lk.sigma0", 0.0)  # in the range, rejected by TrackerConfig validation
    assert not res.successful and "tracker.lk.sigma0" in res.reason and "(0, 50]" in res.reason
    res = _set(node, "method", "klt")  # start-up only: a read-only descriptor, refused by rclpy
    assert not res.successful and res.reason == "Trying to set a read-only parameter: method."
    res = _set(node, "image_qos", "reliable")
    assert not res.successful and "read-only" in res.reason
    res = _set(node, "tracker.integration.outlier_px", 8)  # int for a double
    assert not res.successful and "type" in res.reason.lower()
    assert node._config.integration.rho == before
    assert node.get_parameter("method").value == "probfuse"


def test_descriptors_carry_descriptions_and_ranges(make_node):
    node = make_node()
    d = node.describe_parameter("tracker.integration.rho")
    assert "correlation" in d.description
    assert (d.floating_point_range[0].from_value, d.floating_point_range[0].to_value) == (0.0, 1.0)
    d = node.describe_parameter("max_tracks")
    assert (d.integer_range[0].from_value, d.integer_range[0].to_value) == (1, 100_000)
    d = node.describe_parameter("method")
    assert "structural" in d.description and "probfuse" in d.additional_constraints
    assert d.read_only and "restart the node with -p method:=VALUE" in d.additional_constraints
    assert not node.describe_parameter("max_tracks").read_only
    d = node.describe_parameter("tracker.engine.backend")
    assert d.read_only and d.additional_constraints.startswith("one of: torch, onnxruntime, tensorrt")
    # every start-up-only parameter is read-only, every run-time one is not
    from gs_tracker_ros.ros.parameters import SPECS

    assert all(node.describe_parameter(n).read_only == (not spec.runtime) for n, spec in SPECS.items())


def test_startup_overrides_apply_and_bad_ones_fail_clearly(make_node):
    node = make_node(**{"method": "dis-chain", "tracker.flow.fb_threshold": 3.0, "max_tracks": 50})
    assert node._tracker.name == "dis-chain" and node._tracker.source.config.fb_threshold == 3.0
    assert node._config.max_tracks == 50
    with pytest.raises(ConfigError, match=r"tracker\.lk\.window.*odd"):
        make_node(**{"tracker.lk.window": 22})
    with pytest.raises(ConfigError, match="image_qos"):
        make_node(image_qos="fast")
    with pytest.raises(ConfigError, match=r"'tracker.engine.backend' = 'cuda' is not one of: torch, onnxruntime"):
        make_node(**{"tracker.engine.backend": "cuda"})
    with pytest.raises(ConfigError, match=r"tracker\.integration\.rho"):
        make_node(**{"tracker.integration.rho": 2.0})


def test_invalid_startup_parameter_exits_with_a_clear_message(ros_env, tmp_path):
    import subprocess
    import sys

    pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")
    for args, needle in [
        (["-p", "tracker.integration.rho:=3.0"], "tracker.integration.rho"),
        (["-p", "tracker.lk.window:=22"], "tracker.lk.window"),
        (["-p", "method:=nope"], "method"),
    ]:
        out = subprocess.run([sys.executable, "-m", "gs_tracker_ros.ros.run_node", "--ros-args", *args],
                             env=ros_env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
        text = out.stdout + out.stderr
        assert out.returncode == 2, text
        assert "cannot start" in text and needle in text and "Traceback" not in text, text


def test_typos_in_startup_parameters_are_refused_with_the_closest_name(make_node):
    with pytest.raises(ConfigError) as err:
        make_node(**{"no_such": 1, "tracker.outler_px": 3.0, "tracker.integration.outlier_px": 7.0})
    assert str(err.value) == (
        "unknown parameters 'no_such', 'tracker.outler_px' (did you mean 'tracker.integration.outlier_px'?); "
        "`ros2 param list` or docs/ros.md lists the node's parameters")
    assert make_node(**{"tracker.integration.outlier_px": 7.0})._config.integration.outlier_px == 7.0


def test_parameter_sources_wildcard_sections_and_node_patterns(tmp_path):
    """Only a name that reaches the node solely through a params-file section for all nodes is
    not refused (startup_checks)."""
    from gs_tracker_ros.ros.startup_checks import (command_line_parameters, node_pattern_matches,
                                                   wildcard_only_parameters)

    fq = "/robot1/gs_tracker_node"
    for pattern, ok in [("/**", True), ("/**/gs_tracker_node", True), ("/robot1/gs_tracker_node", True),
                        ("robot1/gs_tracker_node", True), ("/*/gs_tracker_node", True), ("/robot1/*", True),
                        ("/*", False), ("/gs_tracker_node", False), ("/robot2/**", False), ("/**/other", False)]:
        assert node_pattern_matches(pattern, fq) == ok, pattern
    files = tmp_path / "a.yaml", tmp_path / "b.yaml"
    files[0].write_text("/**:\n  ros__parameters:\n    robot_radius: 0.3\n    method: klt\n"
                        "/other_node:\n  ros__parameters:\n    speed: 1.0\n")
    files[1].write_text("robot1:\n  gs_tracker_node:\n    ros__parameters:\n      tracker: {outler_px: 3.0}\n"
                        "/robot1/*:\n  ros__parameters:\n    foo: 1\n")
    argv = ["exe", "--ros-args", "--params-file", str(files[0]), "--params-file", str(files[1]),
            "-p", "method:=klt", "-p", "gs_tracker_node:bar:=2"]
    assert command_line_parameters(argv) == {"method", "bar"}
    assert wildcard_only_parameters(argv, fq) == {"robot_radius", "foo"}


def test_max_tracks_below_the_live_count_is_refused_with_the_reason(make_node):
    import time

    from gs_tracker_ros.ros.image_conversion import numpy_to_image
    from ros_testing import MovingTexture
    from gs_tracker_ros.srv import AddQueries

    node = make_node()
    node._on_image(numpy_to_image(MovingTexture(64, 48, num_frames=2).frame(0), "rgb8"))
    deadline = time.monotonic() + 20
    while node.stats.frames_processed == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    req = AddQueries.Request()
    req.x, req.y = [10.0, 20.0, 30.0, 40.0, 50.0], [10.0, 20.0, 30.0, 30.0, 20.0]
    resp = node._on_add_queries(req, AddQueries.Response())
    assert resp.success, resp.message
    res = _set(node, "max_tracks", 3)
    assert not res.successful
    assert res.reason.startswith("max_tracks=3 is below the 5 live track(s): remove tracks first"), res.reason
    assert node.get_parameter("max_tracks").value == 1024 and len(node._live_ids) == 5
    assert _set(node, "max_tracks", 5).successful and node._config.max_tracks == 5


def test_stale_thresholds_are_checked_together(make_node):
    node = make_node()
    res = _set(node, "stale_error_after_s", 0.5)
    assert not res.successful and "'stale_error_after_s' = 0.5 must be >= 'stale_after_s' = 1.0" in res.reason
    assert _set(node, "stale_after_s", 0.2).successful and _set(node, "stale_error_after_s", 0.5).successful


def test_stale_input_turns_the_status_warn_then_error():
    import re

    from gs_tracker_ros.ros.diagnostics import ERROR, OK, WARN, NodeStats, status_level

    stats = NodeStats()
    assert status_level(stats.snapshot(), 1.0, 5.0) == (WARN, "no image received yet")
    stats.received()
    stats.processed(0.01, 3, 3)
    stats._last_receipt -= 0.5
    assert status_level(stats.snapshot(), 1.0, 5.0)[0] == OK
    stats._last_receipt -= 1.0
    level, text = status_level(stats.snapshot(), 1.0, 5.0)
    assert level == WARN and re.match(r"no image for (1\.[5-9]|2\.\d) s: the camera", text), text
    stats._last_receipt -= 4.0
    level, text = status_level(stats.snapshot(), 1.0, 5.0)
    assert level == ERROR and re.match(r"no image for (5\.[5-9]|6\.\d) s: the camera", text), text


def test_frames_lost_by_dds_and_incompatible_publishers_turn_the_status_warn():
    from gs_tracker_ros.ros.diagnostics import OK, WARN, NodeStats, status_level

    stats = NodeStats()
    for _ in range(96):
        stats.received()
        stats.processed(0.01, 0, 0)
    stats.lost(4)  # 4 of 100 in the period: at most 5 %, no warning
    assert status_level(stats.snapshot(end_period=True))[0] == OK
    for _ in range(90):
        stats.received()
        stats.processed(0.01, 0, 0)
    stats.lost(10)  # 10 of 100: more than 5 %
    level, text = status_level(stats.snapshot(end_period=True))
    assert level == WARN and text.startswith("10 of 100 image(s) (10 %) lost before reaching the node: likely "
                                             "large images over UDP without shared memory"), text
    assert "fix: a reliable camera publisher" in text and "docs/ros.md#qos" in text
    assert status_level(stats.snapshot(end_period=True))[0] == OK  # the next period, nothing lost
    stats.lost(30)  # everything lost: said so, not "no image"
    assert "30 of 30 image(s) (100 %) lost" in status_level(stats.snapshot(end_period=True))[1]
    stats.incompatible_qos("a publisher of '/image' offers incompatible QoS (reliability): ...")
    assert status_level(stats.snapshot(end_period=True)) == (
        WARN, "a publisher of '/image' offers incompatible QoS (reliability): ...")
    assert status_level(stats.snapshot(end_period=True))[0] == WARN  # still no image since: still the reason
    stats.received()
    stats.processed(0.01, 0, 0)
    assert status_level(stats.snapshot(end_period=True))[0] == OK
    snap = stats.snapshot()
    assert (snap["frames_lost"], snap["incompatible_qos_events"]) == (44, 1)


@pytest.mark.parametrize("cli_args, expected", [
    ([], "/camera_info"),
    (["-r", "image:=/camera/image_raw"], "/camera/camera_info"),  # image_transport's pairing
    (["-r", "__ns:=/robot1", "-r", "image:=/robot1/front/image_rect"], "/robot1/front/camera_info"),
    (["-r", "__ns:=/robot1", "-r", "image:=cam/image_raw"], "/robot1/cam/camera_info"),
    (["-r", "image:=/camera/image_raw", "-r", "camera_info:=/calib/info"], "/calib/info"),  # explicit wins
    (["-r", "image:=/camera/image_raw", "-r", "camera_info:=camera_info"], "/camera/camera_info"),  # launch default
])
def test_camera_info_is_the_sibling_of_the_image_topic(ros_context, cli_args, expected):
    from gs_tracker_ros.ros.node import TrackerNode

    node = TrackerNode(context=ros_context, cli_args=["--ros-args", *cli_args], use_global_arguments=False)
    try:
        assert node.info_sub.topic_name == expected, (node.image_sub.topic_name, node.info_sub.topic_name)
    finally:
        node.destroy_node()


def test_qos_overrides_are_ros_parameters_on_top_of_image_qos(make_node):
    """ROS's own QoS overrides (QoSOverridingOptions) refine the image_qos profile per topic."""
    from rclpy.qos import HistoryPolicy, ReliabilityPolicy, qos_profile_sensor_data

    node = make_node(**{"image_qos": "sensor_data", "qos_overrides./image.subscription.reliability": "reliable",
                        "qos_overrides./image.subscription.depth": 2,
                        "qos_overrides./tracks.publisher.depth": 50})
    qos = node.image_sub.qos_profile
    assert (qos.reliability, qos.depth, qos.history) == (ReliabilityPolicy.RELIABLE, 2, HistoryPolicy.KEEP_LAST)
    assert node.tracks_pub.qos_profile.depth == 50
    assert node.info_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT  # its own topic, not overridden
    assert qos_profile_sensor_data.depth == 5  # the shared rclpy profile was not edited in place
    d = node.describe_parameter("qos_overrides./image.subscription.reliability")
    assert d.read_only
    plain = make_node()  # image_qos auto, no publisher yet: best effort (matches any)
    assert plain.image_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
    assert plain.image_sub.describe() == "auto: best effort, keep last 5"
    # auto chooses the reliability: an override of it is refused with the way to fix it
    with pytest.raises(ConfigError, match=r"'qos_overrides./image.subscription.reliability' \(image_qos auto "
                                          r"chooses the reliability from the publishers: set image_qos"):
        make_node(**{"qos_overrides./image.subscription.reliability": "reliable"})
    assert make_node(**{"qos_overrides./image.subscription.depth": 1}).image_sub.qos_profile.depth == 1


def test_auto_image_qos_follows_the_publishers():
    from gs_tracker_ros.ros.qos import auto_choice

    assert auto_choice([], "/cam/image_raw") == (
        "sensor_data", "no publisher of '/cam/image_raw' yet: best effort matches any; re-checked as they come")
    assert auto_choice([True], "/c") == ("reliable", "the publisher of '/c' is reliable")
    assert auto_choice([True, True], "/c") == ("reliable", "all 2 publishers of '/c' are reliable")
    assert auto_choice([False], "/c") == ("sensor_data", "the publisher of '/c' is best effort")
    assert auto_choice([True, False, True], "/c") == ("sensor_data", "1 of the 3 publishers of '/c' are best effort")


def test_one_qos_vocabulary_for_node_player_and_replay(capsys):
    from gs_tracker_ros.cli.main import build_parser
    from gs_tracker_ros.ros.parameters import SPECS
    from gs_tracker_ros.ros.qos import QOS_PROFILES, qos_profile

    # the node takes the player's names plus auto (a subscriber's choice: a publisher has none)
    assert SPECS["image_qos"].choices == ("auto", *QOS_PROFILES)
    parser = build_parser()
    for name in QOS_PROFILES:  # the node's fixed image_qos names, accepted by the bag tools
        assert parser.parse_args(["bag", "play", "b", "--qos", name]).qos == name
        assert parser.parse_args(["bag", "replay-eval", "b", "--image-qos", name]).image_qos == name
        assert qos_profile(name) is not qos_profile(name)  # fresh copies (overrides edit them)
    with pytest.raises(SystemExit):
        parser.parse_args(["bag", "play", "b", "--qos", "sensor-data"])  # the old second spelling
    with pytest.raises(Exception, match="choose sensor_data, reliable, system_default"):
        qos_profile("sensor-data")


def test_runtime_parameters_reach_a_profile_tracker(make_node):
    """A profile (here probfuse-fast) builds its tracker from a copy of the node's config with the
    profile's keys set; run-time changes must reach that copy too, not only the node's config."""
    node = make_node(method="probfuse-fast")
    tracker = node._tracker
    assert tracker.config.schedule.stride == 2  # the profile's value, not the parameter's default 1
    assert _set(node, "tracker.integration.outlier_px", 7.0).successful
    assert tracker.config.integration.outlier_px == 7.0
    assert _set(node, "tracker.lk.fb_threshold", 5.0).successful
    assert tracker.sources[0].config.fb_threshold == 5.0
    assert _set(node, "tracker.schedule.frame_budget_ms", 14.0).successful
    assert tracker.schedule.config.frame_budget_ms == 14.0
    assert node._tracker is tracker


def test_runtime_changes_on_a_baseline_node_do_not_touch_its_own_config(make_node):
    node = make_node(method="klt")  # its .config is an LKConfig (the node's klt section), not a TrackerConfig
    assert _set(node, "tracker.integration.outlier_px", 7.0).successful  # unused by klt: accepted
    assert node._config.integration.outlier_px == 7.0 and node._tracker.config is node._config.klt
