"""Save / load Video-GMAE checkpoints (plain dicts of tensors; ``torch.load(weights_only=True)``)."""

from __future__ import annotations

import io
from pathlib import Path

import torch

from ..core.errors import InputError, TrackerError
from ..core.output import write_bytes
from ..core.paths import REPO_ROOT
from .gmae import GMAE, ModelConfig

DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "gmae_tiny.pt"
"""The shipped Video-GMAE checkpoint (a few MB, fp16; its command, config and log beside it)."""

def save_checkpoint(path: str | Path, model: GMAE, extra: dict | None = None, half: bool = False) -> Path:
    """Write ``{"format", "model_config", "model", **extra}``; ``half`` stores float weights as fp16."""
    path = Path(path)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in model.state_dict().items()}
    blob = {"format": "gs_tracker_ros.gmae/1", "model_config": model.cfg.to_dict(), "model": state}
    blob.update(extra or {})
    # serialised in memory, then written whole or not at all (a full disk is one OutputError
    # naming its cause; torch's own file writer reports it as an assertion about file offsets)
    buffer = io.BytesIO()
    torch.save(blob, buffer)
    return write_bytes(path, buffer.getvalue())


def load_checkpoint_blob(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # report any unpickling problem as a user error
        raise InputError(f"cannot read checkpoint {path}: {_load_problem(err)}") from None
    if not isinstance(blob, dict) or "model" not in blob or "model_config" not in blob:
        raise InputError(f"{path} is not a gs_tracker_ros GMAE checkpoint")
    return blob


def _load_problem(err: Exception) -> str:
    """One line saying why ``torch.load`` refused a file. PyTorch's own text spans many lines and,
    for a file the safe (weights-only) loader rejects, suggests ``weights_only=False``, which
    would execute whatever the file contains: never pass that advice on."""
    if isinstance(err, KeyError):  # torch.load's magic-number look-up on a file of another kind
        return "corrupt, truncated or not a PyTorch checkpoint (not a PyTorch file)"
    text = str(err)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and "weights_only" not in ln]
    detail = lines[0].split(". ")[0].rstrip(".") if lines else type(err).__name__
    return f"corrupt, truncated or not a PyTorch checkpoint ({detail[:200]})"


def load_model(path: str | Path, device: str | torch.device = "cpu") -> GMAE:
    """Build a :class:`GMAE` from a checkpoint (weights cast to float32), in eval mode.

    Raises :class:`InputError` naming the file when it is missing, unreadable or does not fit the
    current model (e.g. a checkpoint of an older architecture).
    """
    blob = load_checkpoint_blob(path, map_location="cpu")
    try:
        model = GMAE(ModelConfig.from_dict(blob["model_config"]))
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["model"].items()}
        model.load_state_dict(state)
    except TrackerError:
        raise
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()
        raise InputError(f"checkpoint {path} does not fit the current Video-GMAE model: "
                         f"{' '.join(s.strip() for s in first[:2]) if first else type(err).__name__}") from None
    return model.to(device).eval()
