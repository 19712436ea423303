"""Build a TensorRT engine from an ONNX file, for every TensorRT the targets ship (8.2 .. 11).

What changes between versions is decided by asking the ``tensorrt`` module what it has, not by
parsing its version string, so the same code serves:

- 8.x: explicit-batch networks, FP16/INT8 builder flags, implicit INT8 through a calibrator
  (served from edgekit's calibration cache), ``max_workspace_size`` before 8.4 and memory pools after;
- 10.x: networks are explicit-batch by default, builder flags still exist, calibrators are deprecated;
- 11: strongly typed only: no FP16/INT8 flags and no calibrators; FP16 comes from an FP16 ONNX and
  INT8 from Q/DQ nodes.

DLA: layers go to the DLA core with GPU fallback; the layers TensorRT says cannot run there are
reported. A timing cache is loaded before and saved after each build, so rebuilds are fast; one
TensorRT refuses (another version or GPU) is replaced by an empty one, with a warning.

Device-side code: runs on Python 3.6 (JetPack 4.6) with TensorRT's bindings and numpy only.
"""
import time
from pathlib import Path
from types import ModuleType
from typing import Any, List, NamedTuple, Optional

from edgekit.artifacts import atomic_write_bytes
from edgekit.backends.tensorrt.version import TrtVersion
from edgekit.errors import EdgekitError

ROUTES = ("qdq", "calibration-cache")


class EngineRequest(NamedTuple):
    """What to build. ``onnx`` is the file parsed: the Q/DQ model for explicit INT8, the FP16 model
    on a strongly typed TensorRT, the FP32 model otherwise."""
    onnx: Path
    precision: str                      # fp32 | fp16 | int8
    workspace_mb: int
    int8_route: str = "qdq"             # qdq | calibration-cache (INT8 only)
    calibration_cache: Optional[Path] = None
    dla_core: Optional[int] = None
    timing_cache: Optional[Path] = None
    sparse_weights: bool = False        # 2:4-sparse weights: let TensorRT pick sparse kernels (Ampere and newer)


class EngineBuild(NamedTuple):
    plan: bytes
    tensorrt: str
    strongly_typed: bool
    flags: List[str]
    layers: int
    dla_fallback: List[str]             # "name (type)" of layers left on the GPU
    seconds: float = 0.0


def has_precision_flags(trt: ModuleType) -> bool:
    """False on TensorRT 11, whose networks are strongly typed (precision comes from the model's types)."""
    return hasattr(trt.BuilderFlag, "FP16") and hasattr(trt.BuilderFlag, "INT8")


def has_calibrators(trt: ModuleType) -> bool:
    """Implicit INT8 (deprecated in 10.1, removed in 11)."""
    return hasattr(trt, "IInt8EntropyCalibrator2") and hasattr(trt.BuilderFlag, "INT8")


def _network_flags(trt: ModuleType, version: TrtVersion, strongly_typed: bool) -> int:
    flags = 0
    kinds = trt.NetworkDefinitionCreationFlag
    if version.major < 10 and hasattr(kinds, "EXPLICIT_BATCH"):  # implicit batch is the default before 10
        flags |= 1 << int(kinds.EXPLICIT_BATCH)
    if strongly_typed and hasattr(kinds, "STRONGLY_TYPED"):
        flags |= 1 << int(kinds.STRONGLY_TYPED)
    return flags


def cache_calibrator(trt: ModuleType, cache: bytes) -> Any:
    """An ``IInt8EntropyCalibrator2`` that serves ``cache`` and has no images: TensorRT reads the cache
    and skips calibration. Were the cache refused (another TensorRT version, other tensor names),
    TensorRT would ask for batches; the calibrator records that so the build fails with a reason."""
    base = trt.IInt8EntropyCalibrator2

    class CacheCalibrator(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.asked_for_batches = False

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names, *args):  # noqa: ANN001 - TensorRT's signature
            self.asked_for_batches = True
            return None

        def read_calibration_cache(self) -> bytes:
            return cache

        def write_calibration_cache(self, data) -> None:  # noqa: ANN001
            return None

    return CacheCalibrator()


def _parse(trt: ModuleType, network: Any, logger: Any, onnx_path: Path) -> Any:
    parser = trt.OnnxParser(network, logger)
    ok = parser.parse(Path(onnx_path).read_bytes())
    if not ok:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EdgekitError(f"{onnx_path}: TensorRT's ONNX parser refused it: " + "; ".join(errors[:3] or ["no reason given"]))
    return parser


