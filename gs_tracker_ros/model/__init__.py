"""Video-GMAE: masked ViT encoder that predicts 3-D Gaussians moving over a clip."""

from .checkpoint import load_encoder, load_model, save_checkpoint
from .gaussians import FIELDS, GaussianClip
from .gmae import GMAE, ModelConfig, TorchGaussianEncoder

__all__ = ["FIELDS", "GMAE", "GaussianClip", "ModelConfig", "TorchGaussianEncoder", "load_encoder", "load_model",
           "save_checkpoint"]
