"""Evaluate launch/*.launch.py without launch / launch_ros (they are not installable here).

The launch file is imported and run as ``ros2 launch`` would run it, against small stand-ins for
the parts of the launch / launch_ros API it may use (actions, substitutions, event handlers,
IncludeLaunchDescription, ParameterValue), written for these tests from the documented behaviour.
The result is what launch would *do*: the processes it would start, each with the exact command
line launch_ros builds for a Node (executable from the ament index, ``--ros-args``, node name,
namespace, params files, remappings), and the event handlers it registered. A launch file may be
written in any idiomatic way the stand-ins cover (os.path.join or PathJoinSubstitution /
FindPackageShare, includes, ...); the tests check the behaviour, not the syntax.

Unsupported API raises AttributeError / ImportError naming it: extend the stand-in then, in the
documented launch semantics.

``python test/launch_stand_in.py --show-args launch/tracker.launch.py`` prints the arguments in the
layout of ``ros2 launch ... --show-args``; ``--write-docs docs/ros.md`` regenerates docs/ros.md's
SHOW-ARGS blocks from the launch files.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable


# ------------------------------------------------------------------------------------------ context
@dataclass
class Started:
    """A process the launch would start: ``cmd`` fully substituted; ``action`` the action."""

    kind: str  # "node" or "process"
    cmd: list[str]
    action: Any
    delay_s: float = 0.0
    node_name: str | None = None
    namespace: str | None = None
    lifecycle: bool = False  # a launch_ros LifecycleNode


@dataclass
class Context:
    """What evaluating a launch description produced."""

    configs: dict[str, str]
    declared: dict[str, Any] = field(default_factory=dict)  # name -> DeclareLaunchArgument
    used: set[str] = field(default_factory=set)  # launch configurations that were substituted
    started: list[Started] = field(default_factory=list)
    handlers: list[Any] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # launch files evaluated (includes too)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="launch_stand_in_")))
    _delay: float = 0.0

    @property
    def launch_configurations(self) -> dict[str, str]:
        """launch's LaunchContext.launch_configurations (what an OpaqueFunction reads)."""
        return self.configs

    def nodes(self) -> list[Started]:
        return [s for s in self.started if s.kind == "node"]

    def processes(self) -> list[Started]:
        return [s for s in self.started if s.kind == "process"]


# ------------------------------------------------------------------------------------ substitutions
class Substitution:
    def perform(self, ctx: Context) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        """How ``ros2 launch --show-args`` shows an unevaluated substitution."""
        raise NotImplementedError


def describe(value: Any) -> str:
    """A default value as ``--show-args`` shows it: text quoted, substitutions described."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, Substitution):
        return value.describe()
    return " + ".join(describe(v) for v in value)


def perform(value: Any, ctx: Context) -> str:
    """launch's rule: a str, a substitution, or a list of them concatenated."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Substitution):
        return value.perform(ctx)
    if isinstance(value, (list, tuple)):
        return "".join(perform(v, ctx) for v in value)
    raise TypeError(f"not a substitution: {value!r}")


class LaunchConfiguration(Substitution):
    def __init__(self, variable_name: Any, default: Any = None) -> None:
        self.name, self.default = variable_name, default

    def perform(self, ctx: Context) -> str:
        name = perform(self.name, ctx)
        ctx.used.add(name)
        if name in ctx.configs:
            return ctx.configs[name]
        if self.default is not None:
            return perform(self.default, ctx)
        raise KeyError(f"launch configuration '{name}' is not set (no argument, no default)")

    def describe(self) -> str:
        return f"LaunchConfig({describe(self.name)})"


class TextSubstitution(Substitution):
    def __init__(self, *, text: str) -> None:
        self.text = text

    def perform(self, ctx: Context) -> str:
        return self.text

    def describe(self) -> str:
        return f"'{self.text}'"


