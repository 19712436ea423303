"""``edgekit build``: data -> train -> prune -> sparsify -> export -> calibrate -> quantize -> compile -> validate.

Every input the user named is checked before any work starts (a bad one is one error line and
nothing is written). Then the build prints its plan: each stage, reused or to run, with a time
estimate. Each stage writes its artifact folder under the run folder; a stage whose inputs and
settings are unchanged is reused, so an interrupted build resumes where it stopped. A build may
start from the user's own checkpoint (skips training) or ONNX file (skips training and export).
Paths in the run folder's records are absolute, so they resolve from any directory.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from edgekit import calibration, distributed
from edgekit.artifacts import is_fresh, read_manifest, write_json
from edgekit.checkpoint import load_model
from edgekit.data import synth
from edgekit.data.classes import NEU_CLASSES
from edgekit.data.recipe_data import DataSource, SplitData, load_split
from edgekit.errors import EdgekitError
from edgekit.estimate import seconds_per_step, training_seconds
from edgekit.recipes import Recipe
from edgekit.stages import compile as compile_stage
from edgekit.stages import export as export_stage
from edgekit.stages import prune as prune_stage
from edgekit.stages import quantize as quantize_stage
from edgekit.stages import sparsify as sparsify_stage
from edgekit.stages import train as train_stage
from edgekit.stages import validate as validate_stage
from edgekit.targets import Target


@dataclass
class BuildOptions:
    data: Path | None = None            # None: the built-in generated data
    test_data: Path | None = None       # a folder of test images (else the data's or the recipe's split)
    split_file: Path | None = None      # stems of the test images, one per line
    pretrained: Path | None = None
    checkpoint: Path | None = None      # start from a trained checkpoint
    onnx: Path | None = None            # start from an FP32 ONNX file
    calibration: Path | None = None     # an existing calibration manifest
    epochs: int | None = None
    prune: bool = True                  # apply the recipe's prune section (when it has one)
    sparsity: bool = True               # apply the recipe's 2:4 sparsity (when it has one and the target can use it)
    method: str | None = None
    robustness: bool = False
    threads: int | None = None
    seed: int = 0


@dataclass
class Step:
    """One stage of the chain: whether its artifact is fresh, how to run it, its result in a line."""
    name: str
    fresh: Callable[[], bool]
    run: Callable[[], Any]
    summary: Callable[[], str]
    estimate: Callable[[], float]
    after: tuple[str, ...] = ()         # steps whose output this one reads
    always: bool = False                # compile and validate run every time


@dataclass
class BuildLog:
    stages: list[dict[str, Any]] = field(default_factory=list)

    def run(self, step: Step) -> None:
        t0 = time.perf_counter()
        fresh = not step.always and step.fresh()
        if not fresh:
            step.run()
        self.stages.append({"stage": step.name, "status": "reused" if fresh else "ran",
                            "seconds": round(time.perf_counter() - t0, 1), "result": step.summary()})


def builtin_data(runs: Path, recipe: Recipe) -> Path:
    cfg = recipe.data.get("builtin", {})
    per_class, seed, size = cfg.get("per_class", 100), cfg.get("seed", 0), recipe.preprocess.size
    free = cfg.get("free", 0)               # defect-free images, for a recipe that decides defective or not
    root = runs / "data" / (f"builtin-neu-{per_class}x{len(NEU_CLASSES)}" + (f"-free{free}" if free else "")
                            + f"-seed{seed}" + (f"-{size}px" if size != 200 else ""))
    if not (root / "synth.json").is_file():
        synth.generate(root, per_class=per_class, seed=seed, size=size, overwrite=True, free=free)
    return root


def _loads(manifest: Path, data_root: Path) -> bool:
    """An earlier run's calibration manifest is reused only while its images are unchanged."""
    try:
        calibration.load(manifest, data_root)
        return True
    except EdgekitError:
        return False


