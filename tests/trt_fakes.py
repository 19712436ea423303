"""Test doubles shaped like TensorRT's Python API (8.2, 8.5/8.6, 10.x, 11.x) and a CUDA runtime.

They implement only what edgekit calls, with the names and the per-version presence/absence of the
real modules, and record every request so that tests can check what edgekit asked TensorRT to do.
Engines are JSON "plans" that describe their I/O; executing one writes a known function of the
input into each output buffer.
"""
from __future__ import annotations

import itertools
import json
import types
from dataclasses import dataclass, field

import numpy as np
import onnx


class _Enum:
    def __init__(self, **members: int) -> None:
        for name, value in members.items():
            setattr(self, name, _Member(name, value))


@dataclass(frozen=True)
class _Member:
    name: str
    value: int

    def __int__(self) -> int:
        return self.value

    def __str__(self) -> str:
        return f"LayerType.{self.name}"


@dataclass
class Layer:
    name: str
    type: _Member


class Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.layers: list[Layer] = []
        self.inputs: list[tuple[str, list[int]]] = []
        self.outputs: list[tuple[str, list[int]]] = []

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def get_layer(self, index: int) -> Layer:
        return self.layers[index]


class Parser:
    def __init__(self, network: Network, logger: object) -> None:
        self.network, self.errors = network, []

    def parse(self, model: bytes) -> bool:
        data = model
        try:
            model = onnx.load_from_string(data)
        except Exception as exc:  # noqa: BLE001 - mirror TensorRT: report, do not raise
            self.errors.append(f"In node -1: ModelImporter: failed to parse ({type(exc).__name__})")
            return False
        if not model.graph.node:
            self.errors.append("In node -1: empty graph")
            return False
        init = {i.name for i in model.graph.initializer}
        dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
        self.network.inputs = [(v.name, dims(v)) for v in model.graph.input if v.name not in init]
        self.network.outputs = [(v.name, dims(v)) for v in model.graph.output]
        self.network.layers = [Layer(n.name or f"node{i}", _Member(n.op_type.upper(), i))
                               for i, n in enumerate(model.graph.node)]
        self.network.model_ops = [n.op_type for n in model.graph.node]
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]


class TimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data


@dataclass
class Config:
    """IBuilderConfig. ``int8_calibrator`` and ``max_workspace_size`` exist only on the releases that have them
    (see :func:`_config_class`); like a pybind11 object, it refuses attributes its class does not have."""
    trt: types.ModuleType
    flags: list[str] = field(default_factory=list)
    pools: dict = field(default_factory=dict)
    default_device_type: object = None
    DLA_core: int = -1
    profiling_verbosity: object = None
    timing_cache_in: bytes | None = None
    timing_cache_ignore_mismatch: bool | None = None

    RECORDS = ("trt", "flags", "pools", "timing_cache_in", "timing_cache_ignore_mismatch")   # the double's notes

    def __setattr__(self, name: str, value: object) -> None:
        if name not in self.__dataclass_fields__ and not hasattr(type(self), name):
            raise AttributeError(f"'tensorrt.IBuilderConfig' object has no attribute '{name}'")
        object.__setattr__(self, name, value)

    def set_flag(self, flag: _Member) -> None:
        self.flags.append(flag.name)

    def can_run_on_DLA(self, layer: Layer) -> bool:
        return layer.type.name in {"CONV", "RELU", "MAXPOOL", "ADD", "CONCAT"}

    def create_timing_cache(self, serialized_timing_cache: bytes) -> TimingCache:
        self.timing_cache_in = bytes(serialized_timing_cache)
        return TimingCache(bytes(serialized_timing_cache))

    def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
        """Refuses a cache another TensorRT wrote (unless told to ignore the mismatch), as TensorRT does."""
        self.timing_cache_ignore_mismatch = ignore_mismatch
        return ignore_mismatch or cache.data in (b"", self._tuned())

    def get_timing_cache(self) -> TimingCache:
        return TimingCache(self._tuned())

    def _tuned(self) -> bytes:
        return f"timing:{self.trt.__version__}".encode()


def _config_class(trt):
    """The IBuilderConfig of ``trt``'s release: memory pools from 8.4, max_workspace_size until 10,
    int8_calibrator until 11."""
    members: dict = {}
    if trt._pools:
        def set_memory_pool_limit(self, pool: _Member, pool_size: int) -> None:
            self.pools[pool.name] = pool_size
        members["set_memory_pool_limit"] = set_memory_pool_limit
    if trt._major < 10:
        members["max_workspace_size"] = 0
    if hasattr(trt, "IInt8EntropyCalibrator2"):
        members["int8_calibrator"] = None
    return type("Config", (Config,), members)