class PathJoinSubstitution(Substitution):
    def __init__(self, substitutions: Iterable[Any]) -> None:
        self.parts = list(substitutions)

    def perform(self, ctx: Context) -> str:
        return os.path.join(*[perform(p, ctx) for p in self.parts])

    def describe(self) -> str:
        return "PathJoinSubstitution(" + ", ".join(describe(p) for p in self.parts) + ")"


class FindPackageShare(Substitution):
    def __init__(self, package: Any) -> None:
        self.package = package

    def perform(self, ctx: Context) -> str:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory(perform(self.package, ctx))

    def describe(self) -> str:
        return f"FindPackageShare(pkg={describe(self.package)})"


class FindPackagePrefix(Substitution):
    def __init__(self, package: Any) -> None:
        self.package = package

    def perform(self, ctx: Context) -> str:
        from ament_index_python.packages import get_package_prefix

        return get_package_prefix(perform(self.package, ctx))

    def describe(self) -> str:
        return f"FindPackagePrefix(pkg={describe(self.package)})"


class ParameterValue:
    """launch_ros.parameter_descriptions.ParameterValue: ``value_type=str`` keeps the text as is."""

    def __init__(self, value: Any, *, value_type: Any = None) -> None:
        self.value, self.value_type = value, value_type


# ------------------------------------------------------------------------------------------ actions
class Action:
    condition = None

    def execute(self, ctx: Context) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


def run_entities(entities: Iterable[Any], ctx: Context) -> None:
    for entity in entities:
        if isinstance(entity, LaunchDescription):
            run_entities(entity.entities, ctx)
        elif isinstance(entity, Action):
            entity.execute(ctx)
        else:
            raise TypeError(f"not a launch entity: {entity!r}")


class LaunchDescription:
    def __init__(self, initial_entities: Iterable[Any] | None = None) -> None:
        self.entities = list(initial_entities or [])

    def add_action(self, action: Any) -> None:
        self.entities.append(action)


class DeclareLaunchArgument(Action):
    def __init__(self, name: str, *, default_value: Any = None, description: str | None = None,
                 choices: Iterable[str] | None = None) -> None:
        self.name, self.default_value, self.description = name, default_value, description
        self.choices = list(choices) if choices is not None else None
        if self.choices is not None:  # launch checks a plain default against the choices at once
            if not self.choices:
                raise RuntimeError("Provided choices arg is empty. Use None to ignore the choice list.")
            if isinstance(default_value, str) and default_value not in self.choices:
                raise RuntimeError(f"launch argument '{name}': default {default_value!r} not in {self.choices}")

    def execute(self, ctx: Context) -> None:
        ctx.declared[self.name] = self
        if self.name not in ctx.configs:
            if self.default_value is None:
                raise KeyError(f"required launch argument '{self.name}' was not given")
            ctx.configs[self.name] = perform(self.default_value, ctx)
        if self.choices is not None and ctx.configs[self.name] not in self.choices:
            raise ValueError(f"launch argument '{self.name}' = {ctx.configs[self.name]!r} not in {self.choices}")


