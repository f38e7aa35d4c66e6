"""The README's ``gs-tracker`` commands work as written.

Every command the README shows (the lines of its fenced blocks that start with ``$G`` or
``.venv/bin/gs-tracker``, and the inline code spans that start with ``gs-tracker`` or
``.venv/bin/gs-tracker``) is parsed by the real command line, so a renamed or removed option
fails here. Those that need no ROS then run, from the repository layout they assume
(``../shared/data/...``, ``training/configs/...``, ``checkpoints/...``), in a sandbox whose
data are short cuts of the real sets: the first frames of a BADJA video and of a few
unlabelled clips. Where a subcommand has a length option, the run adds it (``--max-frames``,
``--steps 1``, ``--frames``); ``bench`` only parses (a quick run still times 1,000 frames; the
bench tests run its parts) and so do the commands that start the ROS node.

The extraction reads the README's text, not fixed lines, so it follows edits of the README.
"""

from __future__ import annotations

import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gs_tracker_ros.cli.main import SUBCOMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
PROGRAMS = ("$G", ".venv/bin/gs-tracker", "gs-tracker")
# Subcommands that start the ROS node (or play to it): parsed only.
NEEDS_ROS = (("bag", "replay-eval"), ("bag", "latency"), ("bag", "play"), ("demo",))
PARSE_ONLY = NEEDS_ROS + (("bench",),)
# Options added to a run to keep it short (the README's own options stay as written).
QUICK = {("track",): ["--max-frames", "3"], ("bag", "make"): ["--max-frames", "3"], ("train",): ["--steps", "1"],
         ("eval", "cycle"): ["--frames", "4", "--grid", "4"],
         # checkpoints/ is linked into the sandbox: the refit writes elsewhere
         ("fit-evidence",): ["--scenes", "1", "--frames", "8", "--out", "evidence_refit", "--cycles"]}
# Stand-ins for the README's placeholder words.
PLACEHOLDERS = {"VIDEO_OR_FOLDER": "../shared/data/davis_unlabeled/parkour"}
BADJA_FRAMES = 5
CLIP_FRAMES = 16  # enough for a training clip (8 frames at stride 2)


def _command(text: str) -> list[str] | None:
    """argv (without the program) of one README command line, or None if it is not one."""
    text = re.sub(r"\s+#.*$", "", " ".join(text.split()))  # one line, no trailing comment
    text = re.sub(r"\[([^\]]*)\]", r"\1", text)  # optional parts shown as [--opt V]: take them
    words = shlex.split(text)
    if len(words) < 2 or words[0] not in PROGRAMS or words[1].replace("-", "_") not in SUBCOMMANDS:
        return None  # not a command (e.g. a quoted error line `gs-tracker track: error: ...`)
    return [PLACEHOLDERS.get(w, w) for w in words[1:]]


def readme_commands() -> list[list[str]]:
    """Every ``gs-tracker`` command of the README, in order, each once."""
    text = (REPO / "README.md").read_text()
    found: list[list[str]] = []
    fences = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    for block in fences:
        found += [c for ln in block.splitlines() if (c := _command(ln))]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    found += [c for span in re.findall(r"`([^`]+)`", prose) if (c := _command(span))]
    unique: list[list[str]] = []
    for cmd in found:
        if cmd not in unique:
            unique.append(cmd)
    return unique


def _kind(argv: list[str]) -> tuple[str, ...]:
    if argv[0] == "bag":
        return tuple(argv[:2])
    if argv[0] == "eval" and "--dataset" in argv:
        return ("eval", argv[argv.index("--dataset") + 1])
    return (argv[0],)


def _link_first(src: Path, dst: Path, count: int) -> None:
    dst.mkdir(parents=True)
    for f in sorted(p for p in src.iterdir() if p.is_file())[:count]:
        (dst / f.name).symlink_to(f)


def _short_badja(src: Path, dst: Path, count: int) -> None:
    """A BADJA sequence cut to its first ``count`` frames (frames, masks and ground truth)."""
    for sub in ("frames", "masks"):
        if (src / sub).is_dir():
            _link_first(src / sub, dst / sub, count)
    with np.load(src / "gt.npz") as gt:
        arrays = {k: gt[k] for k in gt.files}
    arrays["tracks_xy"] = arrays["tracks_xy"][:, :count]
    arrays["visible"] = arrays["visible"][:, :count]
    arrays["annotated_frames"] = arrays["annotated_frames"][:count]
    np.savez(dst / "gt.npz", **arrays)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """A checkout layout (``repo/`` beside ``shared/data``) with the repository's configs and
    checkpoints linked in and short cuts of the data sets; returns ``repo/``."""
    if not (SHARED / "badja_dev").is_dir() or not (SHARED / "davis_unlabeled").is_dir():
        pytest.skip(f"the data sets are not at {SHARED}")
    root = tmp_path_factory.mktemp("readme")
    repo = root / "repo"
    repo.mkdir()
    for name in ("training", "checkpoints", "config"):
        (repo / name).symlink_to(REPO / name)
    data = root / "shared" / "data"
    for name in ("dog",):
        _short_badja(SHARED / "badja_dev" / name, data / "badja_dev" / name, BADJA_FRAMES)
    for name in ("parkour", "car-roundabout", "car-shadow"):
        _link_first(SHARED / "davis_unlabeled" / name, data / "davis_unlabeled" / name, CLIP_FRAMES)
    if (SHARED / "davis_masks" / "car-shadow").is_dir():
        _link_first(SHARED / "davis_masks" / "car-shadow", data / "davis_masks" / "car-shadow", CLIP_FRAMES)
    for clip in sorted(p for p in (SHARED / "real_video").glob("*") if p.is_dir())[:2]:
        _link_first(clip, data / "real_video" / clip.name, CLIP_FRAMES)
    return repo


def test_the_readme_shows_the_commands():
    kinds = {_kind(c)[0] for c in readme_commands()}
    assert {"track", "eval", "bench", "bag", "train", "export"} <= kinds, kinds


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda argv: " ".join(argv)[:80])
def test_readme_command_runs(argv, sandbox):
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as err:
        pytest.fail(f"the README's `gs-tracker {' '.join(argv)}` does not parse (exit {err.code})")
    kind = _kind(argv)
    if any(kind[:len(p)] == p for p in PARSE_ONLY):
        for word in argv[1:]:  # the inputs it names exist (bags made by an earlier README command)
            if word.startswith("../shared/"):
                assert glob.glob(str(sandbox / word)) or (REPO / word).exists(), word
        return
    quick = QUICK.get(kind, [])
    res = subprocess.run([sys.executable, "-m", "gs_tracker_ros", *argv, *quick], cwd=sandbox,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"gs-tracker {' '.join(argv + quick)}:\n{res.stderr[-3000:]}"
