"""The node's ROS parameters: one table of specs, generated in part from the tracker config.

* Node parameters (``method``, ``image_qos``, ``max_tracks``, seeding, overlay, ...) are listed in
  :data:`NODE_PARAMS`.
* Every leaf of :class:`~gs_tracker_ros.tracking.config.TrackerConfig` becomes ``tracker.<dotted key>``
  (e.g. ``tracker.integration.outlier_px``), generated from the dataclasses: names, types and
  defaults cannot drift from the core, and descriptions come from the dataclasses' docstrings.
  ``TrackerConfig.max_tracks`` is the node's ``max_tracks`` (one knob for all methods).
* The encoder engine's settings (backend, model / ONNX / engine paths, precision, cache dir,
  threads) are ``tracker.engine.*``: ``TrackerConfig.engine`` leaves like any other.

Run-time changes: parameters with ``runtime=True`` may be set while the node runs (validated by
:class:`TrackerConfig` validation); the others are structural and rejected with a reason. This
module imports ROS only inside the functions that build ROS objects, so the specs and the config
mapping are testable without ROS.

``python -m gs_tracker_ros.ros.parameters`` prints the Markdown table of docs/ros.md;
``--write-docs docs/ros.md`` updates it there in place.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterable

from ..tracking.config import STRUCTURAL_SECTION, TrackerConfig
from ..core.config import Setting, choices_of, set_dotted, setting_of
from ..core.errors import ConfigError, yaml_error_text
from ..methods import DEFAULT_METHOD, method_names
from .qos import IMAGE_QOS_CHOICES

TRACKER_PREFIX = "tracker."
IMAGE_TRANSPORT_CHOICES = ("raw", "compressed")


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter of the node.

    Attributes:
        name: parameter name (dotted for the tracker config, e.g. ``tracker.lk.fb_threshold``).
        default: default value (bool, int, float, str or a list of one of those).
        description: one line shown by ``ros2 param describe`` and in docs/ros.md.
        runtime: True if it may be changed while the node runs; False = structural.
        range: inclusive ``(min, max)`` for int / float parameters (None: no range); the ROS
            descriptor's range (inclusive by definition).
        open_ends: whether the config's validation excludes ``min`` / ``max`` (docs show ``(`` / ``)``).
        choices: allowed values of a string parameter (None: free).
        config_key: the :class:`TrackerConfig` key it maps to (None: a node parameter).
    """

    name: str
    default: Any
    description: str
    runtime: bool = False
    range: tuple[float, float] | None = None
    open_ends: tuple[bool, bool] = (False, False)
    choices: tuple[str, ...] | None = None
    config_key: str | None = None

    @property
    def type_name(self) -> str:
        v = self.default
        if isinstance(v, bool):
            return "bool"
        if isinstance(v, int):
            return "int"
        if isinstance(v, float):
            return "double"
        if isinstance(v, str):
            return "string"
        if isinstance(v, list) and v:
            inner = {"bool": "bool", "int": "integer", "float": "double", "str": "string"}[type(v[0]).__name__]
            return f"{inner}[]"
        raise TypeError(f"unsupported default for parameter {self.name}: {v!r}")


