"""On the device: one TensorRT engine per precision from a device kit, by the route the installed
TensorRT calls for (the table in :mod:`.kit`).

Device-side code (this module and what it imports) runs on the Python each JetPack ships, 3.6 on
JetPack 4.6, with numpy, TensorRT's bindings and pycuda or cuda-python only: no torch, no onnx, no
training code (``tests/test_device_side.py`` checks both with vermin and an import guard).
"""
import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgekit.artifacts import read_manifest, staged_dir, write_manifest
from edgekit.backends.tensorrt import calibration_cache
from edgekit.backends.tensorrt.builder import EngineRequest, build_engine, has_calibrators, has_precision_flags
from edgekit.backends.tensorrt.engine import ENGINE_FILE, device_facts, engine_keys
from edgekit.backends.tensorrt.onnx_support import max_opset
from edgekit.backends.tensorrt.version import TrtVersion
from edgekit.errors import EdgekitError

KIT_FILE = "kit.json"
ONNX = {"fp32": "fp32.onnx", "fp16": "fp16.onnx", "int8": "int8.onnx"}
APP = "edgekit-device.pyz"        # the camera program every kit carries (edgekit.camera.pack writes it)
RANGES = "calibration_ranges.json"
CACHE = "calibration.cache"          # what ``build_from_kit`` writes beside the engines it builds
QDQ_FROM = (8, 6)   # explicit Q/DQ from TensorRT 8.6; the calibration cache below it (issue 4, DESIGN.md)


def cache_name(version: TrtVersion) -> str:
    """The kit's calibration cache for one TensorRT version: TensorRT skips a cache whose header names another
    version (and trtexec then calibrates on random data without an error), so each version gets its own."""
    return "calibration.{}.cache".format(version)


def int8_route(version: TrtVersion, strongly_typed: bool = False, dla: bool = False) -> str:
    """Q/DQ from 8.6 on the GPU; the calibration cache before it, and on a DLA core, which takes implicit
    quantization only (NVIDIA/TensorRT#2222; NVIDIA's qdq-translator turns Q/DQ into such a cache)."""
    if dla:
        return "calibration-cache"
    return "qdq" if strongly_typed or version.at_least(*QDQ_FROM) else "calibration-cache"


def timing_cache_name(device: Any) -> str:
    """A timing cache belongs to one TensorRT and one GPU: the file says which."""
    return "timing.{}.sm{}.cache".format(device.tensorrt, device.compute_capability.replace(".", ""))


def parsed_file(source: str, version: TrtVersion, kit_opset: int, copies: Dict[str, str]) -> str:
    """The kit file ``version``'s parser reads for ``source``: an older-opset copy of the FP32 model when
    the kit's opset is newer than the parser documents (the preflight errs when there is none)."""
    limit = max_opset(version)
    fits = [int(n) for n in copies if int(n) <= limit]
    if kit_opset <= limit or source != ONNX["fp32"] or not fits:
        return source
    return copies[str(max(fits))]


def source_onnx(precision: str, route: Optional[str], strongly_typed: bool) -> str:
    """The kit file TensorRT parses for ``precision`` (the table in :mod:`.kit`)."""
    if precision == "int8" and route == "qdq":
        return ONNX["int8"]
    if precision == "fp16" and strongly_typed:
        return ONNX["fp16"]
    return ONNX["fp32"]


def precision_plan(precision: str, version: TrtVersion, trt: Any, kit: Dict[str, Any],
                   dla_core: Optional[int] = None) -> Tuple[Optional[str], str]:
    """(INT8 route or None, the kit file parsed) for ``precision`` on this TensorRT."""
    strongly_typed = not has_precision_flags(trt)
    route = int8_route(version, strongly_typed, dla_core is not None) if precision == "int8" else None
    if route == "calibration-cache" and not has_calibrators(trt):
        if dla_core is not None:
            raise EdgekitError("TensorRT {} has no implicit INT8, the only INT8 a DLA core takes: build INT8 for "
                               "the GPU, or FP16 for the DLA".format(version))
        route = "qdq"
    return route, kit_file(precision, route, version, strongly_typed, kit)


def kit_file(precision: str, route: Optional[str], version: TrtVersion, strongly_typed: bool,
             kit: Dict[str, Any]) -> str:
    """The kit file ``version``'s parser reads to build ``precision`` by ``route``."""
    return parsed_file(source_onnx(precision, route, strongly_typed), version, kit.get("opset", 0),
                       kit.get("opset_copies", {}))


def engine_dir(out_root: Path, precision: str) -> Path:
    """Where :func:`build_from_kit` puts the engine of ``precision`` (and where a camera's runtime finds it)."""
    return Path(out_root) / "tensorrt-{}".format(precision)


