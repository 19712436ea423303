"""TensorRT: engines built from the explicit Q/DQ (or FP16/FP32) ONNX on the device they run on.

- :mod:`.builder` asks TensorRT for an engine (flags or strong typing, Q/DQ or calibration cache,
  DLA, memory pool, timing cache), for TensorRT 8.2 to 11;
- :mod:`.calibration_cache` writes TensorRT 8.x's calibration cache from edgekit's calibration;
- :mod:`.engine` keys an engine to its TensorRT version, GPU, precision, DLA core, shapes and
  calibration, and refuses to load it elsewhere;
- :mod:`.runner` runs it (pinned buffers, a stream, optional CUDA graph) behind ``infer``;
- :mod:`.preflight` checks an ONNX file against a target before any device is touched;
- :mod:`.jetson` reads the power mode and tegrastats for ``bench`` on a device.
"""
from edgekit.backends.tensorrt.engine import ENGINE_FILE as ARTIFACT
from edgekit.backends.tensorrt.runner import load

NAME = "tensorrt"
INT8_ENCODING = "s8"       # the symmetric Q/DQ ONNX

__all__ = ["ARTIFACT", "INT8_ENCODING", "NAME", "load"]
