"""``edgekit build``: data -> train -> prune -> export -> calibrate -> quantize -> compile -> validate.

Each stage writes its artifact folder under the run folder; a stage whose inputs and settings
are unchanged is reused, so an interrupted build resumes where it stopped. A build may start
from the user's own checkpoint (skips training) or ONNX file (skips training and export).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from edgekit import calibration
from edgekit.artifacts import is_fresh, read_manifest, write_json
from edgekit.data import synth
from edgekit.data.recipe_data import load_split
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.stages import compile as compile_stage
from edgekit.stages import export as export_stage
from edgekit.stages import prune as prune_stage
from edgekit.stages import quantize as quantize_stage
from edgekit.stages import train as train_stage
from edgekit.stages import validate as validate_stage
from edgekit.targets import Target


@dataclass
class BuildOptions:
    data: Path | None = None            # None: the built-in generated data
    pretrained: Path | None = None
    checkpoint: Path | None = None      # start from a trained checkpoint
    onnx: Path | None = None            # start from an FP32 ONNX file
    calibration: Path | None = None     # an existing calibration manifest
    epochs: int | None = None
    prune: bool = True                  # apply the recipe's prune section (when it has one)
    method: str | None = None
    robustness: bool = False
    threads: int | None = None
    seed: int = 0


@dataclass
class BuildLog:
    stages: list[dict[str, Any]] = field(default_factory=list)

    def run(self, name: str, fresh: bool, fn: Callable[[], Any], summary: Callable[[], str]) -> None:
        t0 = time.perf_counter()
        status = "reused" if fresh else "ran"
        if not fresh:
            fn()
        self.stages.append({"stage": name, "status": status, "seconds": round(time.perf_counter() - t0, 1),
                            "result": summary()})


def builtin_data(runs: Path, recipe: Recipe) -> Path:
    cfg = recipe.data.get("builtin", {})
    per_class, seed = cfg.get("per_class", 100), cfg.get("seed", 0)
    root = runs / "data" / f"builtin-neu-{per_class}x{len(recipe.classes)}-seed{seed}"
    if not (root / "synth.json").is_file():
        synth.generate(root, per_class=per_class, seed=seed, size=recipe.preprocess.size, overwrite=True)
    return root


def _loads(manifest: Path, data_root: Path) -> bool:
    """An earlier run's calibration manifest is reused only while its images are unchanged."""
    try:
        calibration.load(manifest, data_root)
        return True
    except EdgekitError:
        return False


def build(recipe: Recipe, target: Target, run_dir: Path, opts: BuildOptions) -> dict:
    run_dir = Path(run_dir)
    log = BuildLog()
    data_root = Path(opts.data) if opts.data else builtin_data(run_dir.parent, recipe)
    precisions = list(recipe.quantize.get("precisions", ["fp32", "fp16", "int8"]))

    onnx_path = opts.onnx
    pruning = None
    if onnx_path is None:
        checkpoint = opts.checkpoint
        if checkpoint is None:
            train_dir = run_dir / "train"
            fresh = is_fresh(train_dir, train_stage.STAGE, train_stage.train_inputs(data_root, opts.pretrained),
                             train_stage.manifest_settings(recipe, opts.pretrained, opts.epochs, opts.seed))
            log.run("train", fresh, lambda: train_stage.train(recipe, data_root, train_dir, opts.pretrained,
                                                               opts.epochs, opts.seed, opts.threads),
                    lambda: "{metric} {value:.2f}".format(**read_manifest(train_dir)["results"]["headline"]))
            checkpoint = train_dir / train_stage.CHECKPOINT
        if opts.prune and prune_stage.prune_spec(recipe):
            prune_dir = run_dir / "prune"
            fresh = is_fresh(prune_dir, prune_stage.STAGE, {"checkpoint": checkpoint, "data": data_root},
                             prune_stage.prune_settings(recipe, opts.seed))
            log.run("prune", fresh, lambda: prune_stage.prune(recipe, checkpoint, data_root, prune_dir, opts.seed,
                                                              threads=opts.threads),
                    lambda: prune_stage.summary(read_manifest(prune_dir)))
            pruning = read_manifest(prune_dir)
            checkpoint = prune_dir / train_stage.CHECKPOINT
        export_dir = run_dir / "export"
        fresh = is_fresh(export_dir, export_stage.STAGE, {"checkpoint": checkpoint},
                         export_stage.export_settings(recipe))
        log.run("export", fresh, lambda: export_stage.export(recipe, checkpoint, export_dir),
                lambda: "max abs diff ONNX vs PyTorch "
                f"{read_manifest(export_dir)['results']['max_abs_diff_vs_pytorch']:.1e}")
        onnx_path = export_dir / export_stage.MODEL

    manifest_path = opts.calibration
    if manifest_path is None:
        manifest_path = run_dir / "calibration.yaml"
        fresh = _loads(manifest_path, data_root)
        log.run("calibration set", fresh,
                lambda: calibration.write(calibration.select(recipe, load_split(recipe, data_root),
                                                             f"{recipe.name}-{data_root.name}"), manifest_path),
                lambda: f"{calibration.load(manifest_path, data_root)[0]['count']} images, class-stratified")

    quant_dir = run_dir / "quantize"
    settings = quantize_stage.quantize_settings(recipe, opts.method)
    fresh = is_fresh(quant_dir, quantize_stage.STAGE, {"onnx": onnx_path, "calibration": manifest_path}, settings)
    log.run("quantize", fresh,
            lambda: quantize_stage.quantize(recipe, onnx_path, manifest_path, data_root, quant_dir, opts.method),
            lambda: f"{settings['method']} calibration, Q/DQ INT8 + FP16")

    compiled: list[dict] = []
    log.run("compile", False,
            lambda: compiled.extend(compile_stage.compile_for_target(recipe, quant_dir, target,
                                                                     run_dir / "compile", precisions)),
            lambda: ", ".join(f"{c['backend']}-{c['precision']}" for c in compiled))

    kit = next((c for c in compiled if c.get("kind") == "device-kit"), None)
    runnable = [Path(c["path"]) for c in compiled if c is not kit]
    engines_built = any(c["backend"] == "tensorrt" for c in compiled if c is not kit)
    pending = kit is not None and not engines_built
    results: dict = {}
    # With a device kit left to finish, what runs here is the target's fallback: its accuracy
    # estimates the INT8 model's, its speed says nothing about the device's.
    log.run("validate", False,
            lambda: results.update(validate_stage.validate(
                recipe, quant_dir / quantize_stage.FILES["fp32"], runnable, data_root, run_dir / "validate",
                opts.robustness, opts.threads, opts.seed, gate_fps=not pending, pruning=pruning)),
            lambda: "all gates pass" if results["passed"] else "a gate FAILED")

    summary = {
        "recipe": recipe.name,
        "target": target.name,
        "run_dir": str(run_dir),
        "data": str(data_root),
        "stages": log.stages,
        "artifacts": compiled,
        "validation": str(run_dir / "validate" / "report.md"),
        "passed": results.get("passed", False),
        "preflight": kit["preflight"] if kit else None,
        "fallback": kit.get("fallback") if kit else None,
        "left_to_do": (f"build the TensorRT engines on the {target.name}: see {kit['path']}/BUILD_ON_DEVICE.md"
                       if pending else None),
    }
    write_json(run_dir / "build.json", summary)
    return {**summary, "results": results}
