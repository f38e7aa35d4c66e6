"""Paths in configs, checkpoints, code and docs are relative to the repository, never one machine's."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from gs_tracker_ros.core.paths import DAVIS_UNLABELED, REPO_ROOT, resolve_path
from gs_tracker_ros.training.config import TrainConfig, load_config

SCANNED = ("training", "checkpoints", "gs_tracker_ros", "docs", "config", "README.md")
MACHINE_PATH = re.compile(rb"(?<![\w.])/(?:work|home)/")


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *SCANNED], cwd=REPO_ROOT, check=True,
                             capture_output=True).stdout
        files = [REPO_ROOT / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an sdist): walk instead
        files = [p for top in SCANNED for p in ([REPO_ROOT / top] if (REPO_ROOT / top).is_file()
                                                 else (REPO_ROOT / top).rglob("*"))
                 if p.is_file() and "__pycache__" not in p.parts]
    return [f for f in files if f.is_file()]


def test_the_scan_sees_the_files_it_guards():
    names = {f.relative_to(REPO_ROOT).as_posix() for f in _tracked_files()}
    assert {"training/configs/train_cpu_small.yaml", "checkpoints/README.md", "gs_tracker_ros/training/config.py"} <= names
    assert MACHINE_PATH.search(b"paths: [/work/shared/data/x]") and MACHINE_PATH.search(b"'/home/me/x'")
    assert not MACHINE_PATH.search(b"../shared/data/davis_unlabeled and out/work/x")


def test_no_absolute_machine_paths_in_tracked_files():
    offenders = []
    for f in _tracked_files():
        data = f.read_bytes()
        for m in MACHINE_PATH.finditer(data):
            line = data.count(b"\n", 0, m.start()) + 1
            offenders.append(f"{f.relative_to(REPO_ROOT)}:{line}")
    assert not offenders, "absolute /work/ or /home/ paths (use ../shared/data/... relative to the repo): " + \
        ", ".join(offenders[:20])


def test_relative_data_paths_resolve_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path(DAVIS_UNLABELED) == REPO_ROOT / DAVIS_UNLABELED
    (tmp_path / "local").mkdir()
    assert resolve_path("local") == Path("local")  # present in the cwd: taken as given
    assert resolve_path(tmp_path) == tmp_path


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO_ROOT / "training" / "configs").glob("*.yaml")))
def test_config_data_paths_are_repository_relative(name):
    cfg = load_config(REPO_ROOT / "training" / "configs" / name)
    for p in cfg.data.paths:
        assert not os.path.isabs(p), p
        assert p.startswith("../shared/data/"), p
    assert TrainConfig().data.paths == [DAVIS_UNLABELED]


def test_training_data_found_from_another_directory(tmp_path, monkeypatch):
    from gs_tracker_ros.training.data import discover

    if not (REPO_ROOT / DAVIS_UNLABELED).is_dir():
        pytest.skip(f"{DAVIS_UNLABELED} is not present next to this checkout")
    monkeypatch.chdir(tmp_path)
    found = discover([DAVIS_UNLABELED])
    assert len(found) >= 3 and all(path.is_dir() for _, path in found)