# ---------------------------------------------------------------------------------------------- node
NODE_PARAMS: list[ParamSpec] = [
    ParamSpec("method", DEFAULT_METHOD,
              "tracking method (gs_tracker_ros.methods): " + ", ".join(method_names()),
              choices=tuple(method_names())),
    ParamSpec("autostart", True,
              "configure and activate the (lifecycle) node at start-up; false = wait in unconfigured "
              "for lifecycle transitions (ros2 lifecycle set ...)"),
    ParamSpec("image_qos", "auto",
              "QoS of the image / camera_info subscriptions: auto (reliable when every publisher of the "
              "image topic is reliable, else best effort; re-checked as publishers come and go), "
              "sensor_data (best effort, depth 5), reliable (depth 5) or system_default",
              choices=IMAGE_QOS_CHOICES),
    ParamSpec("image_transport", "raw",
              "raw: sensor_msgs/Image on image; compressed: sensor_msgs/CompressedImage (jpeg, png) on "
              "<image>/compressed, as image_transport's compressed transport publishes it",
              choices=IMAGE_TRANSPORT_CHOICES),
    ParamSpec("query_history", 30,
              "processed images kept with their stamps so that ~/add_queries can place points on an "
              "earlier image (request.stamp); the points are tracked from it to the most recent image. "
              "0 = only the most recent image. Memory: W x H x 3 bytes per image",
              range=(0, 300)),
    ParamSpec("max_tracks", 1024, "upper bound on live tracks (service queries + grid seeds)",
              runtime=True, range=(1, 100_000), config_key="max_tracks"),
    ParamSpec("seed_grid_size", 0,
              "automatic seeding of an N x N grid of points (0 = off): seeded on the first image "
              "and after a reset", runtime=True, range=(0, 100)),
    ParamSpec("reseed_when_below", 0.5,
              "re-seed when fewer than this fraction of the N x N grid points are visible: the "
              "seeder's lost tracks are removed and free grid cells re-seeded (never beyond max_tracks)",
              runtime=True, range=(0.0, 1.0)),
    ParamSpec("publish_overlay", True,
              "publish the debug overlay on tracks_image (drawn only while someone subscribes)",
              runtime=True),
    ParamSpec("mono16_shift", 8,
              "mono16 images become 8 bit as min(v >> shift, 255): 8 for 16-bit data, 4 for 12-bit",
              runtime=True, range=(0, 8)),
    ParamSpec("diagnostics_period_s", 1.0, "period of the /diagnostics status in seconds",
              range=(0.1, 60.0)),
    ParamSpec("stale_after_s", 1.0,
              "/diagnostics turns WARN when no image has arrived for this many seconds (a stalled "
              "camera); set it to a few frame periods of the camera", runtime=True, range=(0.01, 3600.0)),
    ParamSpec("stale_error_after_s", 5.0,
              "/diagnostics turns ERROR when no image has arrived for this many seconds "
              "(>= stale_after_s)", runtime=True, range=(0.01, 3600.0)),
]

# ------------------------------------------------------------------------------------- tracker config
# Range, run-time flag and choices of every tracker.* parameter come from its config field's
# declaration (:func:`gs_tracker_ros.core.config.setting`, ``Literal`` annotations). A range is
# the descriptor's inclusive one; the config's own validation checks the same declaration (open
# and upper bounds, odd windows, ...).

# TrackerConfig keys that a node parameter provides instead of a ``tracker.*`` parameter.
NODE_OWNED_CONFIG_KEYS: dict[str, str] = {"max_tracks": "max_tracks"}


def _attribute_docs(cls: type) -> dict[str, str]:
    """``{field: text}`` from the ``Attributes:`` section of a (dataclass) docstring."""
    doc = cls.__doc__ or ""
    lines = doc.splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "Attributes:")
    except StopIteration:
        return out
    current: str | None = None
    base_indent: int | None = None
    for ln in lines[start + 1:]:
        if not ln.strip():
            current = None
            continue
        indent = len(ln) - len(ln.lstrip())
        m = re.match(r"\s*(\w+):\s*(.*)$", ln)
        if m and (base_indent is None or indent <= base_indent):
            base_indent = indent
            current = m.group(1)
            out[current] = m.group(2).strip()
        elif current is not None and base_indent is not None and indent > base_indent:
            out[current] += " " + ln.strip()
        else:
            break
    return {k: re.sub(r"``([^`]*)``", r"\1", v) for k, v in out.items()}


@dataclass(frozen=True)
class _Leaf:
    key: str  # dotted
    default: Any
    doc: str
    setting: Setting
    choices: tuple[str, ...] | None
    structural: bool  # inside a section declared structural (``klt``)