class Builder:
    def __init__(self, trt: types.ModuleType, logger: object) -> None:
        self.trt = trt
        self.num_DLA_cores = trt._dla_cores
        self.platform_has_fast_int8 = True
        trt._log.append(("Builder", self))

    def create_network(self, flags: int = 0) -> Network:
        self.network = Network(flags)
        return self.network

    def create_builder_config(self) -> Config:
        self.config = _config_class(self.trt)(self.trt)
        return self.config

    def build_serialized_network(self, network: Network, config: Config) -> bytes | None:
        cal = getattr(config, "int8_calibrator", None)
        if cal is not None:
            header = bytes(cal.read_calibration_cache()).decode().splitlines()[0]
            if header != f"TRT-{self.trt._number}-EntropyCalibration2":
                cal.get_batch(["input"])       # what TensorRT does when it refuses the cache
                return None
        if self.trt._fail_build:
            return None
        plan = {"inputs": network.inputs, "outputs": network.outputs, "flags": config.flags,
                "version": self.trt.__version__}
        return json.dumps(plan).encode()


class Engine:
    def __init__(self, trt: types.ModuleType, plan: dict) -> None:
        self.trt, self.plan = trt, plan
        self.io = [(n, True, s) for n, s in plan["inputs"]] + [(n, False, s) for n, s in plan["outputs"]]

    def create_execution_context(self) -> "Context":
        return (TensorContext if self.trt._tensor_api else BindingContext)(self)


class TensorEngine(Engine):      # TensorRT >= 8.5: name-based I/O
    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    def get_tensor_name(self, index: int) -> str:
        return self.io[index][0]

    def get_tensor_mode(self, name: str) -> _Member:
        modes = self.trt.TensorIOMode
        return modes.INPUT if dict((n, i) for n, i, _ in self.io)[name] else modes.OUTPUT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return tuple(dict((n, s) for n, _, s in self.io)[name])

    def get_tensor_dtype(self, name: str) -> _Member:
        return self.trt.DataType.FLOAT


class BindingEngine(Engine):     # TensorRT 8.2: binding indices
    @property
    def num_bindings(self) -> int:
        return len(self.io)

    def get_binding_name(self, i: int) -> str:
        return self.io[i][0]

    def binding_is_input(self, i: int) -> bool:
        return self.io[i][1]

    def get_binding_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.io[i][2])

    def get_binding_dtype(self, i: int) -> _Member:
        return self.trt.DataType.FLOAT


def expected_outputs(x: np.ndarray, shapes: list[list[int]]) -> list[np.ndarray]:
    """What a fake engine computes: output k is filled with (k + 1) * sum(input)."""
    return [np.full(s, (k + 1) * float(x.sum()), dtype=np.float32) for k, s in enumerate(shapes)]


class Context:
    def __init__(self, engine: Engine) -> None:
        self.engine, self.addresses, self.calls = engine, {}, []

    def _run(self, ptrs: dict[str, int]) -> bool:
        mem = self.engine.trt._cuda.memory
        names_in = [n for n, i, _ in self.engine.io if i]
        names_out = [(n, s) for n, i, s in self.engine.io if not i]
        x = mem[ptrs[names_in[0]]].view(np.float32)
        for (name, shape), y in zip(names_out, expected_outputs(x, [s for _, s in names_out])):
            mem[ptrs[name]].view(np.float32)[:] = y.reshape(-1)
        return True



class TensorContext(Context):    # TensorRT >= 8.5 (10 and 11 have only this)
    def set_tensor_address(self, name: str, memory: int) -> bool:
        self.addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self.calls.append(("v3", stream_handle))
        return self.engine.trt._cuda.enqueue(lambda: self._run(self.addresses))



class BindingContext(Context):   # TensorRT 8.2
    def execute_async_v2(self, bindings: list[int], stream_handle: int) -> bool:
        self.calls.append(("v2", stream_handle))
        names = [n for n, _, _ in self.engine.io]
        return self.engine.trt._cuda.enqueue(lambda: self._run(dict(zip(names, bindings))))


class Runtime:
    DLA_core = -1          # the DLA core the next deserialised engine runs on

    def __init__(self, trt: types.ModuleType, logger: object) -> None:
        self.trt = trt
        self.num_DLA_cores = trt._dla_cores

    def deserialize_cuda_engine(self, serialized_engine: bytes):
        try:
            plan = json.loads(bytes(serialized_engine))
        except ValueError:
            return None
        if plan.get("version") != self.trt.__version__:
            return None   # "version tag does not match"
        return (TensorEngine if self.trt._tensor_api else BindingEngine)(self.trt, plan)