class Node(Action):
    """launch_ros.actions.Node: the command line is the one launch_ros builds."""

    def __init__(self, *, executable: Any, package: Any = None, name: Any = None, namespace: Any = None,
                 parameters: Iterable[Any] | None = None, remappings: Iterable[Any] | None = None,
                 arguments: Iterable[Any] | None = None, ros_arguments: Iterable[Any] | None = None,
                 **other: Any) -> None:
        self.executable, self.package, self.name, self.namespace = executable, package, name, namespace
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.arguments = list(arguments or [])
        self.ros_arguments = list(ros_arguments or [])
        self.other = other

    def execute(self, ctx: Context) -> None:
        from ament_index_python.packages import get_package_prefix

        exe = perform(self.executable, ctx)
        if self.package is not None:
            package = perform(self.package, ctx)
            exe = str(Path(get_package_prefix(package)) / "lib" / package / exe)
        cmd = [exe, *[perform(a, ctx) for a in self.arguments], "--ros-args",
               *[perform(a, ctx) for a in self.ros_arguments]]
        name = perform(self.name, ctx) if self.name is not None else None
        ns = perform(self.namespace, ctx) if self.namespace is not None else ""
        if ns and not ns.startswith("/"):
            ns = "/" + ns
        if name:
            cmd += ["-r", f"__node:={name}"]
        if ns:
            cmd += ["-r", f"__ns:={ns}"]
        # launch_ros keys a parameter dict by the node's full name when name and namespace are
        # given, else by /** (every node of the process)
        key = f"{ns}/{name}" if name and self.namespace is not None else "/**"
        for param in self.parameters:
            cmd += ["--params-file", self._params_file(param, ctx, key)]
        for src, dst in self.remappings:
            cmd += ["-r", f"{perform(src, ctx)}:={perform(dst, ctx)}"]
        ctx.started.append(Started("node", cmd, self, ctx._delay, name, ns, lifecycle=self.lifecycle))

    lifecycle = False

    @staticmethod
    def _params_file(param: Any, ctx: Context, node_key: str = "/**") -> str:
        if not isinstance(param, dict):
            return perform(param, ctx)  # a params file path
        import yaml

        values = {}
        for key, value in param.items():
            if isinstance(value, ParameterValue):
                text = perform(value.value, ctx)
                values[perform(key, ctx)] = text if value.value_type is str else yaml.safe_load(text)
            elif isinstance(value, (Substitution, list, tuple)) and not isinstance(value, (bool, int, float)):
                text = perform(value, ctx)
                loaded = yaml.safe_load(text)
                if loaded is None:
                    raise ValueError(f"parameter '{key}' evaluates to an empty value: wrap it in "
                                     f"ParameterValue(..., value_type=str)")
                values[perform(key, ctx)] = loaded
            else:
                values[perform(key, ctx)] = value
        path = ctx.tmp / f"params_{len(list(ctx.tmp.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump({node_key: {"ros__parameters": values}}))
        return str(path)


class LifecycleNode(Node):
    """launch_ros.actions.LifecycleNode: a Node whose name is required (launch_ros raises without
    one); launch can then send it lifecycle transitions (ChangeState events)."""

    lifecycle = True

    def __init__(self, *, name: Any = None, **kwargs: Any) -> None:
        if name is None:
            raise RuntimeError("'name' must not be None.")
        super().__init__(name=name, **kwargs)


class OpaqueFunction(Action):
    """launch.actions.OpaqueFunction: ``function(context, *args, **kwargs)`` runs when the action
    executes; the actions it returns are executed next."""

    def __init__(self, *, function: Any, args: Iterable[Any] | None = None, kwargs: dict | None = None) -> None:
        self.function, self.args, self.kwargs = function, list(args or []), dict(kwargs or {})

    def execute(self, ctx: Context) -> None:
        run_entities(self.function(ctx, *self.args, **self.kwargs) or [], ctx)


class ExecuteProcess(Action):
    def __init__(self, *, cmd: Iterable[Any], name: Any = None, **other: Any) -> None:
        self.cmd, self.name, self.other = list(cmd), name, other

    def execute(self, ctx: Context) -> None:
        ctx.started.append(Started("process", [perform(c, ctx) for c in self.cmd], self, ctx._delay))


class TimerAction(Action):
    def __init__(self, *, period: Any, actions: Iterable[Any]) -> None:
        self.period, self.actions = period, list(actions)

    def execute(self, ctx: Context) -> None:
        before = ctx._delay
        ctx._delay = before + float(perform(self.period, ctx) if not isinstance(self.period, (int, float))
                                    else self.period)
        try:
            run_entities(self.actions, ctx)
        finally:
            ctx._delay = before


class RegisterEventHandler(Action):
    def __init__(self, event_handler: Any) -> None:
        self.event_handler = event_handler

    def execute(self, ctx: Context) -> None:
        ctx.handlers.append(self.event_handler)


class OnProcessExit:
    def __init__(self, *, target_action: Any = None, on_exit: Any = None) -> None:
        self.target_action, self.on_exit = target_action, on_exit


