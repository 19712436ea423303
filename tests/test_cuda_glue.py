"""The CUDA glue under the TensorRT runner, against doubles that behave as the bindings do: cuda-python's
``cudaStream_t`` converts to its handle with ``int()`` (``getPtr()`` is the address of the Python object's
copy), ``cudaGraphInstantiate`` takes (graph, flags) on CUDA 12 but (graph, log buffer, size) on CUDA 11,
and pycuda aborts at exit when a pushed context was never popped."""
from __future__ import annotations

import itertools
import types

import numpy as np
import pytest

from edgekit.backends.tensorrt import cuda as cuda_mod
from edgekit.backends.tensorrt.cuda import CudaPython, PyCuda
from edgekit.errors import EdgekitError


class Err(int):
    """cuda-python's cudaError_t: an enum whose int value 0 is success."""


class Stream:
    """cuda-python's cudaStream_t: int() is the CUDA handle; getPtr() the address where the object keeps it."""

    def __init__(self, handle: int) -> None:
        self._handle = handle

    def __int__(self) -> int:
        return self._handle

    def getPtr(self) -> int:
        return id(self)


def fake_cudart(cuda_major: int, minor: int = 4) -> types.SimpleNamespace:
    """The runtime module of cuda-python for CUDA ``cuda_major``.``minor``: the calls the adapter makes, which
    record what is alive."""
    ok = Err(0)
    ptrs = itertools.count(0x7F0000001000, 0x1000)
    alive: dict[str, set] = {"device": set(), "host": set(), "stream": set(), "graph": set(), "exec": set(),
                             "event": set()}
    rt = types.SimpleNamespace(alive=alive, launched=[])

    def make(kind):
        def create(*_):
            handle = next(ptrs)
            alive[kind].add(handle)
            return ok, (Stream(handle) if kind == "stream" else handle)
        return create

    def free(kind):
        def destroy(handle):
            alive[kind].remove(int(handle))
            return (ok,)
        return destroy

    rt.cudaMalloc, rt.cudaFree = make("device"), free("device")
    rt.cudaMallocHost, rt.cudaFreeHost = make("host"), free("host")
    rt.cudaStreamCreate, rt.cudaStreamDestroy = make("stream"), free("stream")
    rt.cudaEventCreate, rt.cudaEventDestroy = make("event"), free("event")
    rt.cudaStreamCaptureMode = types.SimpleNamespace(cudaStreamCaptureModeGlobal=0)
    rt.cudaStreamBeginCapture = lambda stream, mode: (ok,)
    rt.cudaStreamEndCapture = make("graph")
    rt.cudaGraphDestroy, rt.cudaGraphExecDestroy = free("graph"), free("exec")
    rt.cudaGraphLaunch = lambda graph, stream: (rt.launched.append(graph), (ok,))[1]
    if cuda_major >= 12:
        rt.cudaGraphInstantiate = lambda graph, flags: make("exec")()
    else:
        def instantiate_11(graph, log_buffer, size):      # CUDA 11: (graph, pLogBuffer, bufferSize)
            if not isinstance(log_buffer, (bytes, bytearray)):
                raise TypeError("Argument 'pLogBuffer' has incorrect type")
            return (*make("exec")(), None)
        rt.cudaGraphInstantiate = instantiate_11
    if (cuda_major, minor) >= (11, 4):
        rt.cudaGraphInstantiateWithFlags = lambda graph, flags: make("exec")()
    rt.cudaRuntimeGetVersion = lambda: (ok, 1000 * cuda_major + 10 * minor)
    rt.cudaDriverGetVersion = lambda: (ok, 1000 * cuda_major + 10 * minor)
    return rt


