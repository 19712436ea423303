"""The TensorRT device kit: everything a device needs to build its engines, and the build from it.

``write_kit`` (on any machine) copies the FP32 / FP16 / Q-DQ INT8 ONNX files, the calibration ranges,
a calibration cache for the target's TensorRT 8.x, the pre/post-processing, the preflight report and
the exact commands, and the device-side program (``edgekit-device.pyz``). ``build_from_kit``
(:mod:`.kit_build`, on the device or wherever TensorRT and the target's GPU are) builds one engine per
precision by the route the installed TensorRT calls for:

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
from typing import Any, Callable

import onnx

from edgekit.artifacts import sha256_file, staged_dir, write_manifest
from edgekit.backends.tensorrt import calibration_cache, preflight
from edgekit.backends.tensorrt.engine import Device, device_facts
from edgekit.backends.tensorrt.kit_build import (APP, KIT_FILE, ONNX, RANGES, build_from_kit, cache_name, int8_route,
                                                 kit_file, read_kit)
from edgekit.backends.tensorrt.scales import scales_from_ranges
from edgekit.backends.tensorrt.version import JETPACK_TENSORRT, TrtVersion, jetpack_python
from edgekit.errors import EdgekitError
from edgekit.sparsity import onnx_sparse_layers
from edgekit.targets import Target

__all__ = ["KIT_FILE", "build_from_kit", "native_device", "plan", "read_kit", "write_kit"]


def versions_in_range(target: Target) -> list[TrtVersion]:
    """The TensorRT releases a target runs: those its JetPack range ships, else the range's ends."""
    if target.tensorrt is None:
        return []
    if target.jetpack is not None:
        found = {TrtVersion.parse(v) for jp, v in JETPACK_TENSORRT.items() if target.jetpack.contains(jp)}
        return sorted(v for v in found if target.tensorrt.contains(str(v)))
    ends = [target.tensorrt.min, target.tensorrt.max]
    return sorted({TrtVersion.parse(e.replace(".x", "")) for e in ends if e})


def trtexec_line(precision: str, route: str | None, version: TrtVersion, target: Target, dla: bool,
                 kit: dict[str, Any]) -> str:
    """The trtexec equivalent of ``edgekit compile --kit`` for one precision on one TensorRT version."""
    pool = (f"--workspace={target.workspace_mb}" if not version.at_least(8, 4)
            else f"--memPoolSize=workspace:{target.workspace_mb}")    # MiB on 8.4+ and 10.x
    engine = f"model.{precision}{'.dla0' if dla else ''}.engine"
    common = f"{pool} --timingCacheFile=timing.{version}.cache --saveEngine={engine}"
    on_dla = " --useDLACore=0 --allowGPUFallback" if dla and precision != "fp32" else ""
    strongly_typed = version.major >= 11
    source = kit_file(precision, route, version, strongly_typed, kit)
    flags = " --stronglyTyped" if strongly_typed else {"fp32": "", "fp16": " --fp16", "int8": " --int8 --fp16"}[precision]
    calib = f" --calib={cache_name(version)}" if route == "calibration-cache" else ""
    sparse = " --sparsity=enable" if kit.get("sparse_weights") else ""
    return f"trtexec --onnx={source}{flags}{calib}{sparse} {common}{on_dla}"


def plan(target: Target, precisions: list[str]) -> tuple[list[str], dict[str, str], dict[str, dict[str, str]]]:
    """(precisions built, precisions skipped with why, per TensorRT version: precision -> route)."""
    routed = [p for p in precisions if target.supports(p)]
    skipped = {p: f"{target.name} has no fast {p.upper()} (the engine would be no faster than FP16)"
               for p in precisions if p not in routed}
    routes = {str(v): {p: (int8_route(v) if p == "int8" else "flags" if v.major < 11 else "strongly typed")
                       for p in routed} for v in versions_in_range(target)}
    return routed, skipped, routes


def device_side(target: Target) -> str:
    """How a target's engines get built on the device: the kit's zipapp on each JetPack's Python, or edgekit."""
    if target.backend != "tensorrt":
        return "-"
    if target.jetpack is None:
        return "edgekit compile --kit (edgekit installed beside TensorRT)"
    shipped = sorted({(trt, jetpack_python(jp)) for jp, trt in JETPACK_TENSORRT.items()
                      if target.jetpack.contains(jp) and target.tensorrt.contains(trt)},
                     key=lambda pair: TrtVersion.parse(pair[0]))
    return f"python3 {APP} (in the kit), or trtexec: " + ", ".join(
        f"TensorRT {trt} on Python {py}" for trt, py in shipped)


