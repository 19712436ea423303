"""Record a finished `edgekit build` run in benchmarks/results/: figures, training time, machine.

Usage: python benchmarks/record_build.py RUN_DIR NAME WHAT
Writes results/NAME.json (WHAT the run is, the build command, date, machine, build summary, training manifest
results, validation results) and
results/NAME.md (the validation report with the training record on top), and the report's
figures as results/NAME-<figure>.jpg.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2

from edgekit.artifacts import read_manifest, write_json
from edgekit.errors import EdgekitError, run_reporting
from run_tables import provenance

HERE = Path(__file__).resolve().parent


def trained(run: Path, stage: str) -> dict | None:
    """A training-like stage's manifest (train, or prune's fine-tuning) with its per-epoch history."""
    if not (run / stage).is_dir():
        return None
    m = read_manifest(run / stage)
    return {"settings": m["settings"], "results": m["results"], "created": m["created"],
            "history": json.loads((run / stage / "history.json").read_text())}


def epochs_line(label: str, rec: dict) -> str:
    r = rec["results"]
    # runs trained before the headline's key was recorded: the test figure equal to the headline
    key = r["headline"].get("key") or next(k for k, v in r["test"].items() if v == r["headline"]["value"])
    where = (r["device"] if r["device"] != "cpu" else f"CPU, {r['torch_threads']} threads") + (
        ", bf16 autocast" if r.get("autocast") == "bf16" else "")
    return (f"{label}: {r['epochs']} epochs in {r['train_seconds_total'] / 60:.1f} min ({where}), "
            + (f"pretrained tensors loaded: {r['pretrained_tensors_loaded']}; " if "pretrained_tensors_loaded" in r else "")
            + f"split {r['data']['train']} train / {r['data']['test']} test; {r['headline']['metric']} per epoch: "
            + ", ".join(f"{h['test'][key]:.1f}" if h["test"] else "-" for h in rec["history"]) + ".")


def build_command(build: dict) -> str:
    """The `edgekit build` command line that the run's build.json describes."""
    options = {"data": "--data", "test_data": "--test-data", "split_file": "--split-file"}
    return " ".join(["edgekit build", build["recipe"], "--target", build["target"]]
                    + [f"{options[k]} {v}" for k, v in build.get("data", {}).items() if k in options and v])


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    run, name, what = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    if not (run / "build.json").is_file() or not (run / "validate" / "results.json").is_file():
        raise EdgekitError(f"{run}: not a finished build run folder (needs build.json and validate/results.json)")
    build = json.loads((run / "build.json").read_text())
    pruned = any(s["stage"] == "prune" for s in build["stages"])
    train, prune = trained(run, "train"), trained(run, "prune") if pruned else None
    validation = json.loads((run / "validate" / "results.json").read_text())
    record = {**provenance(what, build_command(build)), "build": build, "train": train, "prune": prune,
              "validation": validation}
    write_json(HERE / "results" / f"{name}.json", record)
    head = [f"# {name}", "", f"Machine: {record['machine']}", ""]
    if train:
        head += [epochs_line("Training", train), ""]
    if prune:
        head += [epochs_line("Fine-tuning after pruning", prune), ""]
    stages = "\n".join(f"| {s['stage']} | {s['status']} | {s['seconds']} | {s['result']} |" for s in build["stages"])
    head += ["| stage | status | seconds | result |", "|---|---|---|---|", stages, ""]
    report = (run / "validate" / "report.md").read_text()
    for png in sorted((run / "validate").glob("*.png")):  # the report's figures, beside it as JPEG (a tenth the size)
        kept = f"{name}-{png.stem}.jpg"
        cv2.imwrite(str(HERE / "results" / kept), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 85])
        report = report.replace(f"]({png.name})", f"]({kept})")
    (HERE / "results" / f"{name}.md").write_text("\n".join(head) + "\n" + report)
    print(f"wrote {HERE / 'results' / name}.json and .md")


if __name__ == "__main__":
    run_reporting(main)