class EmitEvent(Action):
    def __init__(self, *, event: Any) -> None:
        self.event = event

    def execute(self, ctx: Context) -> None:
        pass  # only reached through event handlers, which these tests call directly


class Shutdown:
    """launch.events.Shutdown."""

    def __init__(self, *, reason: str = "reason not given") -> None:
        self.reason = reason


class ShutdownAction(Action):
    """launch.actions.Shutdown (the action that emits a Shutdown event)."""

    def __init__(self, *, reason: str = "reason not given") -> None:
        self.reason = reason

    def execute(self, ctx: Context) -> None:
        pass


class PythonLaunchDescriptionSource:
    def __init__(self, launch_file_path: Any) -> None:
        self.path = launch_file_path


class IncludeLaunchDescription(Action):
    def __init__(self, launch_description_source: Any, *, launch_arguments: Any = None) -> None:
        self.source = launch_description_source
        self.launch_arguments = list(launch_arguments or [])

    def execute(self, ctx: Context) -> None:
        path = perform(self.source.path, ctx)
        args = {perform(k, ctx): perform(v, ctx) for k, v in self.launch_arguments}
        # launch scopes an include's configurations: given arguments plus the includer's
        saved = dict(ctx.configs)
        ctx.configs.update(args)
        try:
            run_entities([load(path, ctx)], ctx)
        finally:
            ctx.configs.clear()
            ctx.configs.update(saved)