def check_inputs(recipe: Recipe, opts: BuildOptions) -> None:
    """Every file the user named, checked before any work: one error line naming the first bad one."""
    if opts.onnx is not None:
        export_stage.check_onnx(Path(opts.onnx), recipe)
    elif opts.checkpoint is not None:
        ckpt = Path(opts.checkpoint)
        load_model(recipe, ckpt / train_stage.CHECKPOINT if ckpt.is_dir() else ckpt)
    if opts.calibration is not None:
        calibration.read(Path(opts.calibration))
    if opts.method is not None:
        quantize_stage.quantize_settings(recipe, opts.method)
    if opts.data is not None:
        DataSource(opts.data, opts.test_data, opts.split_file).check()
    elif opts.test_data is not None or opts.split_file is not None:
        raise EdgekitError("--test-data and --split-file choose the test split of --data: give --data too")


def training_needs(recipe: Recipe) -> tuple[int, str]:
    """Training images a class needs for the build's calibration (and, with INT8's accuracy bound, one more held
    aside from it), and the reason in words."""
    per_class = int(recipe.quantize.get("calibration", {}).get("per_class", 16))
    if "int8" in recipe.quantize.get("precisions", ["int8"]) and quantize_stage.accuracy_settings(recipe):
        return per_class + 1, f"{per_class} for INT8 calibration + 1 held aside for its accuracy bound"
    return 1, "for calibration"


def data_source(recipe: Recipe, run_dir: Path, opts: BuildOptions) -> DataSource:
    root = Path(opts.data) if opts.data else builtin_data(run_dir.parent, recipe)
    return DataSource(root, opts.test_data, opts.split_file)


