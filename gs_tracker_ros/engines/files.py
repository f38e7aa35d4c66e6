"""The files an engine runs from: the checkpoint (default: the shipped one) and its exported ONNX."""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.errors import InputError
from ..model.checkpoint import DEFAULT_CHECKPOINT
from .export import export_checkpoint, sha256_file
from .settings import default_cache_dir

log = logging.getLogger(__name__)


def checkpoint_path(model_path: str | Path | None) -> Path:
    path = Path(model_path) if model_path else DEFAULT_CHECKPOINT
    if not path.is_file():
        what = "checkpoint" if model_path else "shipped default checkpoint"
        raise InputError(f"{what} not found: {path}")
    return path


def resolve_onnx(model_path: str | Path | None, onnx_path: str | Path | None,
                 cache_dir: str | Path | None) -> tuple[Path, bool]:
    """The ONNX file to run: ``(path, managed)``.

    ``onnx_path`` is used when it exists; when it does not, the checkpoint is exported there (if
    ``model_path`` is given). Without ``onnx_path`` the checkpoint (default: the shipped one) is
    exported once into ``cache_dir`` as ``gmae-<checkpoint sha256[:16]>.onnx`` (``managed=True``:
    the file belongs to the cache and is re-exported if it turns out unreadable).
    """
    if onnx_path:
        path = Path(onnx_path)
        if path.is_file():
            return path, False
        if not model_path:
            raise InputError(f"ONNX encoder not found: {path} "
                             f"(create it with: gs-tracker export CHECKPOINT --onnx {path})")
        export_checkpoint(checkpoint_path(model_path), path)
        return path, False
    ckpt = checkpoint_path(model_path)
    sha = sha256_file(ckpt)
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / f"gmae-{sha[:16]}.onnx"
    if not path.is_file():
        log.info("exporting %s to %s", ckpt, path)
        export_checkpoint(ckpt, path, checkpoint_sha=sha)
    return path, True