def _timing_cache(config: Any, path: Optional[Path], logger: Any, trt: ModuleType) -> Any:
    """Load the timing cache at ``path`` into ``config``; an unreadable or mismatched cache (another TensorRT,
    another GPU) is set aside for an empty one, with a warning, rather than failing the build."""
    if path is None or not hasattr(config, "create_timing_cache"):
        return None
    path = Path(path)
    data = path.read_bytes() if path.is_file() else b""
    timing = config.create_timing_cache(data)
    if timing is not None and config.set_timing_cache(timing, False):   # ignore_mismatch=False
        return timing
    if data:
        logger.log(trt.Logger.WARNING, "edgekit: timing cache {} does not fit this TensorRT or GPU; "
                                       "building with an empty one".format(path))
        timing = config.create_timing_cache(b"")
        if timing is not None and config.set_timing_cache(timing, False):
            return timing
    return None


def build_engine(trt: ModuleType, request: EngineRequest, logger: Any = None) -> EngineBuild:
    """Parse, configure and build; raise EdgekitError with TensorRT's reason when it cannot."""
    t0 = time.perf_counter()
    version = TrtVersion.parse(trt.__version__)
    precision = request.precision
    if precision not in ("fp32", "fp16", "int8"):
        raise EdgekitError(f"unknown precision {precision!r} (fp32, fp16 or int8)")
    strongly_typed = not has_precision_flags(trt)
    route = request.int8_route if precision == "int8" else None
    if route == "calibration-cache":
        if not has_calibrators(trt):
            raise EdgekitError(f"TensorRT {version} has no implicit INT8 calibration; build INT8 from the Q/DQ ONNX")
        if request.calibration_cache is None:
            raise EdgekitError("the calibration-cache route needs a calibration cache file")
    if request.dla_core is not None and precision == "fp32":
        raise EdgekitError("the DLA runs FP16 and INT8 only; build FP16 or INT8 for a DLA core")

    logger = logger or trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, version, strongly_typed))
    parser = _parse(trt, network, logger, request.onnx)  # the network's weights live as long as the parser
    config = builder.create_builder_config()
    workspace = int(request.workspace_mb) << 20
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    else:  # TensorRT < 8.4
        config.max_workspace_size = workspace
    if hasattr(trt, "ProfilingVerbosity"):
        config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED

    flags: List[str] = []

    def flag(name: str) -> None:
        config.set_flag(getattr(trt.BuilderFlag, name))
        flags.append(name)

    calibrator = None
    if not strongly_typed:
        if precision in ("fp16", "int8"):
            flag("FP16")          # INT8 engines keep FP16 for the layers that stay in float
        if precision == "int8":
            flag("INT8")
            if route == "calibration-cache":
                cache = Path(request.calibration_cache).read_bytes()
                calibrator = cache_calibrator(trt, cache)
                config.int8_calibrator = calibrator

    if request.sparse_weights and hasattr(trt.BuilderFlag, "SPARSE_WEIGHTS"):
        flag("SPARSE_WEIGHTS")    # TensorRT checks each layer's weights and logs which ran sparse

    dla_fallback: List[str] = []
    if request.dla_core is not None:
        available = getattr(builder, "num_DLA_cores", 0)
        if request.dla_core >= available:
            raise EdgekitError(f"DLA core {request.dla_core} requested; this device has {available} DLA core(s)")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(request.dla_core)
        flag("GPU_FALLBACK")
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if not config.can_run_on_DLA(layer):
                dla_fallback.append(f"{layer.name} ({str(layer.type).split('.')[-1]})")

    timing = _timing_cache(config, request.timing_cache, logger, trt)

    plan = builder.build_serialized_network(network, config)
    if calibrator is not None and calibrator.asked_for_batches:
        raise EdgekitError(f"{request.calibration_cache}: TensorRT {version} refused the calibration cache "
                           f"(its header must read TRT-{version.number}-EntropyCalibration2 and name this "
                           "network's tensors); build from the kit on this device (python3 edgekit-device.pyz build), "
                           "which hands TensorRT its own version's cache")
    if plan is None:
        raise EdgekitError(f"TensorRT {version} could not build the {precision} engine from {request.onnx} "
                           "(the builder's log above says why)")
    tuned = config.get_timing_cache() if timing is not None else None
    if tuned is not None:
        atomic_write_bytes(Path(request.timing_cache), bytes(tuned.serialize()))
    del parser  # only now may the parser (and the weights it holds) go
    return EngineBuild(plan=bytes(plan), tensorrt=str(trt.__version__), strongly_typed=strongly_typed, flags=flags,
                       layers=network.num_layers, dla_fallback=dla_fallback,
                       seconds=round(time.perf_counter() - t0, 1))
