"""Compile the quantize stage's ONNX files for a target's backend.

CPU backends (OpenVINO, ONNX Runtime) compile here. TensorRT engines are specific to the GPU
and TensorRT version, so for CUDA/Jetson targets this stage writes the portable device kit
(FP32/FP16/Q-DQ INT8 ONNX, calibration ranges, target facts and the exact build commands);
the engine itself is built on the device. It also compiles the target's CPU fallback so that
``validate`` can estimate the INT8 model's accuracy before a device is touched.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

from edgekit.artifacts import read_manifest, staged_dir, write_manifest
from edgekit.backends import get_backend, is_available
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.stages.export import output_names
from edgekit.stages.quantize import FILES
from edgekit.tasks.detection.spec import DetectionSpec
from edgekit.targets import Target

STAGE = "compile"
KIT = "tensorrt-kit"
PIPELINE = "pipeline.json"


def write_pipeline(recipe: Recipe, folder: Path) -> None:
    """``pipeline.json`` (and a detector's ``priors.npy``): the pre- and post-processing the model was
    validated with, for the line-side runtime that runs it."""
    pipeline = {"recipe": recipe.name, "task": recipe.task, "classes": list(recipe.classes),
                "input": {"name": "input", "shape": [1, *recipe.preprocess.input_shape], "layout": "NCHW",
                          "preprocess": asdict(recipe.preprocess)},
                "outputs": list(output_names(recipe))}
    if recipe.task == "detection":
        pipeline["postprocess"] = DetectionSpec.from_recipe(recipe).describe(folder)
    else:
        pipeline["postprocess"] = {"argmax": "over logits' last axis"}
    (Path(folder) / PIPELINE).write_text(json.dumps(pipeline, indent=2) + "\n")


def source_file(quant_dir: Path, precision: str, encoding: str) -> Path:
    key = "int8-u8" if precision == "int8" and encoding == "u8" else precision
    path = Path(quant_dir) / FILES[key]
    if not path.is_file():
        raise EdgekitError(f"{quant_dir}: no {FILES[key]} (run `edgekit quantize` first)")
    return path


def compile_backend(recipe: Recipe, quant_dir: Path, backend: str, precision: str, out: Path, target: Target) -> dict:
    module = get_backend(backend)
    src = source_file(quant_dir, precision, module.INT8_ENCODING)
    with staged_dir(out) as tmp:
        artifact = module.compile(src, tmp, precision)
        write_pipeline(recipe, tmp)
        settings = {"recipe": recipe.name, "target": target.name, "backend": backend, "precision": precision,
                    "int8_encoding": module.INT8_ENCODING if precision == "int8" else None}
        results = {"file": artifact.name, "size_bytes": sum(p.stat().st_size for p in tmp.iterdir())}
        write_manifest(tmp, STAGE, {"source": src}, settings, results)
    return {"backend": backend, "precision": precision, "path": str(out), "status": "compiled"}


def trtexec_commands(target: Target, precisions: list[str]) -> dict[str, str]:
    """trtexec lines for the target's TensorRT: flags on 8.x-10.x, strong typing on 11."""
    trt_min = target.tensorrt.min if target.tensorrt else None
    trt_max = target.tensorrt.max if target.tensorrt else None
    major_min = int(str(trt_min).split(".")[0]) if trt_min else 10
    old_pool = trt_min is not None and tuple(int(x) for x in str(trt_min).split(".")[:2]) < (8, 4)
    pool = f"--workspace={target.workspace_mb}" if old_pool else f"--memPoolSize=workspace:{target.workspace_mb}M"
    common = f"{pool} --timingCacheFile=timing.cache"
    dla = " --useDLACore=0 --allowGPUFallback" if target.dla_cores else ""  # DLA runs FP16/INT8 only
    cmds = {}
    for p in precisions:
        if p == "fp32":
            cmds[p] = f"trtexec --onnx=fp32.onnx --saveEngine=model.fp32.engine {common}"
        elif p == "fp16":
            cmds[p] = f"trtexec --onnx=fp32.onnx --fp16 --saveEngine=model.fp16.engine {common}{dla}"
        elif p == "int8":
            cmds[p] = f"trtexec --onnx=int8.onnx --int8 --fp16 --saveEngine=model.int8.engine {common}{dla}"
    if str(trt_max).startswith("11") or major_min >= 11:
        cmds["note"] = ("TensorRT 11 is strongly typed: drop --fp16/--int8, add --stronglyTyped and use "
                        "fp16.onnx for FP16 (int8.onnx carries its own Q/DQ types)")
    return cmds


def device_kit(recipe: Recipe, quant_dir: Path, target: Target, out: Path, precisions: list[str]) -> dict:
    """The portable artifact for a TensorRT target, with what is left to do on the device."""
    routed = [p for p in precisions if p in target.precisions and not (p == "int8" and target.int8_route == "none")]
    skipped = {p: f"{target.name} lists no fast {p}" for p in precisions if p not in routed}
    if "int8" in routed and target.int8_route == "calibration-cache":
        routed.remove("int8")
        skipped["int8"] = ("needs the implicit-calibration route (calibration cache) of TensorRT 8.2; "
                           "not produced by this version of edgekit")
    cmds = trtexec_commands(target, routed)
    with staged_dir(out) as tmp:
        for name in ("fp32", "fp16", "int8"):
            shutil.copyfile(Path(quant_dir) / FILES[name], tmp / FILES[name])
        shutil.copyfile(Path(quant_dir) / "calibration_ranges.json", tmp / "calibration_ranges.json")
        (tmp / "target.json").write_text(json.dumps(target.summary_row(), indent=2) + "\n")
        write_pipeline(recipe, tmp)
        lines = [
            f"# Build the {recipe.name} engines on {target.name}",
            "",
            "TensorRT engines are tied to the GPU and the TensorRT version: build them on the device.",
            f"Target TensorRT: {target.tensorrt.min} .. {target.tensorrt.max}" if target.tensorrt else "",
            "",
            "Copy this folder to the device, then run (one line per precision):",
            "",
            "```sh",
            *[c for k, c in cmds.items() if k != "note"],
            "```",
            "",
            *([f"Note: {cmds['note']}", ""] if "note" in cmds else []),
            *[f"- {p}: skipped: {why}" for p, why in skipped.items()],
            "",
            "Check each engine against the accuracy estimate in the build report before deploying.",
        ]
        (tmp / "BUILD_ON_DEVICE.md").write_text("\n".join(lines) + "\n")
        settings = {"recipe": recipe.name, "target": target.name, "backend": "tensorrt", "precisions": routed}
        write_manifest(tmp, STAGE, {"quantized": quant_dir}, settings,
                       {"commands": cmds, "skipped": skipped, "engine_built": False})
    return {"backend": "tensorrt", "precision": ",".join(routed), "path": str(out),
            "status": "device kit: build the engine on the device (see BUILD_ON_DEVICE.md)"}


def compile_for_target(recipe: Recipe, quant_dir: Path, target: Target, out_root: Path, precisions: list[str]) -> list[dict]:
    read_manifest(quant_dir)  # refuse a folder that is not a quantize artifact
    done: list[dict] = []
    backends = [target.backend]
    if target.backend == "tensorrt":
        done.append(device_kit(recipe, quant_dir, target, Path(out_root) / KIT, precisions))
        backends = [target.fallback] if target.fallback else []
    elif not is_available(target.backend) and target.fallback:
        backends = [target.fallback]
    for backend in backends:
        if not is_available(backend):
            raise EdgekitError(f"backend {backend!r} of target {target.name} is not installed")
        for p in precisions:
            done.append(compile_backend(recipe, quant_dir, backend, p, Path(out_root) / f"{backend}-{p}", target))
    return done
