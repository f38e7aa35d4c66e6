"""package.xml declares every ROS package the installed code imports (the node, the bag tools,
the launch files), so that rosdep / colcon on a robot install what `ros2 run` / `ros2 launch`
need. A ROS package is a name in the ament index (the venv's) or one of the launch packages that
are not installable here."""

from __future__ import annotations

import ast
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOT_INSTALLABLE_HERE = {"launch", "launch_ros"}  # ROS packages without PyPI wheels


def _imports(paths) -> dict[str, str]:
    """Top-level module -> first file importing it."""
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def _declared(kinds) -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    return {el.text.strip() for el in root if el.tag in kinds and el.text}


def test_every_imported_ros_package_is_declared(monkeypatch):
    pytest.importorskip("ament_index_python", reason="ament_index_python not installed (make setup)")
    from ament_index_python.packages import get_packages_with_prefixes

    prefix = Path(os.sys.prefix)
    if not (prefix / "share" / "ament_index").is_dir():
        pytest.skip("the venv is not an ament prefix yet (make setup)")
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    ros_packages = set(get_packages_with_prefixes()) | NOT_INSTALLABLE_HERE
    sources = [*sorted((REPO / "gs_tracker_ros").rglob("*.py")), *sorted((REPO / "launch").glob("*.py"))]
    imported = {m: f for m, f in _imports(sources).items() if m in ros_packages and m != "gs_tracker_ros"}
    assert {"rclpy", "sensor_msgs", "launch_ros"} <= set(imported)  # the scan sees real imports
    run_deps = _declared({"depend", "exec_depend"})
    missing = {m: f for m, f in imported.items() if m not in run_deps}
    assert not missing, f"package.xml lacks <exec_depend> for {missing} (module: first file importing it)"
    tests = [*sorted((REPO / "test").glob("*.py"))]
    test_imported = {m for m in _imports(tests) if m in ros_packages and m != "gs_tracker_ros"}
    missing = sorted(test_imported - run_deps - _declared({"test_depend"}))
    assert not missing, f"package.xml lacks <test_depend> for {missing}"
