"""The TensorRT device kit: everything a device needs to build its engines, and the build from it.

``write_kit`` (on any machine) copies the FP32 / FP16 / Q-DQ INT8 ONNX files, the calibration ranges,
a calibration cache for the target's TensorRT 8.x, the pre/post-processing, the preflight report and
the exact commands. ``build_from_kit`` (on the device, or wherever TensorRT and the target's GPU are)
builds one engine per precision by the route the installed TensorRT calls for:

==============  ==========================================  ===========================================
precision       TensorRT 8.x / 10.x (builder flags)          TensorRT 11 (strongly typed)
==============  ==========================================  ===========================================
fp32            fp32.onnx                                    fp32.onnx
fp16            fp32.onnx + FP16 flag                        fp16.onnx
int8            int8.onnx (Q/DQ) + INT8|FP16 on >= 8.6;      int8.onnx (Q/DQ)
                fp32.onnx + calibration cache below 8.6
==============  ==========================================  ===========================================
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import onnx

from edgekit.artifacts import read_manifest, sha256_file, staged_dir, write_manifest
from edgekit.backends.tensorrt import calibration_cache, preflight
from edgekit.backends.tensorrt.builder import EngineRequest, build_engine, has_calibrators, has_precision_flags
from edgekit.backends.tensorrt.engine import ENGINE_FILE, Device, device_facts, engine_keys
from edgekit.backends.tensorrt.onnx_support import max_opset
from edgekit.backends.tensorrt.version import JETPACK_TENSORRT, TrtVersion
from edgekit.errors import EdgekitError
from edgekit.targets import Target

KIT_FILE = "kit.json"
ONNX = {"fp32": "fp32.onnx", "fp16": "fp16.onnx", "int8": "int8.onnx"}
RANGES = "calibration_ranges.json"
CACHE = "calibration.cache"          # what ``build_from_kit`` writes beside the engines it builds


def cache_name(version: TrtVersion) -> str:
    """The kit's calibration cache for one TensorRT version: TensorRT skips a cache whose header names another
    version (and trtexec then calibrates on random data without an error), so each version gets its own."""
    return f"calibration.{version}.cache"
QDQ_FROM = (8, 6)   # explicit Q/DQ from TensorRT 8.6; the calibration cache below it (issue 4, DESIGN.md)


def int8_route(version: TrtVersion, strongly_typed: bool = False) -> str:
    return "qdq" if strongly_typed or version.at_least(*QDQ_FROM) else "calibration-cache"


def versions_in_range(target: Target) -> list[TrtVersion]:
    """The TensorRT releases a target runs: those its JetPack range ships, else the range's ends."""
    if target.tensorrt is None:
        return []
    if target.jetpack is not None:
        found = {TrtVersion.parse(v) for jp, v in JETPACK_TENSORRT.items() if target.jetpack.contains(jp)}
        return sorted(v for v in found if target.tensorrt.contains(str(v)))
    ends = [target.tensorrt.min, target.tensorrt.max]
    return sorted({TrtVersion.parse(e.replace(".x", "")) for e in ends if e})


def parsed_file(source: str, version: TrtVersion, kit_opset: int, copies: dict[str, str]) -> str:
    """The kit file ``version``'s parser reads for ``source``: an older-opset copy of the FP32 model when
    the kit's opset is newer than the parser documents (the preflight errs when there is none)."""
    limit = max_opset(version)
    fits = [int(n) for n in copies if int(n) <= limit]
    if kit_opset <= limit or source != ONNX["fp32"] or not fits:
        return source
    return copies[str(max(fits))]


def trtexec_line(precision: str, route: str | None, version: TrtVersion, target: Target, dla: bool,
                 kit_opset: int = 0, copies: dict[str, str] | None = None) -> str:
    """The trtexec equivalent of ``edgekit compile --kit`` for one precision on one TensorRT version."""
    pool = (f"--workspace={target.workspace_mb}" if not version.at_least(8, 4)
            else f"--memPoolSize=workspace:{target.workspace_mb}")    # MiB on 8.4+ and 10.x
    common = f"{pool} --timingCacheFile=timing.cache --saveEngine=model.{precision}.engine"
    on_dla = " --useDLACore=0 --allowGPUFallback" if dla and precision != "fp32" else ""
    strongly_typed = version.major >= 11
    source = parsed_file(source_onnx(precision, route, strongly_typed), version, kit_opset, copies or {})
    flags = " --stronglyTyped" if strongly_typed else {"fp32": "", "fp16": " --fp16", "int8": " --int8 --fp16"}[precision]
    calib = f" --calib={cache_name(version)}" if route == "calibration-cache" else ""
    return f"trtexec --onnx={source}{flags}{calib} {common}{on_dla}"


def plan(target: Target, precisions: list[str]) -> tuple[list[str], dict[str, str], dict[str, dict[str, str]]]:
    """(precisions built, precisions skipped with why, per TensorRT version: precision -> route)."""
    routed = [p for p in precisions if target.supports(p)]
    skipped = {p: f"{target.name} has no fast {p.upper()} (the engine would be no faster than FP16)"
               for p in precisions if p not in routed}
    routes = {str(v): {p: (int8_route(v) if p == "int8" else "flags" if v.major < 11 else "strongly typed")
                       for p in routed} for v in versions_in_range(target)}
    return routed, skipped, routes


