"""Validate built artifacts: accuracy against the FP32 model and the paper, fps against the
paper and the line rate, optionally under the paper's diversity-enhanced conditions."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.artifacts import read_manifest, staged_dir, write_json, write_manifest
from edgekit.backends import get_backend
from edgekit.data import robustness
from edgekit.data.recipe_data import load_split, read_images
from edgekit.errors import EdgekitError
from edgekit.progress import bar
from edgekit.recipes import Recipe
from edgekit.report import validation_markdown
from edgekit.tasks.classification import metrics, predict
from edgekit.timing import measure

STAGE = "validate"


@dataclass
class Built:
    """A runnable artifact: a compile-stage folder, or the FP32 reference ONNX."""
    label: str
    backend: str
    precision: str
    file: Path


def runnable(folder: Path) -> Built:
    m = read_manifest(folder)
    s = m["settings"]
    if m.get("stage") != "compile" or s.get("backend") == "tensorrt":
        raise EdgekitError(f"{folder}: not a runnable compiled artifact")
    return Built(f"{s['backend']}-{s['precision']}", s["backend"], s["precision"], Path(folder) / m["results"]["file"])


def required_fps(line: dict) -> float:
    """Frames the camera must process per second to cover the strip (SEEDS.md)."""
    advance = line["fov_along_strip_m"] * (1.0 - line["overlap"])
    return line.get("tiles_per_frame", 1) * line["strip_speed_mps"] / advance


def _predictions(runner, x: np.ndarray, desc: str) -> np.ndarray:
    return np.array([int(predict(runner.infer(xi[None]))[0]) for xi in bar(x, desc)])


def validate(
    recipe: Recipe,
    reference_onnx: Path,
    artifacts: list[Path],
    data_root: Path,
    out: Path,
    with_robustness: bool = False,
    threads: int | None = None,
    seed: int = 0,
) -> dict:
    """Evaluate the FP32 reference and each artifact on the test split; write report.md + results.json."""
    if recipe.task != "classification":
        raise EdgekitError(f"validate: task {recipe.task!r} of recipe {recipe.name} is not supported yet")
    threads = threads or os.cpu_count() or 1
    data = load_split(recipe, data_root)
    classes = recipe.classes
    images = read_images(data.test, "reading test images")
    y = np.array([s.label for s in data.test])
    x = recipe.preprocess.batch(images)
    builds = [Built("fp32-reference", "onnxruntime", "fp32", Path(reference_onnx))] + [runnable(a) for a in artifacts]

    gates_cfg = recipe.validate
    builtin = (Path(data_root) / "synth.json").is_file()
    paper = recipe.paper
    line_fps = required_fps(gates_cfg["line"])
    conditions = [c for c in robustness.CONDITIONS if c != "clean"] if with_robustness else []
    corrupted = {}
    for cond in conditions:
        rng = np.random.default_rng([seed, conditions.index(cond)])
        corrupted[cond] = recipe.preprocess.batch([robustness.apply(cond, im, rng) for im in images])

    rows = []
    for b in builds:
        runner = get_backend(b.backend).load(b.file, threads)
        pred = _predictions(runner, x, f"{b.label}: test split")
        row = {"artifact": b.label, "backend": b.backend, "precision": b.precision, "file": str(b.file),
               **metrics(y, pred, classes)}
        row["speed"] = measure(runner, x[:1], warmup=5, iters=50, max_seconds=5.0)
        row["robustness"] = {
            c: 100.0 * float((_predictions(runner, xc, f"{b.label}: {c}") == y).mean()) for c, xc in corrupted.items()
        }
        if row["robustness"]:
            row["robustness"]["mean"] = float(np.mean(list(row["robustness"].values())))
        rows.append(row)

    ref = rows[0]["accuracy"]
    gates = []
    for row in rows[1:]:
        allowed = gates_cfg["max_drop"].get(row["precision"], 0.0)
        drop = ref - row["accuracy"]
        row["drop_vs_fp32"] = drop
        gates.append({"artifact": row["artifact"], "gate": f"accuracy drop vs FP32 <= {allowed}",
                      "value": round(drop, 2), "pass": bool(drop <= allowed + 1e-9)})
        fps = row["speed"]["throughput_fps"]
        gates.append({"artifact": row["artifact"], "gate": f"fps >= line rate {line_fps:.1f}",
                      "value": round(fps, 1), "pass": bool(fps >= line_fps)})
    comparable = not builtin
    paper_rows = []
    for row in rows:
        entry = {"artifact": row["artifact"], "accuracy": row["accuracy"], "paper": paper.get("accuracy"),
                 "fps": row["speed"]["throughput_fps"], "paper_fps": paper.get("fps"),
                 "comparable": comparable}
        paper_rows.append(entry)
        if comparable and row is not rows[0] and paper.get("accuracy") is not None:
            floor = paper["accuracy"] - gates_cfg.get("paper_tolerance", 1.0)
            gates.append({"artifact": row["artifact"], "gate": f"accuracy >= paper {paper['accuracy']} - "
                          f"{gates_cfg.get('paper_tolerance', 1.0)}", "value": round(row["accuracy"], 2),
                          "pass": bool(row["accuracy"] >= floor)})

    results = {
        "recipe": recipe.name,
        "data": data.describe(),
        "builtin_data": builtin,
        "threads": threads,
        "line_rate_fps": line_fps,
        "rows": rows,
        "paper": paper_rows,
        "gates": gates,
        "passed": all(g["pass"] for g in gates),
        "notes": ([] if comparable else ["built-in generated data: paper figures are not comparable"])
        + ["fps: batch 1 on this machine's CPU; the paper's figure is on its own GPU (information, not a gate)"],
    }
    with staged_dir(out) as tmp:
        write_json(tmp / "results.json", results)
        (tmp / "report.md").write_text(validation_markdown(recipe, results))
        write_manifest(tmp, STAGE, {"reference": reference_onnx, **{b.label: b.file for b in builds[1:]}},
                       {"recipe": recipe.name, "robustness": with_robustness, "seed": seed}, {"passed": results["passed"]})
    return results
