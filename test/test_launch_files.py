"""launch/*.launch.py as `ros2 launch` runs them, without launch / launch_ros (not installable from
PyPI here): each file is evaluated against test/launch_stand_in.py, which yields the processes it
would start with the command lines launch_ros builds. The tests check that behaviour, not the
files' syntax: the executable the ament index resolves exists, the params file it passes is the
installed one, remappings name the node's topics, every launch argument is used, replay.launch.py
records the node's tracks and plays the bag; then the node is started with exactly the command
tracker.launch.py gives it and must track (tracks stamped like the images) and exit 0 on one
SIGINT within 2 s.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from launch_stand_in import Context, evaluate

REPO = Path(__file__).resolve().parents[1]
LAUNCH_DIR = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))
PACKAGE = "gs_tracker_ros"
TRACKER_ARGS = {"namespace": "/ns", "image_topic": "/cam/image_raw"}
REPLAY_ARGS = {"bag": "/data/run1", "output": "/data/run1_tracks", "rate": "0.5"}


def _ros_args(cmd: list[str]) -> list[str]:
    return cmd[cmd.index("--ros-args") + 1:]


def _remaps(cmd: list[str]) -> dict[str, str]:
    args = _ros_args(cmd)
    pairs = [args[i + 1] for i, a in enumerate(args) if a == "-r" and not args[i + 1].startswith("__")]
    return dict(p.split(":=", 1) for p in pairs)


def _params_files(cmd: list[str]) -> list[str]:
    args = _ros_args(cmd)
    return [args[i + 1] for i, a in enumerate(args) if a == "--params-file"]


def effective_parameters(cmd: list[str], fq_name: str) -> dict:
    """The parameters rcl gives node ``fq_name`` from the params files of a command line: each
    file's sections that apply to the node (``/**``, ``/**/gs_tracker_node``, its full name, ...),
    nested keys as dotted names, a later file or section winning."""
    import yaml

    from gs_tracker_ros.ros.startup_checks import _flat_names, _sections, node_pattern_matches

    def leaf(params: dict, dotted: str):
        for part in dotted.split("."):
            params = params[part]
        return params

    values: dict = {}
    for path in _params_files(cmd):
        for pattern, params in _sections(yaml.safe_load(Path(path).read_text())):
            if node_pattern_matches(pattern, fq_name):
                values.update({name: leaf(params, name) for name in _flat_names(params)})
    return values


def _node_topics() -> set[str]:
    from gs_tracker_ros.ros import node as node_module

    return {t.lstrip("/") for t in (*node_module.SUBSCRIBED_TOPICS, *node_module.PUBLISHED_TOPICS)}


def _launch(name: str, args: dict[str, str], ros_env: dict[str, str]) -> Context:
    return evaluate(LAUNCH_DIR / name, args, ament_prefix_path=ros_env["AMENT_PREFIX_PATH"])


def _installed_share(ros_env: dict[str, str]) -> Path:
    return ament_executable(ros_env, PACKAGE, "x").parents[2] / "share" / PACKAGE


# ------------------------------------------------------------------------------------- what launch does
def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"tracker.launch.py", "replay.launch.py"}


@pytest.mark.ros
@pytest.mark.parametrize("name, args", [("tracker.launch.py", TRACKER_ARGS), ("replay.launch.py", REPLAY_ARGS)])
def test_launch_starts_the_ament_executable_with_the_installed_params(ros_env, name, args):
    import os

    ctx = _launch(name, args, ros_env)
    nodes = ctx.nodes()
    assert len(nodes) == 1, ctx.started
    cmd = nodes[0].cmd
    assert nodes[0].lifecycle, "the node is a launch_ros LifecycleNode (launch can drive its transitions)"
    exe = ament_executable(ros_env, PACKAGE, "gs_tracker_node")
    assert cmd[0] == str(exe) and os.access(exe, os.X_OK), (cmd[0], exe)
    assert nodes[0].node_name == "gs_tracker_node"  # the params file's node key matches
    files = _params_files(cmd)
    installed = _installed_share(ros_env) / "config" / "tracker.yaml"
    assert files and files[0] == str(installed), files
    assert installed.read_text() == (REPO / "config" / "tracker.yaml").read_text(), (
        f"{installed} is older than config/tracker.yaml: run `make setup`")
    assert all(Path(f).is_file() for f in files), files
    topics = _node_topics()
    remaps = _remaps(cmd)
    assert set(remaps) <= topics, (remaps, topics)
    assert remaps["image"] == args.get("image_topic", "/camera/image_raw")
    if name == "tracker.launch.py":  # not remapped by default: the node pairs it with the image topic
        assert remaps["camera_info"] == "camera_info"
        other = _launch(name, {**args, "camera_info_topic": "/cam/info"}, ros_env).nodes()[0].cmd
        assert _remaps(other)["camera_info"] == "/cam/info"
    unused = set(ctx.declared) - ctx.used
    assert not unused, f"{name}: launch arguments declared but never used: {sorted(unused)}"
    for arg in ctx.declared.values():
        assert arg.description, f"{name}: argument '{arg.name}' has no description"


@pytest.mark.ros
def test_an_including_launch_file_starts_the_same_node(ros_env, tmp_path):
    """The evaluation follows IncludeLaunchDescription (how a robot's bringup would use ours)."""
    wrapper = tmp_path / "bringup.launch.py"
    wrapper.write_text(
        "from launch import LaunchDescription\n"
        "from launch.actions import IncludeLaunchDescription\n"
        "from launch.launch_description_sources import PythonLaunchDescriptionSource\n"
        "from launch.substitutions import PathJoinSubstitution\n"
        "from launch_ros.substitutions import FindPackageShare\n\n\n"
        "def generate_launch_description():\n"
        "    path = PathJoinSubstitution([FindPackageShare('gs_tracker_ros'), 'launch', 'tracker.launch.py'])\n"
        "    return LaunchDescription([IncludeLaunchDescription(PythonLaunchDescriptionSource(path),\n"
        "        launch_arguments={'image_topic': '/cam/image_raw', 'namespace': '/ns'}.items())])\n")
    included = evaluate(wrapper, {}, ament_prefix_path=ros_env["AMENT_PREFIX_PATH"])
    direct = _launch("tracker.launch.py", TRACKER_ARGS, ros_env)
    def same(cmd):  # parameter dicts become temporary files: compare their contents
        return [Path(a).read_text() if "launch_stand_in_" in a else a for a in cmd]

    assert [same(n.cmd) for n in included.nodes()] == [same(n.cmd) for n in direct.nodes()]
    assert included.files[1] == str(_installed_share(ros_env) / "launch" / "tracker.launch.py")


@pytest.mark.ros
def test_replay_launch_records_the_tracks_and_plays_the_bag(ros_env):
    ctx = _launch("replay.launch.py", {**REPLAY_ARGS, "namespace": "/replay"}, ros_env)
    procs = {tuple(p.cmd[:3]): p for p in ctx.processes()}
    assert set(procs) == {("ros2", "bag", "record"), ("ros2", "bag", "play")}, ctx.started
    record, play = procs[("ros2", "bag", "record")], procs[("ros2", "bag", "play")]
    assert "/replay/tracks" in record.cmd and "/diagnostics" in record.cmd, record.cmd
    assert record.cmd[record.cmd.index("--output") + 1] == "/data/run1_tracks"
    assert play.cmd[3] == "/data/run1" and play.cmd[play.cmd.index("--rate") + 1] == "0.5", play.cmd
    assert play.delay_s >= 1.0 > record.delay_s  # the node and the recorder are up first
    assert ctx.nodes()[0].namespace == "/replay"


@pytest.mark.ros
def test_replay_launch_fails_when_play_or_record_fails(ros_env):
    """ros2 launch used to exit 0 when both ros2 bag processes died."""
    from launch_stand_in import EmitEvent, Shutdown, on_exit_actions

    ctx = _launch("replay.launch.py", REPLAY_ARGS, ros_env)
    handlers = {h.target_action.cmd[2]: h for h in ctx.handlers}  # "play" / "record"
    assert set(handlers) == {"play", "record"}
    done = on_exit_actions(handlers["play"], 0)
    assert len(done) == 1 and isinstance(done[0], EmitEvent) and isinstance(done[0].event, Shutdown)
    with pytest.raises(RuntimeError, match=r"ros2 bag play failed \(exit code 1\)"):
        on_exit_actions(handlers["play"], 1)
    with pytest.raises(RuntimeError, match=r"ros2 bag record stopped \(exit code 2\) before the replay ended"):
        on_exit_actions(handlers["record"], 2)
    assert on_exit_actions(handlers["record"], 0, shutting_down=True) == []  # the normal end


@pytest.mark.ros
def test_replay_node_takes_images_with_the_qos_ros2_bag_play_offers(ros_env):
    for args, qos in [(REPLAY_ARGS, "reliable"), ({**REPLAY_ARGS, "image_qos": "sensor_data"}, "sensor_data"),
                      ({**REPLAY_ARGS, "image_qos": "system_default"}, "system_default")]:
        cmd = _launch("replay.launch.py", args, ros_env).nodes()[0].cmd
        values = effective_parameters(cmd, "/gs_tracker_node")
        assert values["image_qos"] == qos and values["autostart"] is True, values
        assert values["method"] == "probfuse" and values["image_transport"] == "raw"  # the params file's
    cmd = _launch("replay.launch.py", {**REPLAY_ARGS, "method": "klt", "image_transport": "compressed"},
                  ros_env).nodes()[0].cmd
    values = effective_parameters(cmd, "/gs_tracker_node")
    assert (values["method"], values["image_transport"]) == ("klt", "compressed"), values
    with pytest.raises(ValueError, match="image_qos"):
        _launch("replay.launch.py", {**REPLAY_ARGS, "image_qos": "fast"}, ros_env)


@pytest.mark.ros
def test_tracker_launch_arguments_set_the_node_parameters(ros_env, tmp_path):
    """Issue 27: `ros2 launch gs_tracker_ros tracker.launch.py image_transport:=compressed` ran on
    raw images (undeclared arguments are ignored by launch). The arguments given set the node's
    parameters over the params file; those not given leave the params file's values alone."""
    args = {**TRACKER_ARGS, "image_transport": "compressed", "image_qos": "reliable", "method": "probfuse-fast"}
    ctx = _launch("tracker.launch.py", args, ros_env)
    values = effective_parameters(ctx.nodes()[0].cmd, "/ns/gs_tracker_node")
    assert (values["image_transport"], values["image_qos"], values["method"]) == \
        ("compressed", "reliable", "probfuse-fast"), values
    assert values["autostart"] is True and values["seed_grid_size"] == 8  # from config/tracker.yaml
    # nothing given: the shipped params file decides
    values = effective_parameters(_launch("tracker.launch.py", TRACKER_ARGS, ros_env).nodes()[0].cmd,
                                  "/ns/gs_tracker_node")
    assert (values["image_transport"], values["image_qos"], values["method"], values["autostart"]) == \
        ("raw", "auto", "probfuse", True), values
    # a params file of the user's is not overridden by an argument's default
    mine = tmp_path / "mine.yaml"
    mine.write_text("/**/gs_tracker_node:\n  ros__parameters:\n    method: klt\n    image_qos: sensor_data\n"
                    "    autostart: false\n")
    values = effective_parameters(_launch("tracker.launch.py", {**TRACKER_ARGS, "params_file": str(mine)},
                                          ros_env).nodes()[0].cmd, "/ns/gs_tracker_node")
    assert (values["method"], values["image_qos"], values["autostart"]) == ("klt", "sensor_data", False), values
    values = effective_parameters(_launch("tracker.launch.py", {**TRACKER_ARGS, "params_file": str(mine),
                                                                "autostart": "true"}, ros_env).nodes()[0].cmd,
                                  "/ns/gs_tracker_node")
    assert values["autostart"] is True, values
    for name, bad in [("image_qos", "fast"), ("image_transport", "theora"), ("autostart", "yes")]:
        with pytest.raises(ValueError, match=name):
            _launch("tracker.launch.py", {**TRACKER_ARGS, name: bad}, ros_env)
    # every node parameter a user changes at launch has an argument in both files
    for name, wanted in [("tracker.launch.py", {"image_topic", "image_transport", "image_qos", "method",
                                                "params_file", "namespace", "autostart"}),
                         ("replay.launch.py", {"image_topic", "image_transport", "image_qos", "method",
                                               "params_file", "namespace"})]:
        declared = set(_launch(name, TRACKER_ARGS if name == "tracker.launch.py" else REPLAY_ARGS,
                               ros_env).declared)
        assert wanted <= declared, (name, sorted(wanted - declared))


def test_docs_show_the_launch_arguments_as_generated():
    """docs/ros.md's `--show-args` blocks are generated from the launch files
    (python test/launch_stand_in.py --write-docs docs/ros.md), never typed."""
    import shutil
    import tempfile

    from launch_stand_in import write_docs

    doc = REPO / "docs" / "ros.md"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "ros.md"
        shutil.copy(doc, copy)
        names = write_docs(copy)
        assert sorted(names) == ["launch/replay.launch.py", "launch/tracker.launch.py"], names
        assert copy.read_text() == doc.read_text(), (
            "docs/ros.md's launch arguments are out of date: python test/launch_stand_in.py --write-docs docs/ros.md")


# ------------------------------------------------------------------------------------- run it
def ament_executable(env: dict[str, str], package: str, executable: str) -> Path:
    """The path `ros2 run PACKAGE EXECUTABLE` and launch_ros start: <prefix>/lib/<package>/<executable>,
    with <prefix> the package's prefix in the ament index of ``env``'s AMENT_PREFIX_PATH."""
    import os

    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    old = os.environ.get("AMENT_PREFIX_PATH")
    os.environ["AMENT_PREFIX_PATH"] = env.get("AMENT_PREFIX_PATH", "")
    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        pytest.fail(f"package {package} not in the ament index of AMENT_PREFIX_PATH={env.get('AMENT_PREFIX_PATH')}")
    finally:
        if old is None:
            os.environ.pop("AMENT_PREFIX_PATH", None)
        else:
            os.environ["AMENT_PREFIX_PATH"] = old
    return Path(prefix) / "lib" / package / executable


@pytest.mark.ros
def test_ros2_run_finds_and_starts_the_node_from_the_venv(ros_env, tmp_path):
    """`ros2 run gs_tracker_ros gs_tracker_node` used to fail from the venv: "libexec directory
    '.venv/lib/gs_tracker_ros' does not exist". ros2cli is not installable here, so this does what
    it does: ask the ament index for the package prefix and run lib/<package>/<executable>."""
    import os
    import signal
    import subprocess

    exe = ament_executable(ros_env, PACKAGE, "gs_tracker_node")
    assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} missing or not executable: run `make setup`"
    log = tmp_path / "node.log"
    with open(log, "wb") as f:
        proc = subprocess.Popen([str(exe), "--ros-args", "-r", "__ns:=/ros2run"], env=ros_env, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while "tracking with method" not in log.read_text() and proc.poll() is None \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "tracking with method" in log.read_text(), log.read_text()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
    assert rc == 0, log.read_text()


@pytest.mark.ros
@pytest.mark.slow
def test_node_runs_with_the_tracker_launch_arguments(ros_env, ros_context, tmp_path):
    from rcl_interfaces.srv import GetParameters

    from gs_tracker_ros.core.geometry import grid_points
    from ros_testing import MovingTexture, NodeProcess, TrackerClient, tracks_arrays

    cmd = _launch("tracker.launch.py", TRACKER_ARGS, ros_env).nodes()[0].cmd
    proc = NodeProcess(cmd, ros_env, tmp_path / "node.log", cwd=tmp_path)  # not the checkout: the installed files
    cli = None
    try:
        cli = TrackerClient(ros_context, "/cam/image_raw", "/ns/tracks", "/ns/gs_tracker_node")
        assert cli.wait_for_subscriber(timeout_s=20.0), proc.log_text()
        # the node's graph: the remapped subscription and the namespaced publications
        deadline = time.monotonic() + 15.0
        want_pub = {"/ns/tracks", "/ns/tracks_image", "/diagnostics"}
        want_sub = {"/cam/image_raw", "/cam/camera_info"}  # camera_info: the image topic's sibling
        pubs: set[str] = set()
        subs: set[str] = set()
        while time.monotonic() < deadline:
            try:
                pubs = {n for n, _ in cli.node.get_publisher_names_and_types_by_node("gs_tracker_node", "/ns")}
                subs = {n for n, _ in cli.node.get_subscriber_names_and_types_by_node("gs_tracker_node", "/ns")}
            except RuntimeError:  # rclpy's NodeNameNonExistentError: not discovered yet
                pass
            if want_pub <= pubs and want_sub <= subs:
                break
            time.sleep(0.2)
        assert want_pub <= pubs and want_sub <= subs, (pubs, subs)
        # the params file applied: it turns grid seeding on (the default is off)
        pclient = cli.node.create_client(GetParameters, "/ns/gs_tracker_node/get_parameters")
        assert pclient.wait_for_service(timeout_sec=15.0)
        req = GetParameters.Request(names=["seed_grid_size", "method", "image_qos", "image_transport"])
        fut = pclient.call_async(req)
        assert cli.wait_for(lambda: fut.done(), 15.0), "get_parameters timed out"
        values = [v.integer_value if v.type == 2 else v.string_value for v in fut.result().values]
        assert values == [8, "probfuse", "auto", "raw"], values

        tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=9, seed=21)
        seeds = grid_points(160, 120, 8, margin=0.5 / 8)  # the seeder: one point per grid cell
        first_ids = None
        for t in range(tex.num_frames):
            stamp = (50 + t, 0)
            m = cli.send_and_wait(cli.image_msg(tex.frame(t), stamp), timeout_s=20.0 if t == 0 else 15.0)
            assert m is not None, f"no tracks on /ns/tracks for frame {t}\n{proc.log_text()[-3000:]}"
            assert (m.header.stamp.sec, m.header.stamp.nanosec) == stamp
            ids, xy, _var, vis = tracks_arrays(m)
            if t == 0:
                assert ids.size == 0  # seeds are placed on frame 0, reported from frame 1 on
                continue
            if first_ids is None:
                first_ids = ids
            assert ids.tolist() == first_ids.tolist() and ids.size == 64
            err = np.linalg.norm(xy - tex.truth(seeds, 0, t), axis=1)
            assert vis.all() and err.max() < 1.0, (t, err.max())
        # the camera's info on the image topic's sibling reaches the node
        from sensor_msgs.msg import CameraInfo

        info_pub = cli.node.create_publisher(CameraInfo, "/cam/camera_info", 10)
        deadline = time.monotonic() + 15.0
        d = {}
        while time.monotonic() < deadline and d.get("camera_info") != "160x120":
            info_pub.publish(CameraInfo(width=160, height=120))
            d = cli.latest_diagnostics(fresh=True, timeout_s=5.0) or {}
        assert d.get("camera_info") == "160x120", d
        # one SIGINT (Ctrl-C under launch) ends it cleanly and quickly
        t0 = time.monotonic()
        rc = proc.stop(timeout_s=10.0)
        stop_s = time.monotonic() - t0
        assert rc == 0 and "Traceback" not in proc.log_text(), proc.log_text()[-3000:]
        assert stop_s < 2.0, f"the node took {stop_s:.2f} s to exit after SIGINT"
    finally:
        if cli is not None:
            cli.close()
        proc.stop()