def _leaf_fields(cls: type, prefix: str = "", defaults: Any = None, structural: bool = False) -> Iterable[_Leaf]:
    """Every non-dataclass field with its declaration, depth first.

    Nested sections take their defaults from the parent's default instance (``klt`` is an
    ``LKConfig`` with its own defaults)."""
    defaults = cls() if defaults is None else defaults
    docs = _attribute_docs(cls)
    choices = choices_of(cls)
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from _leaf_fields(type(value), key + ".", value,
                                    structural or bool(f.metadata.get(STRUCTURAL_SECTION)))
        else:
            yield _Leaf(key, value, setting_of(f).doc or docs.get(f.name, ""), setting_of(f),
                        choices.get(f.name), structural)


def _ros_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def tracker_param_specs() -> list[ParamSpec]:
    """``tracker.*`` specs generated from :class:`TrackerConfig` (see the module docstring)."""
    specs = []
    for leaf in _leaf_fields(TrackerConfig):
        if leaf.key in NODE_OWNED_CONFIG_KEYS:
            continue
        specs.append(ParamSpec(
            name=TRACKER_PREFIX + leaf.key,
            default=_ros_value(leaf.default),
            description=leaf.doc or f"TrackerConfig.{leaf.key}",
            runtime=leaf.setting.runtime and not leaf.structural,
            range=leaf.setting.range,
            open_ends=(leaf.setting.low_open, leaf.setting.high_open),
            choices=leaf.choices,
            config_key=leaf.key,
        ))
    return specs


def all_param_specs() -> list[ParamSpec]:
    return [*NODE_PARAMS, *tracker_param_specs()]


SPECS: dict[str, ParamSpec] = {s.name: s for s in all_param_specs()}


def default_values() -> dict[str, Any]:
    return {name: spec.default for name, spec in SPECS.items()}


# ------------------------------------------------------------------------------------------ mapping
def tracker_config_from_params(values: dict[str, Any]) -> TrackerConfig:
    """The validated :class:`TrackerConfig` for parameter ``values`` (missing ones: defaults).

    Raises :class:`ConfigError` naming the parameter when a value is invalid.
    """
    nested: dict[str, Any] = {}
    for spec in SPECS.values():
        if spec.config_key is None:
            continue
        value = values.get(spec.name, spec.default)
        if not isinstance(value, (str, bytes)) and hasattr(value, "__len__") and not isinstance(value, dict):
            value = list(value)  # array.array / tuple from rclpy
        set_dotted(nested, spec.config_key, value)
    try:
        return TrackerConfig.from_dict(nested)
    except ConfigError as err:
        raise ConfigError(_ros_names(str(err))) from None


def _ros_names(message: str) -> str:
    """Rewrite ``config key 'lk.window'`` into the parameter name ``tracker.lk.window``."""
    def repl(m: re.Match) -> str:
        key = m.group(1)
        for spec in SPECS.values():
            if spec.config_key == key:
                return f"parameter '{spec.name}'"
        return m.group(0)

    return re.sub(r"config key '([\w.]+)'", repl, message)


def check_node_values(values: dict[str, Any]) -> None:
    """Checks of node parameters that descriptors cannot express. Raises :class:`ConfigError`."""
    for spec in SPECS.values():
        if spec.choices is not None and spec.name in values and values[spec.name] not in spec.choices:
            raise ConfigError(f"parameter '{spec.name}' = {values[spec.name]!r} is not one of: "
                              f"{', '.join(spec.choices)}")
    warn_s = values.get("stale_after_s", SPECS["stale_after_s"].default)
    error_s = values.get("stale_error_after_s", SPECS["stale_error_after_s"].default)
    if error_s < warn_s:
        raise ConfigError(f"parameter 'stale_error_after_s' = {error_s!r} must be >= 'stale_after_s' = {warn_s!r}")


