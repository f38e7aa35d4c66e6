"""Shared pytest fixtures.

* ``repo_root``   - the checkout (parent of test/).
* ``shared_data`` - ``<checkout>/../shared/data`` (CI clones the repo with shared/ beside it);
                    the test is skipped with a reason when it is missing.
* ``ros_env``     - environment (dict) for starting a ROS 2 subprocess from the venv: its own random
                    ROS_DOMAIN_ID in [1, 100], discovery limited to this host, ROS_LOG_DIR in the
                    test's tmp dir, AMENT_PREFIX_PATH and the ROS-wheels library path.
* ``ros_context`` - an initialised ``rclpy.Context`` in this process on the same domain as
                    ``ros_env`` (so a node here and a ``ros_env`` subprocess see each other);
                    shut down after the test.
"""

from __future__ import annotations

import os
import random
import sys
import sysconfig
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Per-test isolation keys that ros_env sets and ros_context mirrors into this process.
_ROS_ISOLATION_KEYS = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOG_DIR")


def _ros_wheel_library_path(existing: str) -> str | None:
    """LD_LIBRARY_PATH the ROS wheels' bootstrapper would give this venv; None if not a wheels venv."""
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "ros_wheels_bootstrapper.pth").exists():
        return None
    parts = [str(Path(sys.prefix) / "lib")]
    parts += sorted(str(p.resolve()) for p in site.glob("ros_*.libs") if p.is_dir())
    parts += [p for p in existing.split(os.pathsep) if p and p not in parts]
    return os.pathsep.join(parts)


def ros_subprocess_env(domain_id: int, log_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a ROS 2 process started with this interpreter (``sys.executable``)."""
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the range setting
    env["ROS_LOG_DIR"] = str(log_dir)
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    # ament_index look-ups: this venv is an ament prefix once `make setup` built the interfaces.
    if (Path(sys.prefix) / "share" / "ament_index").is_dir():
        others = [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p and p != sys.prefix]
        env["AMENT_PREFIX_PATH"] = os.pathsep.join([sys.prefix, *others])
    # ROS wheels: give the child the library path directly and mark it bootstrapped (no re-exec).
    lib_path = _ros_wheel_library_path(env.get("LD_LIBRARY_PATH", ""))
    if lib_path is not None:
        env["LD_LIBRARY_PATH"] = lib_path
        env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"
    return env


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA} (expected shared/ beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def ros_env(tmp_path: Path) -> dict[str, str]:
    log_dir = tmp_path / "ros_log"
    log_dir.mkdir(exist_ok=True)
    # SystemRandom: unaffected by tests that seed the global `random` module.
    return ros_subprocess_env(random.SystemRandom().randint(1, 100), log_dir)


@pytest.fixture
def ros_context(ros_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (make setup)")
    for key in _ROS_ISOLATION_KEYS:
        monkeypatch.setenv(key, ros_env[key])
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        yield context
    finally:
        context.try_shutdown()
