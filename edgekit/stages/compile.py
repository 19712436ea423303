"""Compile the quantize stage's ONNX files for a target's backend.

CPU backends (OpenVINO, ONNX Runtime) compile here. TensorRT engines are specific to the GPU
and TensorRT version, so for CUDA/Jetson targets this stage writes the portable device kit
(FP32/FP16/Q-DQ INT8 ONNX, calibration ranges and cache, target facts, the preflight report and
the exact build commands: see :mod:`edgekit.backends.tensorrt.kit`) and builds the engines when
this machine is the target. Otherwise it compiles the target's fallback so that ``validate`` can
estimate the INT8 model's accuracy before a device is touched.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import yaml

from edgekit.artifacts import read_manifest, staged_dir, write_manifest
from edgekit.backends import get_backend, is_available
from edgekit.backends.tensorrt import kit as tensorrt_kit
from edgekit.camera import pack, pipeline
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.stages.export import output_names
from edgekit.stages.quantize import FILES, NNCF
from edgekit.targets import Target
from edgekit.tasks import get_task

STAGE = "compile"
KIT = "tensorrt-kit"
RECIPE = "recipe.yaml"


def write_pipeline(recipe: Recipe, folder: Path) -> None:
    """``pipeline.json`` (and a detector's ``priors.npy``): the pre- and post-processing the model was
    validated with, all the camera needs to run it (:mod:`edgekit.camera.pipeline`); ``recipe.yaml``, the
    recipe as applied, for the people who read the artifact later."""
    pipeline.write(folder, {
        "recipe": recipe.name, "task": recipe.task, "classes": list(recipe.classes),
        "input": {"name": "input", "shape": [1, *recipe.preprocess.input_shape], "layout": "NCHW",
                  "preprocess": recipe.preprocess.config()},
        "outputs": list(output_names(recipe)),
        "postprocess": get_task(recipe).describe_postprocess(recipe, folder)})
    (Path(folder) / RECIPE).write_text(yaml.safe_dump(recipe.resolved(), sort_keys=False))


def kit_extras(recipe: Recipe) -> Callable[[Path], None]:
    """What a device kit carries beside its models: the pipeline, and the camera package as ``edgekit-device.pyz``."""
    def write(folder: Path) -> None:
        write_pipeline(recipe, folder)
        pack.write_app(Path(folder) / pack.APP)
    return write


def source_file(quant_dir: Path, precision: str, encoding: str, backend: str = "") -> Path:
    """The quantize stage's file a backend compiles for ``precision``: for OpenVINO's INT8, NNCF's model
    where the quantize stage chose it."""
    key = "int8-u8" if precision == "int8" and encoding == "u8" else precision
    chosen = (read_manifest(quant_dir)["results"].get("openvino_int8") or {}).get("chosen")
    if backend == "openvino" and precision == "int8" and chosen == "nncf":
        return Path(quant_dir) / NNCF
    path = Path(quant_dir) / FILES[key]
    if not path.is_file():
        raise EdgekitError(f"{quant_dir}: no {FILES[key]} (run `edgekit quantize` first)")
    return path


def compile_backend(recipe: Recipe, quant_dir: Path, backend: str, precision: str, out: Path, target: Target) -> dict:
    module = get_backend(backend)
    src = source_file(quant_dir, precision, module.INT8_ENCODING, backend)
    bf16 = backend == "openvino" and precision == "fp16" and target.bf16    # the CPU's half precision
    with staged_dir(out) as tmp:
        artifact = module.compile(src, tmp, precision, **({"bf16": True} if bf16 else {}))
        write_pipeline(recipe, tmp)
        settings = {"recipe": recipe.name, "target": target.name, "backend": backend, "precision": precision,
                    "compute": "bf16" if bf16 else None,
                    "int8_encoding": (("nncf" if src.name == NNCF else module.INT8_ENCODING)
                                      if precision == "int8" else None)}
        results = {"file": artifact.name, "size_bytes": sum(p.stat().st_size for p in tmp.iterdir())}
        write_manifest(tmp, STAGE, {"source": src}, settings, results)
    return {"backend": backend, "precision": precision, "path": str(out), "status": "compiled",
            **({"compute": "bf16"} if bf16 else {})}


def device_kit(recipe: Recipe, quant_dir: Path, target: Target, out: Path, precisions: list[str]) -> dict:
    """The portable artifact for a TensorRT target, with its preflight report and the commands left to run."""
    kit = tensorrt_kit.write_kit(quant_dir, target, out, precisions, kit_extras(recipe))
    check = kit["preflight"]
    return {"backend": "tensorrt", "kind": "device-kit", "precision": ",".join(kit["precisions"]), "path": str(out),
            "status": f"device kit (preflight: {check['errors']} errors, {check['warnings']} warnings)",
            "preflight": check}


def compile_for_target(recipe: Recipe, quant_dir: Path, target: Target, out_root: Path, precisions: list[str]) -> list[dict]:
    """Compile for ``target``. A TensorRT target always gets its device kit (with the preflight report);
    where this machine is the target, the engines are built natively from it. Where they cannot be
    (no TensorRT or another GPU here, or TensorRT's build failed), the target's fallback backend is
    compiled instead and its entry says why."""
    read_manifest(quant_dir)  # refuse a folder that is not a quantize artifact
    done: list[dict] = []
    backends = [target.backend]
    if target.backend == "tensorrt":
        kit = device_kit(recipe, quant_dir, target, Path(out_root) / KIT, precisions)
        done.append(kit)
        reason = "no TensorRT and GPU of this target on this machine: the engines are built on the device"
        if tensorrt_kit.native_device(target) is not None:
            try:
                done += tensorrt_kit.build_from_kit(Path(kit["path"]), Path(out_root))
                return done
            except EdgekitError as exc:
                reason = f"TensorRT build failed ({exc})"
        backends = [target.fallback] if target.fallback else []
        kit["fallback"] = {"backend": target.fallback, "reason": reason}
    elif not is_available(target.backend) and target.fallback:
        backends = [target.fallback]
    for backend in backends:
        if not is_available(backend):
            raise EdgekitError(f"backend {backend!r} of target {target.name} is not installed")
        for p in precisions:
            done.append(compile_backend(recipe, quant_dir, backend, p, Path(out_root) / f"{backend}-{p}", target))
    return done