# ------------------------------------------------------------------------------------------ modules
def _modules() -> dict[str, types.ModuleType]:
    def module(name: str, **attrs: Any) -> types.ModuleType:
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        return m

    actions = module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, ExecuteProcess=ExecuteProcess,
                     TimerAction=TimerAction, RegisterEventHandler=RegisterEventHandler, EmitEvent=EmitEvent,
                     IncludeLaunchDescription=IncludeLaunchDescription, Shutdown=ShutdownAction,
                     OpaqueFunction=OpaqueFunction)
    substitutions = module("launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                           TextSubstitution=TextSubstitution, PathJoinSubstitution=PathJoinSubstitution)
    mods = {
        "launch": module("launch", LaunchDescription=LaunchDescription, actions=actions, substitutions=substitutions),
        "launch.actions": actions,
        "launch.substitutions": substitutions,
        "launch.event_handlers": module("launch.event_handlers", OnProcessExit=OnProcessExit),
        "launch.events": module("launch.events", Shutdown=Shutdown),
        "launch.launch_description_sources": module("launch.launch_description_sources",
                                                    PythonLaunchDescriptionSource=PythonLaunchDescriptionSource),
        "launch_ros": module("launch_ros"),
        "launch_ros.actions": module("launch_ros.actions", Node=Node, LifecycleNode=LifecycleNode),
        "launch_ros.substitutions": module("launch_ros.substitutions", FindPackageShare=FindPackageShare,
                                           FindPackagePrefix=FindPackagePrefix),
        "launch_ros.parameter_descriptions": module("launch_ros.parameter_descriptions",
                                                    ParameterValue=ParameterValue),
    }
    return mods


def load(path: str | Path, ctx: Context) -> LaunchDescription:
    """Import a launch file against the stand-ins and call its generate_launch_description()."""
    mods = _modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        spec = importlib.util.spec_from_file_location(f"_launch_{len(ctx.files)}", str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ctx.files.append(str(path))
        return module.generate_launch_description()
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def evaluate(path: str | Path, arguments: dict[str, str] | None = None, ament_prefix_path: str | None = None) -> Context:
    """What ``ros2 launch <path> name:=value ...`` would start (see the module docstring)."""
    old = os.environ.get("AMENT_PREFIX_PATH")
    if ament_prefix_path is not None:
        os.environ["AMENT_PREFIX_PATH"] = ament_prefix_path
    try:
        ctx = Context(configs=dict(arguments or {}))
        run_entities([load(path, ctx)], ctx)
        return ctx
    finally:
        if ament_prefix_path is not None:
            if old is None:
                os.environ.pop("AMENT_PREFIX_PATH", None)
            else:
                os.environ["AMENT_PREFIX_PATH"] = old


def on_exit_actions(handler: OnProcessExit, returncode: int, shutting_down: bool = False) -> list[Any]:
    """The actions an OnProcessExit handler gives for a process that exited with ``returncode``
    (a callable on_exit is called with a minimal event and context, as launch does; what it
    raises propagates, as it makes ``ros2 launch`` fail)."""
    on_exit = handler.on_exit
    if callable(on_exit) and not isinstance(on_exit, (list, Action)):
        event = types.SimpleNamespace(returncode=returncode, action=handler.target_action,
                                      process_name=getattr(handler.target_action, "name", None))
        result = on_exit(event, types.SimpleNamespace(is_shutdown=shutting_down))
        return list(result or [])
    return list(on_exit or [])


def declared_arguments(path: str | Path) -> list[DeclareLaunchArgument]:
    """The launch arguments of a launch file in the order ``ros2 launch --show-args`` lists them
    (those declared in its launch description, nested descriptions included; not those an
    OpaqueFunction or an include would declare when run)."""
    def walk(entities: Iterable[Any]) -> Iterable[DeclareLaunchArgument]:
        for entity in entities:
            if isinstance(entity, LaunchDescription):
                yield from walk(entity.entities)
            elif isinstance(entity, DeclareLaunchArgument):
                yield entity

    return list(walk([load(path, Context(configs={}))]))


def show_args(path: str | Path) -> str:
    """What ``ros2 launch PACKAGE FILE --show-args`` prints for a launch file, in its layout: each
    argument quoted, its description (with the valid choices, as launch appends them) and its
    default (text quoted, a substitution described, not evaluated)."""
    lines = ["Arguments (pass arguments as '<name>:=<value>'):"]
    for arg in declared_arguments(path):
        text = arg.description or "no description given"
        if arg.choices is not None:
            text += " Valid choices are: " + str(arg.choices)
        default = "(no default: required)" if arg.default_value is None else f"(default: {describe(arg.default_value)})"
        lines += ["", f"    '{arg.name}':", f"        {text}", f"        {default}"]
    return "\n".join(lines) + "\n"


SHOW_ARGS_BEGIN = "<!-- BEGIN SHOW-ARGS {} (generated: python test/launch_stand_in.py --write-docs docs/ros.md) -->"
SHOW_ARGS_END = "<!-- END SHOW-ARGS -->"


def show_args_block(launch_file: str, package: str = "gs_tracker_ros") -> str:
    """The docs block of one launch file (``launch_file`` relative to the repository)."""
    repo = Path(__file__).resolve().parents[1]
    name = Path(launch_file).name
    return (f"```text\n$ ros2 launch {package} {name} --show-args\n"
            f"{show_args(repo / launch_file)}```\n")


def write_docs(doc: str | Path) -> list[str]:
    """Regenerate every SHOW-ARGS block of ``doc`` in place; the launch files it names."""
    import re

    doc = Path(doc)
    text = doc.read_text()
    begin = re.escape(SHOW_ARGS_BEGIN).replace(re.escape("{}"), r"(\S+)")
    pattern = re.compile(f"({begin}\n)(.*?)({re.escape(SHOW_ARGS_END)})", re.S)
    names: list[str] = []

    def repl(m: re.Match) -> str:
        names.append(m.group(2))
        return m.group(1) + show_args_block(m.group(2)) + m.group(4)

    doc.write_text(pattern.sub(repl, text))
    return names


def _main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--show-args":
        sys.stdout.write(show_args(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "--write-docs":
        names = write_docs(argv[1])
        print(f"{argv[1]}: --show-args of {', '.join(names) or 'nothing (no SHOW-ARGS markers)'}")
        return 0
    sys.stderr.write("usage: python test/launch_stand_in.py --show-args LAUNCH_FILE | --write-docs docs/ros.md\n")
    return 2


__all__ = ["Context", "Started", "evaluate", "on_exit_actions", "show_args", "write_docs"]


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
