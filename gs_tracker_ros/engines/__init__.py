"""Inference engines for the Video-GMAE Gaussian encoder (no ROS imports; see docs/engines.md).

* :mod:`.base`        - the interface: :class:`~.base.EncoderEngine` (``engine(clip) -> GaussianClip``) and its errors.
* :mod:`.factory`     - :func:`~.factory.build_engine` (backend name -> engine).
* :mod:`.files`       - the checkpoint and its exported ONNX (found, or exported into the cache).
* :mod:`.settings`    - :class:`~.settings.EngineSettings` (backend, files, precision, cache dir, threads); light import.
* :mod:`.export`      - checkpoint -> ONNX (static shape, metadata), ONNX metadata reader, fp16 graph conversion.
* :mod:`.torch_engine`, :mod:`.onnxruntime_engine`, :mod:`.tensorrt_engine` - the backends.
* :mod:`.cache`       - the TensorRT plan cache (key, sidecar, rebuild policy).
* encoder latency per backend for ``gs-tracker bench`` is :mod:`gs_tracker_ros.evaluation.encoder_bench`.

Nothing is imported here so that ``import gs_tracker_ros.engines.settings`` stays cheap.
"""