def check_update(current: dict[str, Any], changes: dict[str, Any]) -> TrackerConfig:
    """Validate run-time ``changes`` against ``current`` values; the resulting config.

    Raises :class:`ConfigError` with the reason: an unknown or structural parameter, a bad choice,
    or anything :class:`TrackerConfig` validation rejects.
    """
    for name, value in changes.items():
        spec = SPECS.get(name)
        if spec is None:
            raise ConfigError(f"unknown parameter '{name}'")
        if not spec.runtime:
            raise ConfigError(
                f"parameter '{name}' is structural and cannot change while the node runs "
                f"(it shapes the tracker / subscriptions built at start-up); restart the node with "
                f"-p {name}:={_fmt(value)} or set it in the params file"
            )
    merged = {**current, **changes}
    check_node_values(merged)
    return tracker_config_from_params(merged)


def apply_runtime_config(target: TrackerConfig, new: TrackerConfig, keys: Iterable[str]) -> None:
    """Copy run-time config ``keys`` (dotted) from ``new`` into ``target`` in place.

    The trackers built by :func:`~gs_tracker_ros.methods.make_tracker` keep a reference to the
    config (and its ``flow`` / ``lk`` / ``integration`` parts) they were built with and read these
    values on every frame, so updating them in place changes the running tracker without
    rebuilding it (and without losing its tracks).
    """
    for key in keys:
        parts = key.split(".")
        src, dst = new, target
        for part in parts[:-1]:
            src, dst = getattr(src, part), getattr(dst, part)
        setattr(dst, parts[-1], getattr(src, parts[-1]))


# ------------------------------------------------------------------------------------------ ROS side
def descriptor_for(spec: ParamSpec):
    """The rcl_interfaces ParameterDescriptor of a spec."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor

    text = spec.description
    if not spec.runtime:
        text += " [structural: read at start-up only]"
    # read_only: rclpy refuses a change ("Trying to set a read-only parameter") before any callback
    desc = ParameterDescriptor(description=text, read_only=not spec.runtime)
    constraints = []
    if spec.choices:
        constraints.append("one of: " + ", ".join(spec.choices))
    if spec.range is not None:
        lo, hi = spec.range
        if spec.type_name == "int":
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif spec.type_name == "double":
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    if not spec.runtime:
        constraints.append(f"read-only at run time: restart the node with -p {spec.name}:=VALUE or set it in the "
                           f"params file")
    desc.additional_constraints = "; ".join(constraints)
    return desc


def declare_all(node) -> dict[str, Any]:
    """Declare every parameter on ``node`` (overrides from --params-file / -p apply); their values.

    Raises :class:`ConfigError` with a clear message for a value of the wrong type or out of range.
    """
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException, ParameterException

    values: dict[str, Any] = {}
    for spec in SPECS.values():
        try:
            param = node.declare_parameter(spec.name, spec.default, descriptor_for(spec))
        except InvalidParameterTypeException as err:
            raise ConfigError(f"parameter '{spec.name}' has the wrong type ({err}); expected {spec.type_name}"
                              + (" (write e.g. 8.0, not 8)" if spec.type_name == "double" else "")) from None
        except (InvalidParameterValueException, ParameterException) as err:
            raise ConfigError(f"parameter '{spec.name}': {err}") from None
        values[spec.name] = _plain(param.value)
    return values


# Declared by rclpy.Node itself (not in SPECS, never "unknown").
RCLPY_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")


def known_parameter_names() -> list[str]:
    """The node's own parameters and those rclpy declares for every node (not the
    ``qos_overrides.*`` ones, which depend on the node's topics)."""
    return [*SPECS, *RCLPY_OWN_PARAMETERS]


def closest_parameter(name: str, known: Iterable[str] | None = None) -> str | None:
    """The known parameter name closest to a misspelt ``name`` (None if none is close): a name whose
    last dotted part is a near-copy of ``name``'s (a typo there: ``tracker.outler_px`` ->
    ``tracker.integration.outlier_px``, not ``tracker.lk.doubt_px``), else the closest whole name,
    else the closest last part."""
    import difflib

    known = list(known_parameter_names() if known is None else known)
    leaves: dict[str, list[str]] = {}
    for k in known:
        leaves.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    leaf = name.rsplit(".", 1)[-1]
    typo = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.85)
    if typo and "." in name:
        return leaves[typo[0]][0]
    guess = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    if guess:
        return guess[0]
    close = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
    return leaves[close[0]][0] if close else None


