"""launch/*.launch.py without launch / launch_ros (not installable from PyPI here).

Each launch file is parsed (never imported) and checked: the executables its Node actions name are
console scripts in setup.py (whose targets import), params files it names exist in config/,
remapping sources are topics the node really uses, every launch argument is declared and used,
and external processes are ros2 bag play / record of the node's tracks. Then the node is started
with exactly the arguments tracker.launch.py would give it (namespace, params file, remapping)
and must track: images sent on the remapped image topic give tracks on <namespace>/tracks.
"""

from __future__ import annotations

import ast
import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LAUNCH_DIR = REPO / "launch"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))
PACKAGE = "gs_tracker_ros"
EXTERNAL_COMMANDS = {("ros2", "bag", "play"), ("ros2", "bag", "record")}


# ------------------------------------------------------------------------------------- AST reading
@dataclass
class Arg:
    name: str  # a LaunchConfiguration("name")


@dataclass
class Share:
    package: str
    relpath: str  # os.path.join(get_package_share_directory(package), *parts)


@dataclass
class LaunchInfo:
    path: Path
    declared: dict[str, Any] = field(default_factory=dict)  # name -> default (resolved) or None
    configs: list[str] = field(default_factory=list)  # LaunchConfiguration names referenced
    unused_vars: list[str] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    processes: list[list[Any]] = field(default_factory=list)


def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        f = node.func
        if isinstance(f, ast.Name):
            return f.id
        if isinstance(f, ast.Attribute):
            return f.attr
    return None


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def analyse(path: Path) -> LaunchInfo:
    tree = ast.parse(path.read_text(), filename=str(path))
    info = LaunchInfo(path)
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"]
    assert len(funcs) == 1, f"{path.name}: needs one generate_launch_description()"
    body = funcs[0]
    env: dict[str, Any] = {}
    assigned: dict[str, ast.AST] = {}

    def resolve(expr: ast.AST) -> Any:
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.Name):
            return env.get(expr.id, ("var", expr.id))
        if isinstance(expr, (ast.List, ast.Tuple)):
            return [resolve(e) for e in expr.elts]
        name = _call_name(expr)
        if name == "LaunchConfiguration":
            arg = resolve(expr.args[0])
            info.configs.append(arg)
            return Arg(arg)
        if name == "join" and expr.args and _call_name(expr.args[0]) == "get_package_share_directory":
            pkg = resolve(expr.args[0].args[0])
            parts = [resolve(a) for a in expr.args[1:]]
            assert all(isinstance(p, str) for p in parts), f"{path.name}: non-literal share path"
            return Share(pkg, "/".join(parts))
        return ("expr", ast.dump(expr)[:80])

    for stmt in body.body:  # top-level assignments inside generate_launch_description
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            env[stmt.targets[0].id] = resolve(stmt.value)
            assigned[stmt.targets[0].id] = stmt
    loads = {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    info.unused_vars = sorted(v for v in assigned if v not in loads)

    for call in (n for n in ast.walk(body) if isinstance(n, ast.Call)):
        name = _call_name(call)
        if name == "DeclareLaunchArgument":
            arg = resolve(call.args[0])
            default = _kw(call, "default_value")
            info.declared[arg] = resolve(default) if default is not None else None
            assert _kw(call, "description") is not None, f"{path.name}: argument '{arg}' has no description"
        elif name == "Node":
            node = {k.arg: resolve(k.value) for k in call.keywords}
            node["remappings"] = [tuple(r) for r in node.get("remappings", [])]
            info.nodes.append(node)
        elif name == "ExecuteProcess":
            info.processes.append(resolve(_kw(call, "cmd")))
    return info


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _call_name(n) == "setup"):
        entry = _kw(call, "entry_points")
        if entry is not None:
            scripts = ast.literal_eval(entry)["console_scripts"]
            return {s.split("=")[0].strip(): s.split("=")[1].strip() for s in scripts}
    raise AssertionError("setup.py: no entry_points in setup()")


def _node_topics() -> set[str]:
    from gs_tracker_ros.ros import node as node_module  # ROS-free to import? no: needs rclpy

    return {t.lstrip("/") for t in (*node_module.SUBSCRIBED_TOPICS, *node_module.PUBLISHED_TOPICS)}


