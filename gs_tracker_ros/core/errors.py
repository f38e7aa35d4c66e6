"""User-facing errors. The CLI and the node print ``str(err)`` of these without a traceback."""


class TrackerError(ValueError):
    """Bad input or configuration, with a message that names the problem."""


class InputError(TrackerError):
    """An input (video, folder, image, query file, dataset path) cannot be used."""


class ConfigError(TrackerError):
    """A configuration value is out of range or of the wrong type."""


class OutputError(InputError):
    """An output (file or bag folder) cannot be written: its folder is not writable, the disk is
    full, ... The message names the path and the cause; nothing half-written is left behind."""


class InputWarning(UserWarning):
    """An input can be used but is not what it claims to be (e.g. a truncated video); the CLI
    prints it as one ``warning:`` line."""


def check_range(ok: bool, key: str, value: object, expectation: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` and its ``value`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"config key '{key}' = {value!r} is out of range: must be {expectation}")


def yaml_error_text(path: object, err: Exception) -> str:
    """One line for a YAML parse error: the file, the line / column (1-based) and the problem
    (the parser's own message spans several lines and quotes the text)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or getattr(err, "context", None)
    if not problem:
        problem = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{path} is not valid YAML: {where}{problem}"