def read_kit(kit_dir: Path) -> Dict[str, Any]:
    kit_dir = Path(kit_dir)
    m = read_manifest(kit_dir)
    if m.get("settings", {}).get("kind") != "device-kit" or not (kit_dir / KIT_FILE).is_file():
        raise EdgekitError("{}: not a TensorRT device kit (made by `edgekit build/compile --target jetson-*`)"
                           .format(kit_dir))
    return json.loads((kit_dir / KIT_FILE).read_text())


def device_cache(kit_dir: Path, kit: Dict[str, Any], version: TrtVersion, dest: Path) -> Path:
    """The calibration cache this TensorRT reads: the kit's own for ``version``, else another version's
    scales under this version's header (the format is the same across 8.x; only the header differs)."""
    caches = kit.get("calibration_caches", {})
    if not caches:
        raise EdgekitError("{}: TensorRT {} builds INT8 from a calibration cache, and this kit has none (its target's "
                           "TensorRT takes Q/DQ); write the kit for a target whose TensorRT range includes {}"
                           .format(kit_dir, version, version))
    name = caches.get(str(version)) or next(iter(caches.values()))
    _, _, scales = calibration_cache.read(Path(kit_dir) / name)
    return calibration_cache.write(scales, version, dest)


def build_from_kit(kit_dir: Path, out_root: Path, precisions: Optional[List[str]] = None,
                   dla_core: Optional[int] = None, trt: Any = None, cuda: Any = None) -> List[Dict[str, Any]]:
    """Build one engine folder per precision under ``out_root`` (``tensorrt-<precision>/``)."""
    from edgekit.backends.tensorrt.cuda import cuda_api
    from edgekit.backends.tensorrt.runner import import_tensorrt

    kit_dir, out_root = Path(kit_dir), Path(out_root)
    kit = read_kit(kit_dir)
    trt = trt or import_tensorrt()
    if cuda is None:                              # made here: closed here (pycuda aborts on a context left pushed)
        cuda = cuda_api()
        try:
            device = device_facts(trt, cuda)
        finally:
            cuda.close()
    else:
        device = device_facts(trt, cuda)
    version = TrtVersion.parse(device.tensorrt)
    wanted = precisions or kit["precisions"]
    unknown = [p for p in wanted if p not in ONNX]
    if unknown:
        raise EdgekitError("unknown precision {!r} (fp32, fp16 or int8)".format(unknown[0]))
    shapes = {"input": json.loads((kit_dir / "pipeline.json").read_text())["input"]["shape"]}
    done = []
    for precision in wanted:
        route, parsed = precision_plan(precision, version, trt, kit, dla_core)
        source = kit_dir / parsed
        folder = engine_dir(out_root, precision)
        with staged_dir(folder) as tmp:
            cache = device_cache(kit_dir, kit, version, tmp / CACHE) if route == "calibration-cache" else None
            request = EngineRequest(onnx=source, precision=precision, workspace_mb=kit["workspace_mb"],
                                    int8_route=route or "qdq", calibration_cache=cache, dla_core=dla_core,
                                    timing_cache=out_root / timing_cache_name(device),
                                    sparse_weights=bool(kit.get("sparse_weights")))
            built = build_engine(trt, request)
            (tmp / ENGINE_FILE).write_bytes(built.plan)
            for extra in ("pipeline.json", "recipe.yaml", "priors.npy"):       # what bench's end-to-end timing reads
                if (kit_dir / extra).is_file():
                    shutil.copyfile(str(kit_dir / extra), str(tmp / extra))
            keys = engine_keys(device, precision, dla_core, shapes,
                               kit["calibration_sha256"] if precision == "int8" else None)
            settings = {"target": kit["target"], "backend": "tensorrt", "precision": precision,
                        "int8_route": route, "dla_core": dla_core}
            results = {"file": ENGINE_FILE, "engine": keys, "flags": built.flags,
                       "strongly_typed": built.strongly_typed, "layers": built.layers,
                       "dla_fallback": built.dla_fallback, "build_seconds": built.seconds,
                       "target_compute_capability": kit["compute_capability"]}
            write_manifest(tmp, "compile", {"kit": kit_dir, "onnx": source}, settings, results)
        status = "engine built ({}".format(route or "flags")
        if dla_core is not None:
            status += ", {} layers off the DLA".format(len(built.dla_fallback))
        status += ")"
        if kit["compute_capability"] and kit["compute_capability"] != device.compute_capability:
            status += "; NOTE: built on compute capability {}, the kit's target is {}".format(
                device.compute_capability, kit["compute_capability"])
        done.append({"backend": "tensorrt", "precision": precision, "path": str(folder), "status": status})
    return done
