"""Checks the node makes as it starts, before it tracks anything.

* **Parameters that name nothing** (``-p no_such:=1``, ``tracker: {outler_px: 3.0}`` in a params
  file) are refused: :func:`unknown_parameter_report` sorts them into errors (the node exits with
  status 2 and one line naming each with the closest real name) and warnings. Only a name that
  reaches the node solely through a wildcard section of a params file (``/**:``, ``/*:``, i.e.
  meant for every node the file is given to) is a warning: such a file may carry parameters of
  other nodes. ``-p``, a section naming this node (``/**/gs_tracker_node:``, ``/robot1/gs_tracker_node:``,
  what launch_ros writes for a node with a name and a namespace) and parameters given in code are
  errors.
* **A node of the same name** already on the graph is reported (:class:`NameClashCheck`): both
  would receive every image and answer every service call.

rclpy is imported only inside the functions that need it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Iterable

from . import parameters as P

WILDCARDS = ("*", "**")


# ------------------------------------------------------------------------------------ parameters
def ros_arguments(argv: Iterable[str]) -> list[str]:
    """The tokens inside ``--ros-args ... [--]`` sections of a command line."""
    out, inside = [], False
    for tok in argv:
        if tok == "--ros-args":
            inside = True
        elif tok == "--":
            inside = False
        elif inside:
            out.append(tok)
    return out


def command_line_parameters(argv: Iterable[str]) -> set[str]:
    """Names set with ``-p name:=value`` / ``--param name:=value`` (a ``node:name:=value`` rule
    counts by its name)."""
    args = ros_arguments(argv)
    names = set()
    for i, tok in enumerate(args[:-1]):
        if tok in ("-p", "--param") and ":=" in args[i + 1]:
            names.add(args[i + 1].split(":=", 1)[0].rsplit(":", 1)[-1])
    return names


def node_pattern_matches(pattern: str, fq_name: str) -> bool:
    """Whether a params-file section name (``/**``, ``/*/gs_tracker_node``, ``robot1/gs_tracker_node``)
    applies to the node ``fq_name`` (``/robot1/gs_tracker_node``): ``*`` stands for one name token,
    ``**`` for any number of them, as rcl matches them."""
    want = [t for t in pattern.strip("/").split("/") if t]
    have = [t for t in fq_name.strip("/").split("/") if t]

    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(have)
        if want[i] == "**":
            return any(match(i + 1, k) for k in range(j, len(have) + 1))
        return j < len(have) and want[i] in ("*", have[j]) and match(i + 1, j + 1)

    return match(0, 0)


def _sections(data: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[str, dict]]:
    """``(node pattern, ros__parameters)`` of a loaded params file (nested namespace keys joined)."""
    if not isinstance(data, dict):
        return
    for key, value in data.items():
        if key == "ros__parameters":
            yield "/" + "/".join(path), value if isinstance(value, dict) else {}
        elif isinstance(value, dict):
            yield from _sections(value, (*path, str(key).strip("/")))


def _flat_names(params: dict, prefix: str = "") -> Iterable[str]:
    for key, value in params.items():
        if isinstance(value, dict):
            yield from _flat_names(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def wildcard_only_parameters(argv: Iterable[str], fq_name: str) -> set[str]:
    """Names that reach node ``fq_name`` only through params-file sections whose last token is a
    wildcard (``/**``, ``/robot1/*``): meant for any node, so not necessarily for this one. A name
    also given with ``-p`` or in a section naming the node is not in the set. Unreadable files are
    skipped (:func:`~gs_tracker_ros.ros.parameters.check_params_files` reports them)."""
    import yaml

    argv = list(argv)
    specific, generic = command_line_parameters(argv), set()
    for name in P.params_files(argv):
        try:
            data = yaml.safe_load(Path(name).read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue
        for pattern, params in _sections(data):
            if not node_pattern_matches(pattern, fq_name):
                continue
            last = pattern.rstrip("/").rsplit("/", 1)[-1]
            (generic if last in WILDCARDS else specific).update(_flat_names(params))
    return generic - specific


def unknown_parameter_report(overrides: Iterable[str], known: Iterable[str], wildcard_only: set[str],
                             hints: dict[str, str] | None = None) -> tuple[str | None, list[str]]:
    """``(error, warnings)`` for start-up overrides that name no parameter in ``known``.

    ``error``: one line naming every unknown parameter that was meant for this node, each with the
    closest known name (or the hint in ``hints`` for that name), None if there is none;
    ``warnings``: one line per unknown name in ``wildcard_only``."""
    known = set(known)
    hints = hints or {}
    unknown = sorted(set(overrides) - known)

    def describe(name: str) -> str:
        if name in hints:
            return f"'{name}' ({hints[name]})"
        guess = P.closest_parameter(name, known)
        return f"'{name}'" + (f" (did you mean '{guess}'?)" if guess else "")

    meant = [n for n in unknown if n not in wildcard_only]
    error = None
    if meant:
        error = (f"unknown parameter{'s' if len(meant) > 1 else ''} "
                 + ", ".join(describe(n) for n in meant)
                 + "; `ros2 param list` or docs/ros.md lists the node's parameters")
    warnings = [f"ignoring parameter {describe(n)} from a params-file section for all nodes (/**): not a "
                f"parameter of this node" for n in unknown if n in wildcard_only]
    return error, warnings


# ------------------------------------------------------------------------------------ name clash
class NameClashCheck:
    """Warn once when another node with this node's fully qualified name is on the graph.

    Discovery takes from a fraction of a second to a few seconds, so the graph is looked at every
    ``period_s`` for the first ``window_s`` seconds after start (then the timer is destroyed).
    """

    def __init__(self, node: Any, warn: Callable[[str], None], period_s: float = 0.5,
                 window_s: float = 10.0) -> None:
        self._node, self._warn = node, warn
        self._left = max(1, int(round(window_s / period_s)))
        self.reported = False
        self._timer = node.create_timer(period_s, self._check)

    def _check(self) -> None:
        self._left -= 1
        name, ns = self._node.get_name(), self._node.get_namespace()
        try:
            same = sum(1 for n, s in self._node.get_node_names_and_namespaces() if n == name and s == ns)
        except Exception:  # the context is shutting down
            same = 0
        if same > 1 and not self.reported:
            self.reported = True
            fq = self._node.get_fully_qualified_name()
            self._warn(
                f"another node is already on the graph as '{fq}', the name this node (pid {os.getpid()}) "
                f"starts with: both receive every image, publish tracks for it and answer every service "
                f"call; give this one another name, e.g. -r __node:={name}_2 (or another namespace, "
                f"-r __ns:=/robot2)")
        if self.reported or self._left <= 0:
            self.cancel()

    def cancel(self) -> None:
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._timer = None