def check_parameter_names(assignments: Iterable[str]) -> None:
    """Refuse ``name:=value`` assignments (``gs-tracker bag replay-eval -p``) whose name is not a
    parameter of the node, with the closest name. ``qos_overrides.*`` names depend on the node's
    topics and are left to the node's own start-up check. Raises :class:`ConfigError`."""
    for item in assignments:
        if ":=" not in item:
            raise ConfigError(f"-p takes name:=value, got '{item}'")
        name = item.split(":=", 1)[0]
        if name in known_parameter_names() or name.startswith("qos_overrides."):
            continue
        guess = closest_parameter(name)
        raise ConfigError(f"unknown parameter '{name}'" + (f" (did you mean '{guess}'?)" if guess else "")
                          + "; docs/ros.md lists the node's parameters")


def params_files(argv: Iterable[str]) -> list[str]:
    """The ``--params-file`` paths of a command line (inside ``--ros-args``)."""
    args = list(argv)
    files, in_ros = [], False
    for i, tok in enumerate(args):
        if tok == "--ros-args":
            in_ros = True
        elif tok == "--":
            in_ros = False
        elif in_ros and tok == "--params-file" and i + 1 < len(args):
            files.append(args[i + 1])
    return files


def check_params_files(argv: Iterable[str]) -> None:
    """Refuse a missing, unreadable, binary or malformed ``--params-file`` with one line naming the
    file (and the line / column), before rcl's multi-line parser error. Raises :class:`ConfigError`."""
    import yaml

    for name in params_files(argv):
        try:
            with open(name) as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"params file not found: {name}") from None
        except OSError as err:
            raise ConfigError(f"cannot read params file {name}: {err.strerror}") from None
        except UnicodeDecodeError as err:  # random bytes, a binary file given by mistake
            raise ConfigError(f"params file {name} is not text (byte 0x{err.object[err.start]:02x} at offset "
                              f"{err.start} is not UTF-8): give a YAML params file") from None
        except yaml.YAMLError as err:
            raise ConfigError("params file " + yaml_error_text(name, err)) from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise ConfigError(f"params file {name} must map node names to {{ros__parameters: {{...}}}} "
                              f"(see config/tracker.yaml)")


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "array":
        return list(value)
    return value


# --------------------------------------------------------------------------------------------- docs
def markdown_table() -> str:
    """The parameters table of docs/ros.md (kept in sync by test_ros_params.py)."""
    rows = ["| name | type | default | run time | range / choices | description |",
            "|---|---|---|---|---|---|"]
    for spec in all_param_specs():
        if spec.range is not None:
            lo, hi = spec.range
            low_open, high_open = spec.open_ends
            allowed = f"{'(' if low_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if high_open else ']'}"
        elif spec.choices:
            allowed = ", ".join(spec.choices)
        else:
            allowed = ""
        rows.append(f"| `{spec.name}` | {spec.type_name} | `{_fmt(spec.default)}` | "
                    f"{'yes' if spec.runtime else 'no'} | {allowed} | {spec.description.replace('|', '/')} |")
    return "\n".join(rows)


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


DOC_BEGIN = "<!-- BEGIN PARAMETERS"
DOC_END = "<!-- END PARAMETERS -->"


def write_docs(path: str) -> None:
    """Replace the table between the BEGIN / END PARAMETERS markers of ``path`` (docs/ros.md)."""
    with open(path) as f:
        text = f.read()
    a = text.index(DOC_BEGIN)
    a = text.index("\n", a) + 1
    b = text.index(DOC_END)
    with open(path, "w") as f:
        f.write(text[:a] + markdown_table() + "\n" + text[b:])


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--write-docs":
        write_docs(argv[1])
        return 0
    if argv:
        sys.stderr.write("usage: python -m gs_tracker_ros.ros.parameters [--write-docs docs/ros.md]\n")
        return 2
    sys.stdout.write(markdown_table() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