def steps(recipe: Recipe, target: Target, run_dir: Path, opts: BuildOptions, source: DataSource,
          split: SplitData, results: dict) -> list[Step]:
    """The chain for these options, in order. ``results`` receives the compiled artifacts and validation."""
    settings = train_stage.manifest_settings(recipe, opts.pretrained, opts.epochs, opts.seed)
    n_train, n_test = len(split.train), len(split.test)
    probe: dict[str, float] = {}

    def step_s() -> float:          # one timed probe, shared by every estimate
        if "s" not in probe:
            probe["s"] = seconds_per_step(recipe, settings["batch_size"])
        return probe["s"]

    def forward_s(images: int) -> float:
        return images * step_s() / settings["batch_size"] / 3.0

    out: list[Step] = []
    checkpoint = Path(opts.checkpoint) if opts.checkpoint else None
    onnx_path = Path(opts.onnx) if opts.onnx else None
    pruned_dir: Path | None = None
    sparse_dir: Path | None = None
    if opts.onnx is None:
        if opts.checkpoint is None:
            train_dir = run_dir / "train"
            checkpoint = train_dir / train_stage.CHECKPOINT
            out.append(Step(
                "train",
                lambda: is_fresh(train_dir, train_stage.STAGE, train_stage.train_inputs(source, opts.pretrained),
                                 settings),
                lambda: train_stage.train(recipe, source, train_dir, opts.pretrained, opts.epochs, opts.seed,
                                          opts.threads),
                lambda: "{metric} {value:.2f}".format(**read_manifest(train_dir)["results"]["headline"]),
                lambda: training_seconds(step_s(), settings["batch_size"], n_train, n_test, settings["epochs"])))
        ckpt: Callable[[], Path] = lambda c=checkpoint: c  # noqa: E731 - the checkpoint the next stage reads
        if opts.prune and prune_stage.prune_spec(recipe):
            prune_dir, before = run_dir / "prune", ckpt
            tune = prune_stage.prune_settings(recipe, opts.seed, target=target)
            pruned_dir = prune_dir
            out.append(Step(
                "prune",
                lambda: is_fresh(prune_dir, prune_stage.STAGE, {"checkpoint": before(), **source.inputs()}, tune),
                lambda: prune_stage.prune(recipe, before(), source, prune_dir, opts.seed, threads=opts.threads,
                                          target=target),
                lambda: prune_stage.summary(read_manifest(prune_dir)),
                # the pruned network is several times cheaper than the probe's: a generous upper estimate
                lambda: training_seconds(step_s(), tune["batch_size"], n_train, n_test, tune["epochs"]) / 2
                + 2 * forward_s(n_test),
                after=tuple(s.name for s in out)))
            # the pruned checkpoint goes on only when pruning paid (known once the stage has run)
            ckpt = lambda: train_stage.chosen_checkpoint(prune_dir, before())  # noqa: E731
        if opts.sparsity and sparsify_stage.applies(recipe, target):
            sparse_dir, dense = run_dir / "sparsify", ckpt
            sparse = sparsify_stage.sparsity_settings(recipe, opts.seed)
            out.append(Step(
                "sparsify",
                lambda: is_fresh(sparse_dir, sparsify_stage.STAGE, {"checkpoint": dense(), **source.inputs()}, sparse),
                lambda: sparsify_stage.sparsify(recipe, dense(), source, sparse_dir, opts.seed, threads=opts.threads),
                lambda: sparsify_stage.summary(read_manifest(sparse_dir)),
                lambda: training_seconds(step_s(), sparse["batch_size"], n_train, n_test, sparse["epochs"]),
                after=tuple(s.name for s in out)))
            ckpt = lambda: train_stage.chosen_checkpoint(sparse_dir, dense())  # noqa: E731
        export_dir = run_dir / "export"
        onnx_path = export_dir / export_stage.MODEL
        out.append(Step(
            "export",
            lambda: is_fresh(export_dir, export_stage.STAGE, {"checkpoint": ckpt()}, export_stage.export_settings(recipe)),
            lambda: export_stage.export(recipe, ckpt(), export_dir),
            lambda: f"max abs diff ONNX vs PyTorch {read_manifest(export_dir)['results']['max_abs_diff_vs_pytorch']:.1e}",
            lambda: 5.0 + forward_s(16), after=tuple(s.name for s in out)))

    manifest_path = Path(opts.calibration) if opts.calibration else run_dir / "calibration.yaml"
    if opts.calibration is None:
        out.append(Step(
            "calibration set",
            lambda: _loads(manifest_path, source.root),
            lambda: calibration.write(calibration.select(recipe, split, f"{recipe.name}-{source.root.name}"),
                                      manifest_path),
            lambda: f"{calibration.load(manifest_path, source.root)[0]['count']} images, class-stratified",
            lambda: 1.0))
    quant_dir = run_dir / "quantize"
    reduce_range = not target.int8_dot
    bounded = quantize_stage.accuracy_settings(recipe) is not None
    openvino = target.backend == "openvino"       # NNCF's INT8 competes there (a fallback runs the portable model)
    qsettings = quantize_stage.quantize_settings(recipe, opts.method, reduce_range=reduce_range, bounded=bounded,
                                                 openvino=openvino)
    n_calib = len(recipe.classes) * recipe.quantize.get("calibration", {}).get("per_class", 16)
    out.append(Step(
        "quantize",
        lambda: is_fresh(quant_dir, quantize_stage.STAGE, {"onnx": onnx_path, "calibration": manifest_path}, qsettings),
        lambda: quantize_stage.quantize(recipe, onnx_path, manifest_path, source.root, quant_dir, opts.method,
                                        reduce_range=reduce_range, data=split if bounded else None,
                                        threads=opts.threads or os.cpu_count() or 1, openvino=openvino),
        lambda: quantize_stage.summary(read_manifest(quant_dir)),
        lambda: 15.0 + 3 * forward_s(n_calib), after=tuple(s.name for s in out)))

    precisions = list(recipe.quantize.get("precisions", ["fp32", "fp16", "int8"]))
    compiled: list[dict] = []
    results["artifacts"] = compiled
    out.append(Step(
        "compile", lambda: False,
        lambda: compiled.extend(compile_stage.compile_for_target(recipe, quant_dir, target, run_dir / "compile",
                                                                 precisions)),
        lambda: ", ".join(f"{c['backend']}-{c['precision']}" + (f" ({c['compute']} compute)" if c.get("compute") else "")
                          for c in compiled),
        lambda: 10.0 * len(precisions), always=True))

    def validate() -> None:
        kit = next((c for c in compiled if c.get("kind") == "device-kit"), None)
        runnable = [Path(c["path"]) for c in compiled if c is not kit]
        pending = kit is not None and not any(c["backend"] == "tensorrt" for c in compiled if c is not kit)
        # With a device kit left to finish, what runs here is the target's fallback: its accuracy
        # estimates the INT8 model's, its speed says nothing about the device's.
        results["kit"], results["pending"] = kit, pending
        results["validation"] = validate_stage.validate(
            recipe, quant_dir / quantize_stage.FILES["fp32"], runnable, source, run_dir / "validate",
            opts.robustness, opts.threads, opts.seed, gate_fps=not pending,
            pruning=read_manifest(pruned_dir) if pruned_dir else None,
            sparsity=read_manifest(sparse_dir) if sparse_dir else None,
            notes=[skipped_line(s) for s in results["skipped"]])

    passes = (1 + (6 if opts.robustness else 0)) * (1 + len(precisions))
    out.append(Step("validate", lambda: False, validate,
                    lambda: validate_stage.verdict(results["validation"]),
                    lambda: 10.0 + passes * 2 * forward_s(n_test), always=True))
    return out


