"""Repository-relative paths: data and checkpoints are named relative to the checkout.

Configs, defaults and docs name data as ``../shared/data/...`` (relative to the repository root),
never as an absolute path of one machine. :func:`resolve_path` turns such a name into a path that
exists from any working directory: as given (relative to the current directory) when it exists
there, else relative to the repository root.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: the folder that holds ``gs_tracker_ros/``, ``training/configs/`` and ``checkpoints/``."""

DAVIS_UNLABELED = "../shared/data/davis_unlabeled"
"""Default self-supervised training data (relative to :data:`REPO_ROOT`)."""


def resolve_path(path: str | Path) -> Path:
    """``path`` as given if absolute or present relative to the cwd, else relative to :data:`REPO_ROOT`.

    A path that exists in neither place is returned relative to the repository root, so that the
    caller's "does not exist" error names where it was looked for.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return REPO_ROOT / p
