"""Validate built artifacts: the task's figures against the FP32 model and the paper, fps (model and
post-processing, batch 1) against the paper and the line rate, optionally under the paper's
diversity-enhanced conditions; and the drift reference a bundle carries to the camera (``drift.json``: the test
images' features, what each condition does to them, each artifact's frame scores)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.artifacts import read_manifest, staged_dir, write_json, write_manifest
from edgekit.backends import get_backend
from edgekit.data import robustness
from edgekit.data.recipe_data import DataSource, as_source, load_split
from edgekit.drift.reference import Measured
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.report import validation_markdown
from edgekit.stats import at_least, describe, paired_drop
from edgekit.tasks import get_task
from edgekit.timing import measure

STAGE = "validate"
GOLDEN_IMAGES = 8      # test images whose raw outputs each artifact leaves for the camera's check (golden.npz)


@dataclass
class Built:
    """A runnable artifact: a compile-stage folder, or the FP32 reference ONNX."""
    label: str
    backend: str
    precision: str
    file: Path
    compute: str | None = None     # bf16: an FP16 artifact computing in the CPU's bf16


def runnable(folder: Path) -> Built:
    m = read_manifest(folder)
    s = m["settings"]
    if m.get("stage") != "compile" or s.get("kind") == "device-kit":
        raise EdgekitError(f"{folder}: not a runnable compiled artifact"
                           + (" (a device kit: build its engines with `edgekit compile --kit`)" if s.get("kind") else ""))
    return Built(f"{s['backend']}-{s['precision']}", s["backend"], s["precision"], Path(folder) / m["results"]["file"],
                 s.get("compute"))


def required_fps(line: dict) -> float:
    """Frames the camera must process per second to cover the strip (SEEDS.md)."""
    advance = line["fov_along_strip_m"] * (1.0 - line["overlap"])
    return line.get("tiles_per_frame", 1) * line["strip_speed_mps"] / advance


def pruning_record(manifest: dict | None) -> dict | None:
    """What the prune stage kept and cost, for the report (None for an unpruned build)."""
    if not manifest:
        return None
    r = manifest["results"]
    p, spec = r["pruning"], manifest["settings"]["prune"]
    after = r["headline"]["value"]
    decision = r.get("decision", {"kept": True})
    return {"ratio": spec["ratio"], "importance": spec["importance"], "max_drop": spec["max_drop"],
            "macs_kept": p["macs_kept"], "params_kept": p["params_kept"], "unpruned": p["before"],
            "after_pruning": p["after_pruning"], "fine_tuned": after, "finetune_epochs": r["epochs"],
            "drop": p["before"] - after, "kept": decision["kept"], "reason": decision.get("reason", ""),
            "table": decision.get("table", [])}


def sparsity_record(manifest: dict | None) -> dict | None:
    """What the sparsify stage masked, what it cost and whether the 2:4 model went on (None without one)."""
    if not manifest:
        return None
    r = manifest["results"]
    s, decision = r["sparsity"], r["decision"]
    return {"max_drop": manifest["settings"]["sparsity"]["max_drop"], "dense": s["before"],
            "after_masking": s["after_masking"], "fine_tuned": r["headline"]["value"], "finetune_epochs": r["epochs"],
            "macs_share": s["macs_share"], "layers": s["layers"], "drop": decision["drop"], "kept": decision["kept"],
            "reason": decision["reason"]}


def verdict(results: dict) -> str:
    """The validation in a few words: every gate passing, passing with warnings (how many), or failed."""
    if not results["passed"]:
        return "a gate FAILED"
    warned = len(results.get("warned", []))
    return f"all gates pass, {warned} warn (too few test images to decide)" if warned else "all gates pass"


def threshold_gate(passed: bool) -> dict:
    """A gate on a measured number (fps, what pruning cost during the build): pass or fail."""
    return {"status": "pass" if passed else "fail", "pass": bool(passed)}


def statistical_gate(artifact: str, gate: str, value: float, evidence: dict) -> dict:
    """A gate decided by paired evidence (``edgekit.stats``): it fails only when the evidence shows the figure
    beyond the limit; ``warn`` when the test set is too small to show it within."""
    return {"artifact": artifact, "gate": gate, "value": value, "status": evidence["status"],
            "pass": evidence["status"] != "fail", "evidence": evidence, "detail": describe(evidence)}


def validate(
    recipe: Recipe,
    reference_onnx: Path,
    artifacts: list[Path],
    data_source: DataSource | Path,
    out: Path,
    with_robustness: bool = False,
    threads: int | None = None,
    seed: int = 0,
    gate_fps: bool = True,
    pruning: dict | None = None,
    sparsity: dict | None = None,
    notes: list[str] | None = None,
) -> dict:
    """Evaluate the FP32 reference and each artifact on the test split; write report.md + results.json.

    ``gate_fps=False`` when the artifacts are a fallback run off the target (a Jetson build on a
    workstation): their fps is then reported, not gated. ``pruning`` (the prune stage's manifest)
    adds the gate on what pruning cost: the reference is then the pruned, fine-tuned FP32 model; ``sparsity``
    (the sparsify stage's) likewise for 2:4 sparsity, and its layer table."""
    threads = threads or os.cpu_count() or 1
    source = as_source(data_source)
    data = load_split(recipe, source)
    task = get_task(recipe).validation(recipe, data)
    builds = [Built("fp32-reference", "onnxruntime", "fp32", Path(reference_onnx))] + [runnable(a) for a in artifacts]

    gates_cfg = recipe.validate
    builtin = (source.root / "synth.json").is_file()
    paper = recipe.paper
    line_fps = required_fps(gates_cfg["line"])
    drift = Measured(task.images, recipe.preprocess.size)
    task.frame_summary = lambda answer: get_task(recipe).frame_summary(answer, recipe.classes)
    corrupted = {}
    for cond, images in robustness.degraded(task.images, seed):
        drift.condition(cond, images)
        if with_robustness:
            corrupted[cond] = recipe.preprocess.batch(images)

    rows = []
    answers = {}       # each artifact's per-image answers, for the paired gates (not written to results.json)
    picked = np.linspace(0, len(task.x) - 1, min(GOLDEN_IMAGES, len(task.x))).round().astype(int)
    golden = {"input": task.x[picked], **{f"frame:{k}": task.images[i] for k, i in enumerate(picked)}}
    names = get_task(recipe).outputs
    for b in builds:
        runner = get_backend(b.backend).load(b.file, threads)
        outs = [runner.infer(x[None]) for x in golden["input"]]
        golden.update({f"{b.label}:{name}": np.concatenate([o[i] for o in outs]) for i, name in enumerate(names)})
        row = {"artifact": b.label, "backend": b.backend, "precision": b.precision, "compute": b.compute,
               "file": str(b.file),
               **task.evaluate(runner, b.label)}
        answers[b.label] = row.pop("answers")
        drift.answered(b.label, None, task.frame_summaries)
        row["speed"] = measure(task.pipeline(runner), task.x[:1], warmup=5, iters=50, max_seconds=5.0)
        row["robustness"] = {}
        for c, xc in corrupted.items():
            row["robustness"][c] = task.score(runner, xc, f"{b.label}: {c}")
            drift.answered(b.label, c, task.frame_summaries)
        if row["robustness"]:
            row["robustness"]["mean"] = float(np.mean(list(row["robustness"].values())))
        rows.append(row)

    key = task.headline
    ref = rows[0][key]
    gates = []
    for row in rows[1:]:
        allowed = gates_cfg["max_drop"].get(row["precision"], 0.0)
        evidence = paired_drop(answers[rows[0]["artifact"]], answers[row["artifact"]], allowed, seed)
        row["drop_vs_fp32"] = ref - row[key]
        gates.append(statistical_gate(row["artifact"], f"{task.column} drop vs FP32 <= {allowed}",
                                      round(row["drop_vs_fp32"], 2), evidence))
        fps = row["speed"]["throughput_fps"]
        if gate_fps:
            gates.append({"artifact": row["artifact"], "gate": f"fps >= line rate {line_fps:.1f}",
                          "value": round(fps, 1), **threshold_gate(fps >= line_fps)})
    pruned = pruning_record(pruning)
    if pruned and pruned["kept"]:
        gates.insert(0, {"artifact": "fp32-reference", "gate": f"{task.column} drop vs unpruned <= {pruned['max_drop']}",
                         "value": round(pruned["drop"], 2), **threshold_gate(pruned["drop"] <= pruned["max_drop"] + 1e-9)})
    sparse = sparsity_record(sparsity)
    if sparse and sparse["kept"]:
        gates.insert(0, {"artifact": "fp32-reference", "gate": f"{task.column} drop vs dense (2:4) <= {sparse['max_drop']}",
                         "value": round(sparse["drop"], 2), **threshold_gate(sparse["drop"] <= sparse["max_drop"] + 1e-9)})
    comparable = not builtin and paper.get("comparable", True)     # false: the paper's figures are another data's
    figure = paper.get(task.paper_key)
    tolerance = gates_cfg.get("paper_tolerance", 1.0)
    paper_rows = []
    for row in rows:
        paper_rows.append({"artifact": row["artifact"], "value": row[key], "paper": figure,
                           "fps": row["speed"]["throughput_fps"], "paper_fps": paper.get("fps"),
                           "comparable": comparable})
        if comparable and row is not rows[0] and figure is not None:
            evidence = at_least(answers[row["artifact"]], figure - tolerance, seed)
            gates.append(statistical_gate(row["artifact"], f"{task.column} >= paper {figure} - {tolerance}",
                                          round(row[key], 2), evidence))

    results = {
        "recipe": recipe.name,
        "task": recipe.task,
        "metric": {"key": key, "column": task.column},
        "data": data.describe(),
        "builtin_data": builtin,
        "threads": threads,
        "line_rate_fps": line_fps,
        "rows": rows,
        "paper": paper_rows,
        "gates": gates,
        "pruning": pruned,
        "sparsity": sparse,
        "passed": all(g["pass"] for g in gates),
        "warned": [g["artifact"] + ": " + g["gate"] for g in gates if g["status"] == "warn"],
        "notes": list(notes or []) + (["built-in generated data: paper figures are not comparable"] if builtin else [])
        + ([f"the paper's figures are on {paper.get('dataset', 'other data')} (the recipe's paper.comparable: false): "
            "for scale, not a gate"] if not builtin and not comparable else [])
        + ["fps: batch 1 on this machine's CPU, post-processing included; the paper's figure is on its own "
           "GPU (information, not a gate)"]
        + ([] if gate_fps else ["fps is not gated: these artifacts are the target's CPU fallback run off the "
                                    "target; measure the device's engines with `edgekit bench` there"]),
    }
    with staged_dir(out) as tmp:
        results["extras"] = task.write_extras(tmp, results)
        write_json(tmp / "results.json", results)
        np.savez(tmp / "golden.npz", **golden)
        drift.write(tmp)
        (tmp / "report.md").write_text(validation_markdown(recipe, results, task.report(results)))
        write_manifest(tmp, STAGE, {"reference": reference_onnx, **{b.label: b.file for b in builds[1:]}},
                       {"recipe": recipe.name, "robustness": with_robustness, "seed": seed,
                        "data": {k: str(v) for k, v in source.inputs().items()}, "split": source.split}, {"passed": results["passed"]})
    return results
