"""Learned dense image features (ALIKED descriptor maps) for matching-based motion and relocalisation.

* :mod:`.deform_conv` - deformable convolution in plain torch (``grid_sample``).
* :mod:`.aliked`      - :class:`~.aliked.AlikedDense`, the dense ALIKED network and its pretrained weights.
* :mod:`.aliked_onnx` - the same network exported to ONNX (cached on disk) on ONNX Runtime.
* :mod:`.extractor`   - :class:`~.extractor.DenseDescriptorExtractor`: numpy frame -> :class:`~.extractor.DescriptorMap`.
"""

from .aliked import ALIKED_SIZES, AlikedDense, AlikedWeightsError, locate_weights
from .extractor import DenseDescriptorConfig, DenseDescriptorExtractor, DescriptorMap

__all__ = ["ALIKED_SIZES", "AlikedDense", "AlikedWeightsError", "DenseDescriptorConfig",
           "DenseDescriptorExtractor", "DescriptorMap", "locate_weights"]