def write_kit(quant_dir: Path, target: Target, out: Path, precisions: list[str], write_pipeline) -> dict[str, Any]:
    """The portable kit for ``target`` from a quantize artifact; returns the kit's description."""
    quant_dir = Path(quant_dir)
    routed, skipped, routes = plan(target, precisions)
    versions = versions_in_range(target)
    needs_cache = any(int8_route(v) == "calibration-cache" for v in versions)
    with staged_dir(out) as tmp:
        for name in ONNX.values():
            shutil.copyfile(quant_dir / name, tmp / name)
        copies = {}
        for copy in sorted(quant_dir.glob("fp32.opset*.onnx")):
            shutil.copyfile(copy, tmp / copy.name)
            copies[copy.stem.removeprefix("fp32.opset")] = copy.name
        kit_opset = preflight.opset_of(onnx.load(str(tmp / ONNX["fp32"]), load_external_data=False))
        shutil.copyfile(quant_dir / RANGES, tmp / RANGES)
        caches = {}
        if needs_cache:   # for trtexec users; `edgekit compile --kit` writes the installed TensorRT's own
            scales = calibration_cache.scales_from_ranges(tmp / RANGES, tmp / ONNX["fp32"])
            for v in (v for v in versions if int8_route(v) == "calibration-cache"):
                caches[str(v)] = calibration_cache.write(scales, v, tmp / cache_name(v)).name
        (tmp / "target.json").write_text(json.dumps(target.summary_row(), indent=2) + "\n")
        write_pipeline(tmp)
        check = preflight.preflight({p: tmp / ONNX[p] for p in ONNX}, target,
                                    {int(n): tmp / name for n, name in copies.items()})
        (tmp / "preflight.json").write_text(json.dumps(check, indent=2) + "\n")
        (tmp / "preflight.md").write_text(preflight.markdown(check))
        int8_routes = {str(v): int8_route(v) for v in versions} if target.int8_route != "none" else {}
        kit = {"target": target.name, "precisions": routed, "skipped": skipped, "routes": routes,
               "int8_routes": int8_routes,
               "workspace_mb": target.workspace_mb, "dla_cores": target.dla_cores,
               "compute_capability": target.compute_capability,
               "calibration_sha256": sha256_file(tmp / RANGES),
               "calibration_caches": caches, "opset": kit_opset, "opset_copies": copies}
        (tmp / KIT_FILE).write_text(json.dumps(kit, indent=2) + "\n")
        commands = {str(v): {p: trtexec_line(p, routes[str(v)][p], v, target, False, kit_opset, copies) for p in routed}
                    for v in versions}
        (tmp / "BUILD_ON_DEVICE.md").write_text(instructions(target, kit, commands))
        write_manifest(tmp, "compile", {"quantized": quant_dir},
                       {"target": target.name, "backend": "tensorrt", "kind": "device-kit", "precisions": routed},
                       {"commands": commands, "skipped": skipped, "engine_built": False,
                        "preflight": {"errors": check["errors"], "warnings": check["warnings"]}})
    return {**kit, "preflight": check, "commands": commands}


def instructions(target: Target, kit: dict[str, Any], commands: dict[str, dict[str, str]]) -> str:
    lines = [f"# Build the engines on {target.name}", "",
             "TensorRT engines are tied to the GPU and to the TensorRT version: build them on the device.",
             "Copy this folder to the device, then either", "",
             "```sh", "pip install 'edgekit[jetson]'      # once; TensorRT itself comes with JetPack",
             "edgekit compile --kit .            # every precision below, by the route the installed TensorRT takes",
             "```", "", "or, with TensorRT's own tool (one line per precision, for your TensorRT version):", ""]
    for version, per in commands.items():
        lines += [f"TensorRT {version}:", "", "```sh", *per.values(), "```", ""]
    if target.dla_cores:
        lines += [f"DLA ({target.dla_cores} cores): `edgekit compile --kit . --dla-core 0` (FP16/INT8; "
                  "layers the DLA cannot run fall back to the GPU and are listed), or add "
                  "`--useDLACore=0 --allowGPUFallback` to the trtexec lines.", ""]
    if kit["calibration_caches"]:
        listed = ", ".join(f"`{name}` for TensorRT {v}" for v, name in kit["calibration_caches"].items())
        lines += [f"INT8 scales for the implicit-calibration route: {listed}. Each trtexec line names its own "
                  "version's cache: TensorRT skips a cache whose header names another version and would then "
                  "calibrate on random data without an error. `edgekit compile --kit` writes the installed "
                  "version's cache itself.", ""]
    for p, why in kit["skipped"].items():
        lines.append(f"- {p}: skipped: {why}")
        if p == "int8" and kit["int8_routes"]:
            routes = ", ".join(f"{r} on TensorRT {v}" for v, r in kit["int8_routes"].items())
            lines.append(f"  To build it anyway: `edgekit compile --kit . --precision int8` ({routes}).")
    lines += ["", "Preflight (checked here, no GPU): see preflight.md. "
              "Check each engine against the accuracy estimate in the build report before deploying."]
    return "\n".join(lines) + "\n"