@pytest.mark.parametrize("major", [11, 12])
def test_cuda_python_hands_tensorrt_the_stream_itself_and_captures_on_both_majors(major: int) -> None:
    rt = fake_cudart(major)
    cuda = CudaPython(rt)
    stream = cuda.stream()
    assert cuda.handle(stream) == int(stream) != stream.getPtr()
    buffers = [cuda.alloc(64), cuda.alloc(128)]
    host = cuda.pinned((2, 3), np.float32)
    enqueued = []
    graph = cuda.capture(stream, lambda: enqueued.append("work"))
    assert enqueued == ["work"] and rt.alive["graph"] == set()    # the template is destroyed once instantiated
    cuda.launch(graph, stream)
    assert rt.launched == [graph] and rt.alive["exec"] == {graph}
    assert host.shape == (2, 3) and set(buffers) == rt.alive["device"]
    cuda.close()
    assert not any(rt.alive.values())                             # buffers, stream and graph freed
    cuda.close()                                                  # twice is harmless


def test_cuda_older_than_11_4_says_graphs_are_out_of_reach() -> None:
    rt = fake_cudart(11, 2)
    cuda = CudaPython(rt)
    with pytest.raises(Exception, match=r"CUDA >= 11\.4"):
        cuda.capture(cuda.stream(), lambda: None)
    assert rt.alive["graph"] == set()


class FakePyCudaDriver(types.SimpleNamespace):
    """pycuda.driver: a context stack, device memory that must be freed."""

    def __init__(self) -> None:
        stack: list = []
        freed: list = []

        class Context:
            def __init__(self) -> None:
                self.detached = False

            def push(self) -> None:
                stack.append(self)

            @staticmethod
            def pop() -> None:
                stack.pop()

            def detach(self) -> None:
                self.detached = True

        class Mem(int):
            def free(self) -> None:
                freed.append(int(self))

        class Device:
            def __init__(self, n: int) -> None:
                self.ctx = Context()

            def retain_primary_context(self) -> Context:
                return self.ctx

        counter = itertools.count(0x1000, 0x100)
        super().__init__(stack=stack, freed=freed, Context=Context, Device=Device, init=lambda: None,
                         mem_alloc=lambda n: Mem(next(counter)))


def test_pycuda_pops_its_context_and_frees_its_buffers_on_close() -> None:
    driver = FakePyCudaDriver()
    cuda = PyCuda(driver)
    assert len(driver.stack) == 1
    a, b = cuda.alloc(16), cuda.alloc(32)
    cuda.close()
    assert driver.stack == [] and sorted(driver.freed) == sorted([a, b]) and cuda.ctx.detached
    cuda.close()
    assert driver.stack == []


def test_cuda_python_destroys_the_events_it_made() -> None:
    """cuda-python's events live until cudaEventDestroy: the adapter destroys them with everything else."""
    rt = fake_cudart(12)
    cuda = CudaPython(rt)
    made = [cuda.event() for _ in range(4)]
    assert len(rt.alive["event"]) == len(made)
    cuda.close()
    assert all(not alive for alive in rt.alive.values())


def test_bindings_are_chosen_by_the_devices_cuda_major(monkeypatch) -> None:
    """cuda-python 12 on a CUDA 11.4 driver (JetPack 5) fails on every call: pycuda serves instead, or the
    error says which cuda-python to install."""
    rt = fake_cudart(12)
    rt.cudaDriverGetVersion = lambda: (Err(0), 11040)
    assert "pip install 'cuda-python==11.*'" in cuda_mod.mismatch(rt)
    assert cuda_mod.mismatch(fake_cudart(12)) is None and cuda_mod.mismatch(fake_cudart(11)) is None
    monkeypatch.setattr(cuda_mod, "_import_cudart", lambda: rt)
    driver = FakePyCudaDriver()
    real_import = cuda_mod.importlib.import_module
    monkeypatch.setattr(cuda_mod.importlib, "import_module",
                        lambda name: driver if name == "pycuda.driver" else real_import(name))
    assert isinstance(cuda_mod.cuda_api(), PyCuda)
    monkeypatch.setattr(cuda_mod.importlib, "import_module", lambda name: (_ for _ in ()).throw(ImportError(name)))
    with pytest.raises(EdgekitError, match=r"built for CUDA 12, the device's driver runs CUDA 11.*pycuda is not"):
        cuda_mod.cuda_api()
