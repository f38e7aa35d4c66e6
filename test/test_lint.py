"""The lint gate: flake8 with the one configuration colcon test uses too (test/flake8_gate.ini)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_flake8_gate_passes_on_the_sources_launch_files_and_tests():
    proc = subprocess.run([sys.executable, "-m", "flake8", "--config", str(REPO / "test" / "flake8_gate.ini"),
                           "gs_tracker_ros", "launch", "test", "scripts"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, "flake8 gate:\n" + proc.stdout + proc.stderr


def test_the_gate_catches_an_unused_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    proc = subprocess.run([sys.executable, "-m", "flake8", "--config", str(REPO / "test" / "flake8_gate.ini"),
                           str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "F401" in proc.stdout and "F821" in proc.stdout
