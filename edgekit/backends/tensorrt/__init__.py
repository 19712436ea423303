"""TensorRT: engines built from the explicit Q/DQ (or FP16/FP32) ONNX on the device they run on.

On any machine (host side):

- :mod:`.kit` writes a target's device kit (models, calibration caches, preflight, commands, and the
  camera package as ``edgekit-device.pyz``: :mod:`edgekit.camera.pack`);
- :mod:`.preflight` checks an ONNX file against a target before any device is touched;
- :mod:`.scales` turns the quantize stage's calibration ranges into INT8 scales for the caches.

On the device (Python 3.6+, numpy, TensorRT, pycuda or cuda-python; no torch, no onnx):

- :mod:`.kit_build` builds one engine per precision from a kit, by the installed TensorRT's route;
- :mod:`.builder` asks TensorRT for an engine (flags or strong typing, Q/DQ or calibration cache,
  DLA, memory pool, timing cache), for TensorRT 8.2 to 11;
- :mod:`.calibration_cache` reads and writes TensorRT 8.x's calibration cache;
- :mod:`.engine` keys an engine to its TensorRT version, GPU, precision, DLA core, shapes and
  calibration, and refuses to load it elsewhere;
- :mod:`.runner` runs it (pinned buffers, a stream, optional CUDA graph) behind ``infer``, over
  :mod:`.cuda`'s cuda-python or pycuda;
- :mod:`.bench` times it, :mod:`.jetson` reads the power mode and tegrastats.

The device app's ``info`` / ``build`` / ``bench`` commands are :mod:`edgekit.camera.app`'s.
"""
from edgekit.backends.tensorrt.engine import ENGINE_FILE as ARTIFACT
from edgekit.backends.tensorrt.runner import load

NAME = "tensorrt"
INT8_ENCODING = "s8"       # the symmetric Q/DQ ONNX

__all__ = ["ARTIFACT", "INT8_ENCODING", "NAME", "load"]