def skipped_line(skip: dict) -> str:
    """One line for a stage the build skipped because an optional extra is missing."""
    return f"{skip['stage']} skipped: {skip['why']}; {skip['effect']} ({skip['how']} to add it)"


def plan(chain: list[Step]) -> list[dict[str, Any]]:
    """Each step reused or to run (a step runs when a step it reads runs), with its time estimate."""
    rows, running = [], set()
    for step in chain:
        runs = step.always or bool(running & set(step.after)) or not step.fresh()
        if runs:
            running.add(step.name)
        rows.append({"stage": step.name, "action": "run" if runs else "reuse",
                     "estimate_s": round(step.estimate(), 1) if runs else 0.0})
    return rows


def build(recipe: Recipe, target: Target, run_dir: Path, opts: BuildOptions,
          on_plan: Callable[[list[dict[str, Any]]], None] | None = None) -> dict:
    """Check the inputs, plan (``on_plan`` sees it before work starts), then run the chain. Under torchrun every
    process trains; process 0 alone plans, runs the stages after training and returns the summary (the others
    None)."""
    run_dir = Path(run_dir).absolute()
    if opts.data is None:
        recipe = recipe.on_builtin_data()
    check_inputs(recipe, opts)
    skipped = []        # what an optional extra that is not installed would have added: said, recorded, not fatal
    if opts.onnx is None and opts.sparsity and sparsify_stage.applies(recipe, target):
        gone = sparsify_stage.missing()
        if gone:
            skipped.append(gone)
            opts = replace(opts, sparsity=False)
    world = distributed.start(train_stage.pick_device().type)
    if not world.main:
        distributed.barrier()                 # process 0 writes the built-in data first
    source = data_source(recipe, run_dir, opts)
    if world.main:
        distributed.barrier()
    split = load_split(recipe, source, training_needs(recipe))   # every image and box checked, up front
    if opts.calibration is not None:
        calibration.load(Path(opts.calibration), source.root)
    results: dict = {}
    results["skipped"] = skipped
    chain = steps(recipe, target, run_dir, opts, source, split, results)
    planned = []
    if world.main:
        planned = plan(chain) + [{"stage": s["stage"], "action": "skip", "estimate_s": 0.0, **s} for s in skipped]
        if on_plan is not None:
            on_plan(planned)
    log = BuildLog()
    together = world.size > 1                 # the processes train together; every later stage runs once
    for step in chain:
        if together and step.name != "train":
            distributed.finish()
            together = False
            if not world.main:
                return None
        log.run(step)

    kit = results.get("kit")
    validation = results["validation"]
    summary = {
        "recipe": recipe.name,
        "target": target.name,
        "run_dir": str(run_dir),
        "data": {k: str(v) for k, v in source.inputs().items()},
        "split": split.split,
        "plan": planned,
        "stages": log.stages,
        "artifacts": results["artifacts"],
        "validation": str(run_dir / "validate" / "report.md"),
        "passed": validation.get("passed", False),
        "preflight": kit["preflight"] if kit else None,
        "fallback": kit.get("fallback") if kit else None,
        "skipped": skipped,
        "left_to_do": (f"build the TensorRT engines on the {target.name}: see {kit['path']}/BUILD_ON_DEVICE.md"
                       if results.get("pending") else None),
    }
    write_json(run_dir / "build.json", summary)
    return {**summary, "results": validation}