def source_onnx(precision: str, route: str | None, strongly_typed: bool) -> str:
    """The kit file TensorRT parses for ``precision`` (the table in this module's docstring)."""
    if precision == "int8" and route == "qdq":
        return ONNX["int8"]
    if precision == "fp16" and strongly_typed:
        return ONNX["fp16"]
    return ONNX["fp32"]


def read_kit(kit_dir: Path) -> dict[str, Any]:
    kit_dir = Path(kit_dir)
    m = read_manifest(kit_dir)
    if m.get("settings", {}).get("kind") != "device-kit" or not (kit_dir / KIT_FILE).is_file():
        raise EdgekitError(f"{kit_dir}: not a TensorRT device kit (made by `edgekit build/compile --target jetson-*`)")
    return json.loads((kit_dir / KIT_FILE).read_text())


def build_from_kit(kit_dir: Path, out_root: Path, precisions: list[str] | None = None, dla_core: int | None = None,
                   trt: Any = None, cuda: Any = None) -> list[dict[str, Any]]:
    """Build one engine folder per precision under ``out_root`` (``tensorrt-<precision>/``)."""
    from edgekit.backends.tensorrt.cuda import cuda_api
    from edgekit.backends.tensorrt.runner import import_tensorrt

    kit_dir, out_root = Path(kit_dir), Path(out_root)
    kit = read_kit(kit_dir)
    trt = trt or import_tensorrt()
    device = device_facts(trt, cuda or cuda_api())
    version = TrtVersion.parse(device.tensorrt)
    strongly_typed = not has_precision_flags(trt)
    wanted = precisions or kit["precisions"]
    unknown = [p for p in wanted if p not in ONNX]
    if unknown:
        raise EdgekitError(f"unknown precision {unknown[0]!r} (fp32, fp16 or int8)")
    shapes = {"input": json.loads((kit_dir / "pipeline.json").read_text())["input"]["shape"]}
    done = []
    for precision in wanted:
        route = int8_route(version, strongly_typed) if precision == "int8" else None
        if route == "calibration-cache" and not has_calibrators(trt):
            route = "qdq"
        source = kit_dir / parsed_file(source_onnx(precision, route, strongly_typed), version, kit.get("opset", 0),
                                       kit.get("opset_copies", {}))
        folder = out_root / f"tensorrt-{precision}"
        with staged_dir(folder) as tmp:
            cache = None
            if route == "calibration-cache":
                scales = calibration_cache.scales_from_ranges(kit_dir / RANGES, kit_dir / ONNX["fp32"])
                cache = calibration_cache.write(scales, version, tmp / CACHE)
            request = EngineRequest(onnx=source, precision=precision, workspace_mb=kit["workspace_mb"], int8_route=route or "qdq",
                                    calibration_cache=cache, dla_core=dla_core, timing_cache=out_root / "timing.cache")
            built = build_engine(trt, request)
            (tmp / ENGINE_FILE).write_bytes(built.plan)
            for extra in ("pipeline.json", "priors.npy"):
                if (kit_dir / extra).is_file():
                    shutil.copyfile(kit_dir / extra, tmp / extra)
            keys = engine_keys(device, precision, dla_core, shapes, kit["calibration_sha256"] if precision == "int8" else None)
            settings = {"target": kit["target"], "backend": "tensorrt", "precision": precision,
                        "int8_route": route, "dla_core": dla_core}
            results = {"file": ENGINE_FILE, "engine": keys, "flags": built.flags, "strongly_typed": built.strongly_typed,
                       "layers": built.layers, "dla_fallback": built.dla_fallback, "build_seconds": built.seconds,
                       "target_compute_capability": kit["compute_capability"]}
            write_manifest(tmp, "compile", {"kit": kit_dir, "onnx": source}, settings, results)
        status = f"engine built ({route or 'flags'}" + (f", {len(built.dla_fallback)} layers off the DLA" if dla_core is not None else "") + ")"
        if kit["compute_capability"] and kit["compute_capability"] != device.compute_capability:
            status += f"; NOTE: built on compute capability {device.compute_capability}, the kit's target is {kit['compute_capability']}"
        done.append({"backend": "tensorrt", "precision": precision, "path": str(folder), "status": status})
    return done


def native_device(target: Target) -> Device | None:
    """This machine's TensorRT device when it is the target (TensorRT importable, same GPU architecture)."""
    import importlib.util
    if target.backend != "tensorrt" or importlib.util.find_spec("tensorrt") is None:
        return None
    try:
        from edgekit.backends.tensorrt.cuda import cuda_api
        from edgekit.backends.tensorrt.runner import import_tensorrt
        device = device_facts(import_tensorrt(), cuda_api())
    except (EdgekitError, ImportError, RuntimeError, OSError):
        return None
    return device if device.compute_capability == target.compute_capability else None