class FakeCuda:
    """The CUDA adapter surface of edgekit.backends.tensorrt.cuda, on host memory. Operations put on the
    stream run at sync(); capture() records them instead, and launch() replays the recording."""

    name, graphs = "fake-cuda", True

    def __init__(self, cc: str = "8.7", gpu: str = "Fake Orin") -> None:
        self.cc, self.gpu = cc, gpu
        self.memory: dict[int, np.ndarray] = {}
        self._ptr = itertools.count(0x1000, 0x1000)
        self.queue: list = []
        self.recording: list | None = None
        self.launches = 0

    def device(self) -> tuple[str, str]:
        return self.gpu, self.cc

    def alloc(self, nbytes: int) -> int:
        ptr = next(self._ptr)
        self.memory[ptr] = np.zeros(nbytes, dtype=np.uint8)
        return ptr

    def pinned(self, shape, dtype) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def stream(self) -> object:
        return object()

    @staticmethod
    def handle(stream: object) -> int:
        return id(stream)

    def enqueue(self, op) -> bool:
        (self.recording if self.recording is not None else self.queue).append(op)
        return True

    def h2d(self, dst: int, host: np.ndarray, stream: object) -> None:
        self.enqueue(lambda: self.memory[dst].__setitem__(slice(None), host.reshape(-1).view(np.uint8)))

    def d2h(self, host: np.ndarray, src: int, stream: object) -> None:
        self.enqueue(lambda: host.reshape(-1).view(np.uint8).__setitem__(slice(None), self.memory[src]))

    def sync(self, stream: object) -> None:
        for op in self.queue:
            op()
        self.queue = []

    def event(self) -> list:
        return []

    def record(self, event: list, stream: object) -> None:
        event.append(len(self.queue))

    def elapsed_ms(self, start: list, end: list) -> float:
        self.sync(None)
        return 0.5 * (end[0] - start[0])

    def capture(self, stream: object, enqueue) -> list:
        self.recording = []
        enqueue()
        graph, self.recording = self.recording, None
        return graph

    def launch(self, graph: list, stream: object) -> None:
        self.launches += 1
        self.queue.extend(graph)

    def close(self) -> None:
        self.memory.clear()
        self.closed = True


def make_trt(version: str, dla_cores: int = 0, cuda: FakeCuda | None = None, fail_build: bool = False):
    """A module shaped like ``import tensorrt`` of ``version``."""
    major, minor = (int(p) for p in version.split(".")[:2])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    parts = [int(p) for p in version.split(".")[:3]] + [0, 0]
    trt._number = parts[0] * (1000 if major < 9 else 10000) + parts[1] * 100 + parts[2]
    trt._log, trt._dla_cores, trt._fail_build = [], dla_cores, fail_build
    trt._pools = (major, minor) >= (8, 4)
    trt._major = major
    trt._tensor_api = (major, minor) >= (8, 5)
    trt._cuda = cuda or FakeCuda()

    class Logger:
        WARNING, ERROR, INFO = 2, 1, 3

        def __init__(self, min_severity: int = 2) -> None:
            self.min_severity = min_severity

        def log(self, severity: int, msg: str) -> None:
            trt._log.append(("log", msg))

    trt.Logger = Logger
    strongly_typed_only = major >= 11
    flags = {"GPU_FALLBACK": 3, "REFIT": 4, "SPARSE_WEIGHTS": 5}
    if not strongly_typed_only:
        flags.update(FP16=0, INT8=1)
    trt.BuilderFlag = _Enum(**flags)
    net_flags = {}
    if major < 11:
        net_flags["EXPLICIT_BATCH"] = 0
    if major >= 10 or (major, minor) >= (9, 0):
        net_flags["STRONGLY_TYPED"] = 1
    trt.NetworkDefinitionCreationFlag = _Enum(**net_flags)
    if trt._pools:
        trt.MemoryPoolType = _Enum(WORKSPACE=0, DLA_MANAGED_SRAM=1)
    trt.DeviceType = _Enum(GPU=0, DLA=1)
    trt.ProfilingVerbosity = _Enum(LAYER_NAMES_ONLY=0, DETAILED=2)
    if trt._tensor_api:                            # name-based I/O tensors: 8.5
        trt.TensorIOMode = _Enum(NONE=0, INPUT=1, OUTPUT=2)
    trt.DataType = _Enum(FLOAT=0, HALF=1, INT8=2)
    trt.nptype = lambda dtype: {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8}[dtype.name]
    if not strongly_typed_only:
        class IInt8EntropyCalibrator2:
            def __init__(self) -> None:
                trt._log.append(("calibrator", self))
        trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    trt.Builder = lambda logger: Builder(trt, logger)
    trt.OnnxParser = Parser
    trt.Runtime = lambda logger: Runtime(trt, logger)
    return trt
