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


def _noqa_comments() -> list[tuple[str, int, str]]:
    """``(file, line, text after "# noqa")`` of every noqa comment (comments only, via tokenize)."""
    import tokenize

    out = []
    for folder in ("gs_tracker_ros", "launch", "test", "scripts"):
        for path in sorted((REPO / folder).rglob("*.py")):
            with path.open("rb") as f:
                for tok in tokenize.tokenize(f.readline):
                    if tok.type == tokenize.COMMENT and tok.string.startswith("# noqa"):
                        out.append((str(path.relative_to(REPO)), tok.start[0], tok.string[len("# noqa"):]))
    return out


def test_every_noqa_names_a_gated_code_and_says_why():
    """A ``# noqa`` must silence a code the gate checks (others are inert) and give its reason:
    ``# noqa: F401 - imported only to see whether it is installed``."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "test" / "flake8_gate.ini")
    gated = [c.strip() for c in cfg["flake8"]["select"].split(",")]
    bad = [(f, i, rest) for f, i, rest in _noqa_comments()
           if not (rest.startswith(": ") and " - " in rest
                   and any(rest[2:].split(" - ")[0].strip().startswith(g) for g in gated))]
    assert not bad, "noqa without a gated code and a reason:\n" + "\n".join(f"{f}:{i}: # noqa{r}" for f, i, r in bad)