def write_kit(quant_dir: Path, target: Target, out: Path, precisions: list[str],
              write_extras: Callable[[Path], None]) -> dict[str, Any]:
    """The portable kit for ``target`` from a quantize artifact; ``write_extras(folder)`` adds the pipeline and
    the camera program (:func:`edgekit.stages.compile.kit_extras`). Returns the kit's description."""
    quant_dir = Path(quant_dir)
    routed, skipped, routes = plan(target, precisions)
    versions = versions_in_range(target)
    cached = [v for v in versions if int8_route(v, dla=bool(target.dla_cores) and v.major < 11) == "calibration-cache"]
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
        if cached:   # a cache per version (trtexec lines, and the device app re-heads one for any other)
            scales = scales_from_ranges(tmp / RANGES, tmp / ONNX["fp32"])
            for v in cached:   # the GPU's implicit-INT8 versions, and every version a DLA core's INT8 is built on
                caches[str(v)] = calibration_cache.write(scales, v, tmp / cache_name(v)).name
        (tmp / "target.json").write_text(json.dumps(target.summary_row(), indent=2) + "\n")
        write_extras(tmp)
        check = preflight.preflight({p: tmp / ONNX[p] for p in ONNX}, target,
                                    {int(n): tmp / name for n, name in copies.items()})
        (tmp / "preflight.json").write_text(json.dumps(check, indent=2) + "\n")
        (tmp / "preflight.md").write_text(preflight.markdown(check))
        int8_routes = {str(v): int8_route(v) for v in versions} if target.int8_route != "none" else {}
        # 2:4 weights are read from the model itself, whoever made them: the engines get the sparse-weights flag
        sparse = onnx_sparse_layers(tmp / ONNX["fp32"]) if target.sparse_tensor_cores else []
        kit = {"target": target.name, "precisions": routed, "skipped": skipped, "routes": routes,
               "int8_routes": int8_routes,
               "workspace_mb": target.workspace_mb, "dla_cores": target.dla_cores,
               "compute_capability": target.compute_capability,
               "calibration_sha256": sha256_file(tmp / RANGES),
               "calibration_caches": caches, "opset": kit_opset, "opset_copies": copies,
               "sparse_weights": bool(sparse), "sparse_layers": sparse}
        (tmp / KIT_FILE).write_text(json.dumps(kit, indent=2) + "\n")
        commands = {str(v): {p: trtexec_line(p, routes[str(v)][p], v, target, False, kit) for p in routed}
                    for v in versions}
        (tmp / "BUILD_ON_DEVICE.md").write_text(instructions(target, kit, commands))
        write_manifest(tmp, "compile", {"quantized": quant_dir},
                       {"target": target.name, "backend": "tensorrt", "kind": "device-kit", "precisions": routed},
                       {"commands": commands, "skipped": skipped, "engine_built": False,
                        "preflight": {"errors": check["errors"], "warnings": check["warnings"]}})
    return {**kit, "preflight": check, "commands": commands}


def route_table(target: Target, kit: dict[str, Any]) -> list[str]:
    """Per JetPack release of the target (patch releases that agree in one row): its TensorRT, its Python, and
    the file each precision parses."""
    if target.jetpack is None:
        return []
    rows: dict[tuple[str, str, str], list[str]] = {}
    for jp, shipped in JETPACK_TENSORRT.items():
        version = TrtVersion.parse(shipped)
        if not target.jetpack.contains(jp) or not target.tensorrt.contains(str(version)):
            continue
        strongly_typed = version.major >= 11
        parsed = [f"{p}: {kit_file(p, int8_route(version) if p == 'int8' else None, version, strongly_typed, kit)}"
                  for p in kit["precisions"]]
        rows.setdefault((str(version), jetpack_python(jp), ", ".join(parsed)), []).append(jp)
    lines = [f"| {jps[0]}{'–' + jps[-1] if len(jps) > 1 else ''} | {trt} | {py} | "
             f"`python3 {APP} build` or trtexec | {parsed} |" for (trt, py, parsed), jps in rows.items()]
    return ["| JetPack | TensorRT | Python | route | parsed |", "|---|---|---|---|---|", *lines, ""] if lines else []


