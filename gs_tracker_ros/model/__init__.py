"""Video-GMAE: masked ViT encoder that predicts 3-D Gaussians moving over a clip.

The model is a plain ``nn.Module`` (:class:`GMAE`); running it for tracking (torch, ONNX Runtime,
TensorRT) is the job of :mod:`gs_tracker_ros.engines` (``TorchEngine`` for eager torch).
"""

from .checkpoint import DEFAULT_CHECKPOINT, load_model, save_checkpoint
from .gaussians import FIELDS, GaussianClip, render_clip
from .gmae import GMAE, ModelConfig

__all__ = ["DEFAULT_CHECKPOINT", "FIELDS", "GMAE", "GaussianClip", "ModelConfig", "load_model", "render_clip",
           "save_checkpoint"]
