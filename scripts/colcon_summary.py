"""The result of `scripts/colcon_check.sh` as docs/ros.md shows it, written there by a command
(`scripts/colcon_check.sh --write-docs docs/ros.md`), never typed.

    python scripts/colcon_summary.py WORKSPACE CHECKOUT [--write-docs DOC]

Reads WORKSPACE/test-result.txt (what `colcon test-result --all` printed) and the suite's JUnit
file, and prints (or writes between the COLCON RESULT markers of DOC) a block with: the date, the
machine's CPU count, whether the checkout had ../shared beside it, the wall time of the build and
of the tests, colcon's summary as printed, and every skip reason with its count. Paths of the
checkout become relative ones (the checkout `.`, its parent `..`).
"""

from __future__ import annotations

import datetime
import os
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

BEGIN = "<!-- BEGIN COLCON RESULT (generated: scripts/colcon_check.sh --write-docs docs/ros.md) -->"
END = "<!-- END COLCON RESULT -->"
SUITE_XUNIT = "build/gs_tracker_ros/test_results/gs_tracker_ros/gs_tracker_ros_suite.xunit.xml"


def relative(text: str, checkout: Path) -> str:
    """``text`` with the checkout's absolute paths made relative (``.`` and ``..``)."""
    text = text.replace(str(checkout) + "/", "").replace(str(checkout), ".")
    return text.replace(str(checkout.parent) + "/", "../")


def skip_reasons(xunit: Path, checkout: Path) -> Counter:
    """``{reason: count}`` of the skipped test cases of a JUnit file."""
    reasons: Counter = Counter()
    for case in ET.parse(xunit).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if skipped is not None:
            message = skipped.get("message") or (skipped.text or "").strip() or "no reason given"
            reasons[relative(message, checkout)] += 1
    return reasons


def block(workspace: Path, checkout: Path) -> str:
    result = (workspace / "test-result.txt").read_text().strip()
    # the Testing/<timestamp>/ folder of CTest changes every run
    result = re.sub(r"Testing/[^/\s]+/Test\.xml", "Testing/<run>/Test.xml", result)
    times = {}
    timing = workspace / "timing.txt"
    if timing.is_file():
        for line in timing.read_text().split("\n"):
            if "=" in line:
                key, value = line.split("=", 1)
                times[key.strip()] = value.strip()
    shared = (checkout.parent / "shared").is_dir()
    when = datetime.date.today().isoformat()
    lines = [
        f"Measured on {when} ({os.cpu_count()} CPU cores, shared with other work; build "
        f"{times.get('build_s', '?')} s, test {times.get('test_s', '?')} s) in a checkout "
        + ("with `../shared` beside it" if shared else "with no `../shared` beside it (as on a robot)")
        + ", `colcon test-result --all`:",
        "",
        "```",
        relative(result, checkout),
        "```",
    ]
    xunit = workspace / SUITE_XUNIT
    if xunit.is_file():
        reasons = skip_reasons(xunit, checkout)
        if reasons:
            lines += ["", "Skipped, with the reason pytest gives:", "", "| tests | reason |", "|---|---|"]
            lines += [f"| {n} | {reason.replace('|', '/')} |" for reason, n in
                      sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines) + "\n"


def write_docs(doc: Path, text: str) -> None:
    content = doc.read_text()
    a = content.index(BEGIN) + len(BEGIN) + 1
    b = content.index(END)
    doc.write_text(content[:a] + text + content[b:])


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--write-docs"):
        sys.stderr.write("usage: python scripts/colcon_summary.py WORKSPACE CHECKOUT [--write-docs DOC]\n")
        return 2
    text = block(Path(argv[0]), Path(argv[1]).resolve())
    if len(argv) == 4:
        write_docs(Path(argv[3]), text)
        print(f"colcon result written to {argv[3]}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