def instructions(target: Target, kit: dict[str, Any], commands: dict[str, dict[str, str]]) -> str:
    lines = [f"# Build the engines on {target.name}", "",
             "TensorRT engines are tied to the GPU and to the TensorRT version: build them on the device.",
             "Copy this folder to the device, then either", "",
             "```sh", f"python3 {APP} info     # this device, and the route each precision takes",
             f"python3 {APP} build    # every precision below, into ../tensorrt-<precision>/",
             f"python3 {APP} bench ../tensorrt-{kit['precisions'][-1]}",
             "```", "",
             f"`{APP}` is edgekit's device-side code alone: it runs on the Python the JetPack ships, with "
             "numpy, TensorRT's bindings (`python3-libnvinfer`) and pycuda or cuda-python, and needs no install "
             "(`edgekit compile --kit .` does the same where edgekit itself is installed).", ""]
    lines += route_table(target, kit)
    if kit.get("sparse_weights"):
        lines += [f"2:4 sparse weights in {len(kit['sparse_layers'])} layers of the model: every engine is built with "
                  "TensorRT's sparse-weights flag (`--sparsity=enable`), which lets it choose Sparse Tensor Core kernels "
                  "where they are faster; `trtexec ... --verbose` lists the layers it ran sparse.", ""]
    lines += ["or, with TensorRT's own tool (one line per precision, for your TensorRT version):", ""]
    for version, per in commands.items():
        lines += [f"TensorRT {version}:", "", "```sh", *per.values(), "```", ""]
    if target.dla_cores:
        lines += [f"DLA ({target.dla_cores} cores): `python3 {APP} build --dla-core 0` (FP16/INT8; layers "
                  "the DLA cannot run fall back to the GPU and are listed). A DLA core takes INT8 by implicit "
                  "quantization only, so its INT8 engine is built from fp32.onnx and the calibration cache, not from "
                  "the Q/DQ model. With trtexec:", ""]
        for version in (v for v in versions_in_range(target) if v.major < 11):
            dla = [trtexec_line(p, "calibration-cache" if p == "int8" else None, version, target, True, kit)
                   for p in ("fp16", "int8") if p in kit["precisions"] or (p == "int8" and kit["int8_routes"])]
            lines += [f"TensorRT {version}, DLA core 0:", "", "```sh", *dla, "```", ""]
    if kit["calibration_caches"]:
        listed = ", ".join(f"`{name}` for TensorRT {v}" for v, name in kit["calibration_caches"].items())
        lines += [f"INT8 scales for the implicit-calibration route: {listed}. Each trtexec line names its own "
                  "version's cache: TensorRT skips a cache whose header names another version and would then "
                  "calibrate on random data without an error. The device app hands the installed TensorRT its own "
                  "version's cache (the kit's, or the same scales under its version's header).", ""]
    for p, why in kit["skipped"].items():
        lines.append(f"- {p}: skipped: {why}")
        if p == "int8" and kit["int8_routes"]:
            routes = ", ".join(f"{r} on TensorRT {v}" for v, r in kit["int8_routes"].items())
            lines.append(f"  To build it anyway: `python3 {APP} build --precision int8` ({routes}).")
    lines += ["", "Preflight (checked here, no GPU): see preflight.md. "
              "Check each engine against the accuracy estimate in the build report before deploying."]
    return "\n".join(lines) + "\n"


def native_device(target: Target) -> Device | None:
    """This machine's TensorRT device when it is the target (TensorRT importable, same GPU architecture)."""
    import importlib.util
    if target.backend != "tensorrt" or importlib.util.find_spec("tensorrt") is None:
        return None
    try:
        from edgekit.backends.tensorrt.cuda import cuda_api
        from edgekit.backends.tensorrt.runner import import_tensorrt
        trt, cuda = import_tensorrt(), cuda_api()
    except (EdgekitError, ImportError, RuntimeError, OSError):
        return None
    try:
        device = device_facts(trt, cuda)
    except (EdgekitError, RuntimeError, OSError):
        return None
    finally:
        cuda.close()
    return device if device.compute_capability == target.compute_capability else None
