"""Record a finished `edgekit build` run in benchmarks/results/: figures, training time, machine.

Usage: python benchmarks/record_build.py RUN_DIR NAME
Writes results/NAME.json (build summary, training manifest results, validation results) and
results/NAME.md (the validation report with the training record on top), and the report's
figures as results/NAME-<figure>.jpg.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2

from edgekit.artifacts import read_manifest, write_json
from edgekit.stages.bench import machine

HERE = Path(__file__).resolve().parent


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    run, name = Path(sys.argv[1]), sys.argv[2]
    build = json.loads((run / "build.json").read_text())
    train = read_manifest(run / "train") if (run / "train").is_dir() else None
    validation = json.loads((run / "validate" / "results.json").read_text())
    history = json.loads((run / "train" / "history.json").read_text()) if train else None
    record = {"build": build, "train": train and {"settings": train["settings"], "results": train["results"],
                                                  "created": train["created"], "history": history},
              "validation": validation, "machine": machine()}
    write_json(HERE / "results" / f"{name}.json", record)
    head = [f"# {name}", "", f"Machine: {record['machine']}", ""]
    if train:
        r = train["results"]
        # runs trained before the headline's key was recorded: the test figure equal to the headline
        key = r["headline"].get("key") or next(k for k, v in r["test"].items() if v == r["headline"]["value"])
        where = r["device"] if r["device"] != "cpu" else f"CPU, {r['torch_threads']} threads"
        head += [f"Training: {r['epochs']} epochs in {r['train_seconds_total'] / 60:.1f} min ({where}), "
                 f"pretrained tensors loaded: {r['pretrained_tensors_loaded']}; "
                 f"split {r['data']['train']} train / {r['data']['test']} test; "
                 f"{r['headline']['metric']} per epoch: "
                 + ", ".join(f"{h['test'][key]:.1f}" for h in history) + ".", ""]
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
    main()
