"""Run a TensorRT engine behind the same ``infer(batch) -> outputs`` as ONNX Runtime and OpenVINO.

Pinned host buffers and device buffers are allocated once; each call copies the batch in, enqueues
the engine on one stream, copies the outputs back and synchronizes. With ``cuda_graph=True`` (needs
cuda-python) the copies and the engine are captured once into a CUDA graph and replayed.
The name-based tensor API (TensorRT >= 8.5: ``set_tensor_address`` + ``execute_async_v3``) is used
where present, the binding-index API (``execute_async_v2``) on TensorRT 8.2.
"""
import importlib
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np

from edgekit.backends.tensorrt import engine as engine_keys
from edgekit.backends.tensorrt.cuda import cuda_api
from edgekit.errors import EdgekitError


def import_tensorrt() -> Any:
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        trt = None
    if trt is None or not hasattr(trt, "Builder"):    # a folder of type stubs alone imports as an empty package
        raise EdgekitError("TensorRT's Python bindings are not installed here (on a Jetson they come with "
                           "JetPack: sudo apt install python3-libnvinfer)")
    return trt


def _io(trt: Any, engine: Any) -> List[Tuple[str, bool, Tuple[int, ...], np.dtype]]:
    """(name, is_input, shape, numpy dtype) for every I/O tensor, in the engine's order."""
    if hasattr(engine, "num_io_tensors"):
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        return [(n, engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT, tuple(engine.get_tensor_shape(n)),
                 np.dtype(trt.nptype(engine.get_tensor_dtype(n)))) for n in names]
    return [(engine.get_binding_name(i), bool(engine.binding_is_input(i)), tuple(engine.get_binding_shape(i)),
             np.dtype(trt.nptype(engine.get_binding_dtype(i)))) for i in range(engine.num_bindings)]


class TensorRTRunner:
    backend = "tensorrt"

    def __init__(self, path: Path, threads: Optional[int] = None, batch: Optional[int] = None, *,
                 cuda_graph: bool = False, trt: Any = None, cuda: Any = None) -> None:
        path = self.path = Path(path)
        self.trt = trt or import_tensorrt()
        self._owns_cuda = cuda is None          # an adapter made here is closed here, also when loading fails
        self.cuda = cuda or cuda_api()
        self.host, self.dev, self.graph, self._events = {}, {}, None, None
        try:
            self._load(path, batch, cuda_graph)
        except BaseException:
            self.close()                        # pycuda aborts the interpreter at exit on a context left pushed
            raise

    def _load(self, path: Path, batch: Optional[int], cuda_graph: bool) -> None:
        self.device = engine_keys.device_facts(self.trt, self.cuda)
        self.keys = engine_keys.check(path.parent, self.device)
        logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.runtime = self.trt.Runtime(logger)
        if self.keys.get("dla_core") is not None:     # the core a DLA engine runs on is the runtime's to say
            self.runtime.DLA_core = int(self.keys["dla_core"])
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EdgekitError(f"{path}: TensorRT {self.device.tensorrt} could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        tensors = _io(self.trt, self.engine)
        inputs = [t for t in tensors if t[1]]
        if len(inputs) != 1:
            raise EdgekitError(f"{path}: expected one input tensor, the engine has {len(inputs)}")
        self.input_shape = inputs[0][2]
        if batch and batch != self.input_shape[0]:
            raise EdgekitError(f"{path}: the engine was built for batch {self.input_shape[0]}, not {batch}; "
                               "engines have static shapes: rebuild for that batch")
        self.stream = self.cuda.stream()
        for name, _, shape, dtype in tensors:
            self.host[name] = self.cuda.pinned(shape, dtype)
            self.dev[name] = self.cuda.alloc(self.host[name].nbytes)
        self.input_name = inputs[0][0]
        self.output_names = [t[0] for t in tensors if not t[1]]
        self.v3 = hasattr(self.context, "execute_async_v3")
        if self.v3:
            for name, ptr in self.dev.items():
                self.context.set_tensor_address(name, ptr)
        else:
            self.bindings = [self.dev[t[0]] for t in tensors]
        if cuda_graph:
            if not self.cuda.graphs:
                raise EdgekitError(f"CUDA graphs need cuda-python; {self.cuda.name} is in use")
            self._run_once()                      # TensorRT allocates lazily on the first enqueue
            self.graph = self.cuda.capture(self.stream, self._enqueue_all)

    def _enqueue(self) -> None:
        handle = self.cuda.handle(self.stream)
        ok = (self.context.execute_async_v3(handle) if self.v3
              else self.context.execute_async_v2(self.bindings, handle))
        if ok is False:
            raise EdgekitError("TensorRT failed to enqueue the engine")

    def _enqueue_all(self) -> None:
        self.cuda.h2d(self.dev[self.input_name], self.host[self.input_name], self.stream)
        self._enqueue()
        for name in self.output_names:
            self.cuda.d2h(self.host[name], self.dev[name], self.stream)

    def _run_once(self) -> None:
        if self.graph is not None:
            self.cuda.launch(self.graph, self.stream)
        else:
            self._enqueue_all()
        self.cuda.sync(self.stream)

    def infer(self, batch: np.ndarray) -> List[np.ndarray]:
        if tuple(batch.shape) != self.input_shape:
            raise EdgekitError(f"batch of shape {tuple(batch.shape)} for an engine built for {self.input_shape}")
        np.copyto(self.host[self.input_name], batch, casting="same_kind")
        self._run_once()
        return [self.host[n].astype(np.float32, copy=True) for n in self.output_names]

    def close(self) -> None:
        """Release the GPU buffers, stream, graph, events and (pycuda) context of the adapter this runner made;
        one handed in is its caller's to close. The runner is unusable after."""
        self.host, self.dev, self.graph, self._events = {}, {}, None, None
        if self._owns_cuda:
            self.cuda.close()

    def __enter__(self) -> "TensorRTRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def compute_ms(self) -> float:
        """GPU time of one engine execution alone (no copies), from two CUDA events made once per runner."""
        if self._events is None:
            self._events = (self.cuda.event(), self.cuda.event())
        start, end = self._events
        self.cuda.record(start, self.stream)
        self._enqueue()
        self.cuda.record(end, self.stream)
        return self.cuda.elapsed_ms(start, end)


def load(path: Path, threads: Optional[int] = None, batch: Optional[int] = None, **kwargs: Any) -> TensorRTRunner:
    return TensorRTRunner(path, threads, batch, **kwargs)
