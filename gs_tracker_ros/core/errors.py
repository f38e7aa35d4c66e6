"""User-facing errors. The CLI and the node print ``str(err)`` of these without a traceback."""


class TrackerError(ValueError):
    """Bad input or configuration, with a message that names the problem."""


class InputError(TrackerError):
    """An input (video, folder, image, query file, dataset path) cannot be used."""


class ConfigError(TrackerError):
    """A configuration value is out of range or of the wrong type."""


def check_range(ok: bool, key: str, value: object, expectation: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` and its ``value`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"config key '{key}' = {value!r} is out of range: must be {expectation}")