# ------------------------------------------------------------------------------------- static checks
def test_launch_files_exist():
    assert {p.name for p in LAUNCH_FILES} >= {"tracker.launch.py", "replay.launch.py"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_is_consistent_with_the_package(path):
    pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")
    info = analyse(path)
    scripts = _console_scripts()
    topics = _node_topics()
    assert info.nodes, f"{path.name}: no Node action"
    for node in info.nodes:
        assert node.get("package") == PACKAGE
        exe = node.get("executable")
        assert exe in scripts, f"{path.name}: executable '{exe}' is not a console script in setup.py ({sorted(scripts)})"
        module, func = scripts[exe].split(":")
        assert callable(getattr(importlib.import_module(module), func))
        assert node.get("name", "gs_tracker_node") == "gs_tracker_node"  # the params file's node key
        for param in node.get("parameters", []):
            if isinstance(param, Arg):
                param = info.declared[param.name]
            assert isinstance(param, Share) and param.package == PACKAGE, f"{path.name}: params {param!r}"
            assert param.relpath.startswith("config/") and (REPO / param.relpath).is_file(), (
                f"{path.name}: params file {param.relpath} does not exist in config/")
        for src, _dst in node["remappings"]:
            assert src in topics, f"{path.name}: remapping source '{src}' is not a topic of the node ({sorted(topics)})"
    for cmd in info.processes:
        words = tuple(c for c in cmd[:3] if isinstance(c, str))
        assert words in EXTERNAL_COMMANDS, f"{path.name}: unexpected process {cmd!r}"
        if words[-1] == "record":
            recorded = [c[-1] for c in cmd[3:] if isinstance(c, list) and isinstance(c[-1], str)]
            assert any(r.lstrip("/") in topics for r in recorded), f"{path.name}: records none of the node's topics"
    declared, used = set(info.declared), set(info.configs)
    assert declared == used, (f"{path.name}: declared but unused {sorted(declared - used)}, "
                              f"used but undeclared {sorted(used - declared)}")
    assert not info.unused_vars, f"{path.name}: unused variables {info.unused_vars}"


def test_launch_argument_names():
    tracker = analyse(LAUNCH_DIR / "tracker.launch.py")
    assert set(tracker.declared) >= {"image_topic", "params_file", "namespace"}
    assert tracker.nodes[0]["remappings"] == [("image", Arg("image_topic"))]
    replay = analyse(LAUNCH_DIR / "replay.launch.py")
    assert set(replay.declared) >= {"bag", "output", "rate"}


def test_installed_params_file_is_current(ros_env):
    """What `ros2 launch` would load by default: the copy installed into the ament prefix."""
    import os

    prefix = ros_env.get("AMENT_PREFIX_PATH", "").split(os.pathsep)[0]
    installed = Path(prefix) / "share" / PACKAGE / "config" / "tracker.yaml"
    if not installed.is_file():
        pytest.skip(f"{installed} not installed (make setup installs config/ into the venv)")
    assert installed.read_text() == (REPO / "config" / "tracker.yaml").read_text(), (
        f"{installed} is older than config/tracker.yaml: run `make setup`")


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


def _ros_args(node: dict[str, Any], launch_args: dict[str, str]) -> list[str]:
    """The --ros-args launch_ros would pass for a Node action (namespace, params, remappings)."""

    def value(v):
        if isinstance(v, Arg):
            v = launch_args[v.name]
        if isinstance(v, Share):
            v = v.relpath  # the package's share dir holds the repository's config/ (checked above)
        return v

    args = []
    ns = value(node.get("namespace", ""))
    if ns:
        args += ["-r", f"__ns:={ns}"]
    for p in node.get("parameters", []):
        args += ["--params-file", value(p)]
    for src, dst in node["remappings"]:
        args += ["-r", f"{src}:={value(dst)}"]
    return args


@pytest.mark.ros
@pytest.mark.slow
def test_node_runs_with_the_tracker_launch_arguments(ros_env, ros_context, tmp_path):
    from rcl_interfaces.srv import GetParameters

    from gs_tracker_ros.ros.seeding import grid_points
    from gs_tracker_ros.ros.testing import MovingTexture, NodeProcess, TrackerClient, tracks_arrays

    info = analyse(LAUNCH_DIR / "tracker.launch.py")
    node_action = info.nodes[0]
    launch_args = {k: v for k, v in info.declared.items()}
    launch_args.update(namespace="/ns", image_topic="/cam/image_raw")
    ros_args = _ros_args(node_action, launch_args)
    assert ros_args == ["-r", "__ns:=/ns", "--params-file", "config/tracker.yaml", "-r", "image:=/cam/image_raw"]
    exe = Path(__import__("sys").executable).parent / node_action["executable"]
    assert exe.is_file(), f"{exe} missing: run `make setup` (pip install -e . installs the console script)"

    proc = NodeProcess.node(ros_args, ros_env, tmp_path / "node.log", cwd=REPO, executable=str(exe))
    cli = None
    try:
        cli = TrackerClient(ros_context, "/cam/image_raw", "/ns/tracks", "/ns/gs_tracker_node")
        assert cli.wait_for_subscriber(timeout_s=20.0), proc.log_text()
        # the node's graph: the remapped subscription and the namespaced publications
        deadline = time.monotonic() + 15.0
        want_pub = {"/ns/tracks", "/ns/tracks_image", "/diagnostics"}
        want_sub = {"/cam/image_raw", "/ns/camera_info"}
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
        req = GetParameters.Request(names=["seed_grid_size", "method"])
        fut = pclient.call_async(req)
        assert cli.wait_for(lambda: fut.done(), 15.0), "get_parameters timed out"
        values = [v.integer_value if v.type == 2 else v.string_value for v in fut.result().values]
        assert values == [8, "probfuse"], values

        tex = MovingTexture(160, 120, velocity=(1, 0), num_frames=9, seed=21)
        seeds = grid_points(160, 120, 8)
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
    finally:
        if cli is not None:
            cli.close()
        rc = proc.stop()
    assert rc == 0 and "Traceback" not in proc.log_text(), proc.log_text()[-3000:]
