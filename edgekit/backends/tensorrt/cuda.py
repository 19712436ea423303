"""The few CUDA runtime calls the TensorRT runner needs, over cuda-python or pycuda.

cuda-python (NVIDIA's bindings, ``pip install cuda-python``) is preferred: it also captures CUDA
graphs. pycuda (the ``jetson`` extra) serves everything but graphs. Both are imported lazily.
Each adapter frees what it allocated on ``close()``: buffers, streams, graphs and events (pycuda also pops
the context it pushed, or pycuda aborts at exit with "context stack was not empty"). Whoever makes an
adapter closes it, also on the way out of an error.
"""
import ctypes
import importlib
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from edgekit.errors import EdgekitError


def _import_cudart() -> Any:
    for name in ("cuda.bindings.runtime", "cuda.cudart"):   # cuda-python >= 12.6, then older releases
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


class CudaPython:
    """cuda-python's runtime API: every call returns ``(error, *values)``."""

    name = "cuda-python"
    graphs = True

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self._owned: List[Tuple[str, Any]] = []   # (free function, handle), freed in reverse on close()

    def _ok(self, result: Any) -> Any:
        result = result if isinstance(result, tuple) else (result,)
        err, values = result[0], result[1:]
        if int(err) != 0:
            raise EdgekitError(f"CUDA error {err}")
        return values[0] if len(values) == 1 else values

    def device(self) -> Tuple[str, str]:
        """(name, compute capability "major.minor") of the current device."""
        dev = self._ok(self.rt.cudaGetDevice())
        prop = self._ok(self.rt.cudaGetDeviceProperties(dev))
        name = prop.name.decode(errors="replace").rstrip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        return name, f"{prop.major}.{prop.minor}"

    def alloc(self, nbytes: int) -> int:
        ptr = int(self._ok(self.rt.cudaMalloc(nbytes)))
        self._owned.append(("cudaFree", ptr))
        return ptr

    def pinned(self, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        ptr = int(self._ok(self.rt.cudaMallocHost(nbytes)))
        self._owned.append(("cudaFreeHost", ptr))
        buf = (ctypes.c_byte * nbytes).from_address(ptr)
        return np.frombuffer(buf, dtype=dtype).reshape(shape)   # valid until close()

    def stream(self) -> Any:
        stream = self._ok(self.rt.cudaStreamCreate())
        self._owned.append(("cudaStreamDestroy", stream))
        return stream

    @staticmethod
    def handle(stream: Any) -> int:
        """The stream as TensorRT takes it: the ``cudaStream_t`` value itself. (``getPtr()`` would be the
        address of the Python object's copy of it, which no CUDA call accepts.)"""
        return int(stream)

    def h2d(self, dst: int, host: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._ok(self.rt.cudaMemcpyAsync(dst, host.ctypes.data, host.nbytes, kind, stream))

    def d2h(self, host: np.ndarray, src: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._ok(self.rt.cudaMemcpyAsync(host.ctypes.data, src, host.nbytes, kind, stream))

    def sync(self, stream: Any) -> None:
        self._ok(self.rt.cudaStreamSynchronize(stream))

    def event(self) -> Any:
        event = self._ok(self.rt.cudaEventCreate())
        self._owned.append(("cudaEventDestroy", event))
        return event

    def record(self, event: Any, stream: Any) -> None:
        self._ok(self.rt.cudaEventRecord(event, stream))

    def elapsed_ms(self, start: Any, end: Any) -> float:
        self._ok(self.rt.cudaEventSynchronize(end))
        return float(self._ok(self.rt.cudaEventElapsedTime(start, end)))

    def capture(self, stream: Any, enqueue: Any) -> Any:
        """Record what ``enqueue()`` puts on ``stream`` into an executable CUDA graph."""
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal
        self._ok(self.rt.cudaStreamBeginCapture(stream, mode))
        enqueue()
        graph = self._ok(self.rt.cudaStreamEndCapture(stream))
        try:
            # cudaGraphInstantiate takes (graph, flags) on CUDA 12 but (graph, log buffer, size) on CUDA 11;
            # cudaGraphInstantiateWithFlags(graph, flags) is the same call on both (CUDA >= 11.4: JetPack 5+)
            if not hasattr(self.rt, "cudaGraphInstantiateWithFlags"):
                raise EdgekitError("CUDA graphs need CUDA >= 11.4 (cudaGraphInstantiateWithFlags); "
                                   "run without --cuda-graph")
            executable = self._ok(self.rt.cudaGraphInstantiateWithFlags(graph, 0))
        finally:
            self._ok(self.rt.cudaGraphDestroy(graph))      # the executable graph keeps what it needs
        self._owned.append(("cudaGraphExecDestroy", executable))
        return executable

    def launch(self, graph: Any, stream: Any) -> None:
        self._ok(self.rt.cudaGraphLaunch(graph, stream))

    def close(self) -> None:
        """Free every buffer, stream and graph this adapter made (newest first); safe to call twice."""
        while self._owned:
            free, handle = self._owned.pop()
            self._ok(getattr(self.rt, free)(handle))


class PyCuda:
    """pycuda's driver API with the device's primary context."""

    name = "pycuda"
    graphs = False

    def __init__(self, driver: Any) -> None:
        self.cuda = driver
        driver.init()
        self.dev = driver.Device(0)
        self.ctx = self.dev.retain_primary_context()
        self.ctx.push()
        self._keep: List[Any] = []
        self._open = True

    def device(self) -> Tuple[str, str]:
        major, minor = self.dev.compute_capability()
        return self.dev.name(), f"{major}.{minor}"

    def alloc(self, nbytes: int) -> int:
        mem = self.cuda.mem_alloc(nbytes)
        self._keep.append(mem)
        return int(mem)

    def pinned(self, shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(shape, dtype)

    def stream(self) -> Any:
        return self.cuda.Stream()

    @staticmethod
    def handle(stream: Any) -> int:
        return int(stream.handle)

    def h2d(self, dst: int, host: np.ndarray, stream: Any) -> None:
        self.cuda.memcpy_htod_async(dst, host, stream)

    def d2h(self, host: np.ndarray, src: int, stream: Any) -> None:
        self.cuda.memcpy_dtoh_async(host, src, stream)

    def sync(self, stream: Any) -> None:
        stream.synchronize()

    def event(self) -> Any:
        return self.cuda.Event()

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))

    def capture(self, stream: Any, enqueue: Any) -> Any:
        raise EdgekitError("CUDA graphs need cuda-python (pip install cuda-python); pycuda runs without them")

    def launch(self, graph: Any, stream: Any) -> None:
        raise EdgekitError("CUDA graphs need cuda-python")

    def close(self) -> None:
        """Free the device buffers, then pop and release the primary context pushed at start."""
        if not self._open:
            return
        for mem in reversed(self._keep):
            mem.free()
        self._keep.clear()
        self.cuda.Context.pop()
        self.ctx.detach()
        self._open = False


def _major(version: int) -> int:
    """CUDA's version numbers: 1000 * major + 10 * minor (12040 is 12.4)."""
    return int(version) // 1000


def mismatch(rt: Any) -> Optional[str]:
    """Why cuda-python cannot serve this device, or None: bindings built for a newer CUDA major than the
    driver's fail on every call (cudaErrorInsufficientDriver), e.g. cuda-python 12 on JetPack 5's CUDA 11.4."""
    try:
        err, driver = rt.cudaDriverGetVersion()
        err2, runtime = rt.cudaRuntimeGetVersion()
    except Exception as exc:  # noqa: BLE001 - the bindings' own load errors
        return f"cuda-python does not load ({exc.__class__.__name__})"
    if int(err) != 0 or int(err2) != 0:
        return f"cuda-python cannot query CUDA (error {int(err) or int(err2)})"
    if _major(runtime) > _major(driver):
        return (f"cuda-python is built for CUDA {_major(runtime)}, the device's driver runs CUDA {_major(driver)}: "
                f"pip install 'cuda-python=={_major(driver)}.*'")
    return None


def cuda_api() -> Union[CudaPython, PyCuda]:
    """cuda-python where installed and built for the device's CUDA major, else pycuda; a clear error where
    neither serves."""
    rt = _import_cudart()
    why = mismatch(rt) if rt is not None else "cuda-python is not installed"
    if why is None:
        return CudaPython(rt)
    try:
        driver = importlib.import_module("pycuda.driver")
    except ImportError:
        raise EdgekitError(f"the TensorRT runner needs cuda-python or pycuda: {why} and pycuda is not installed "
                           "(pip install cuda-python, or edgekit's `jetson` extra)") from None
    return PyCuda(driver)
