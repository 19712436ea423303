"""``edgekit bundle RUN --target T --key K``: the signed bundle of what a camera of target T runs, from a
finished build.

For a TensorRT target the payload is the device kit (the camera builds its engines); for a CPU target
it is the fastest compiled artifact whose validation gates all passed (INT8, else FP16, else FP32),
with its ``pipeline.json`` and ``recipe.yaml``. Golden images go along (:mod:`edgekit.camera.golden`: the
raw outputs validation produced for a few test images, per precision the camera may run, and the
tolerance to hold), with the validation report, and the drift reference the camera watches its frames against
(:mod:`edgekit.drift.reference`); the manifest carries the recipe, the target, the artifact and its validated
figure."""
from __future__ import annotations

import datetime as _dt
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.backends.tensorrt.kit_build import read_kit
from edgekit.camera import drift, golden
from edgekit.camera.model import PREFERENCE
from edgekit.deploy import keys as keys_mod
from edgekit.deploy.bundle import write_bundle
from edgekit.drift.reference import for_artifact
from edgekit.errors import EdgekitError
from edgekit.targets import load_target


def _json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise EdgekitError(f"{path.parent.parent}: no {path.relative_to(path.parent.parent)}: {what}")
    return json.loads(path.read_text())


def choose(run: Path, results: dict, device_kit: bool) -> tuple[str, Path, dict | None]:
    """(label, folder, validation row) of what the bundle carries."""
    if device_kit:
        return "tensorrt-kit", run / "compile" / "tensorrt-kit", None
    failed = {g["artifact"] for g in results["gates"] if not g["pass"]}
    rows = [r for r in results["rows"][1:] if r["artifact"] not in failed and (run / "compile" / r["artifact"]).is_dir()]
    rows.sort(key=lambda r: PREFERENCE.index(r["precision"]) if r["precision"] in PREFERENCE else len(PREFERENCE))
    if not rows:
        raise EdgekitError(f"{run}: no compiled artifact passed its validation gates "
                           f"({', '.join(sorted(failed)) or 'none validated'}): nothing to bundle")
    return rows[0]["artifact"], run / "compile" / rows[0]["artifact"], rows[0]


def golden_files(run: Path, results: dict, precisions: dict[str, str], folder: Path) -> dict[str, Path]:
    """Write the golden files for ``precisions`` (precision -> the validated artifact whose outputs the
    camera must reproduce) into ``folder``; payload name -> file."""
    source = run / "validate" / "golden.npz"
    if not source.is_file():
        raise EdgekitError(f"{run}: no validate/golden.npz (validated by an older edgekit: run `edgekit validate` again)")
    with np.load(source) as data:
        names = list(dict.fromkeys(k.split(":", 1)[1] for k in data.files if ":" in k and not k.startswith("frame:")))
        reference = {n: data[f"{results['rows'][0]['artifact']}:{n}"] for n in names}
        artifacts = {p: {"artifact": label, "outputs": {n: data[f"{label}:{n}"] for n in names}}
                     for p, label in precisions.items()}
        inputs = data["input"]
        frames = [data[f"frame:{i}"] for i in range(len(inputs)) if f"frame:{i}" in data.files]
    if len(frames) != len(inputs):
        raise EdgekitError(f"{run}: validate/golden.npz holds no frames (validated by an older edgekit: run "
                           "`edgekit validate` again)")
    return {f"{golden.FOLDER}/{f.name}": f for f in golden.write(folder, frames, inputs, names, reference, artifacts)}


def _validated(results: dict, row: dict | None, kit: Path) -> dict[str, str]:
    """Precision -> validated artifact label, for what the camera will run: the bundled artifact, or each
    precision of a device kit (the fallback artifacts validation ran in their place)."""
    if row is not None:
        return {row["precision"]: row["artifact"]}
    wanted = read_kit(kit)["precisions"]
    found = {}
    for r in results["rows"][1:]:
        found.setdefault(r["precision"], r["artifact"])
    missing = [p for p in wanted if p not in found]
    if missing:
        raise EdgekitError(f"{kit}: no validated artifact for {', '.join(missing)}: the camera's engines could "
                           "not be checked against golden outputs")
    return {p: found[p] for p in wanted}


def bundle(run: Path, target: str, key_path: Path, out: Path | None = None) -> dict[str, Any]:
    """Write the bundle; returns its manifest with ``path``."""
    run = Path(run)
    built = _json(run / "build.json", "not a finished `edgekit build` run")
    t = load_target(target)
    if built["target"] != t.name:
        raise EdgekitError(f"{run}: built for {built['target']}, not {t.name}: build for that target first")
    key = keys_mod.load_private(key_path)                 # a bad key fails before any file is read
    results = _json(run / "validate" / "results.json", "the run was not validated")
    label, folder, row = choose(run, results, t.backend == "tensorrt")
    if not folder.is_dir():
        raise EdgekitError(f"{folder}: missing from the run")
    files = {f"model/{p.relative_to(folder).as_posix()}": p for p in sorted(folder.rglob("*")) if p.is_file()}
    report = run / "validate" / "report.md"
    if report.is_file():
        files["validation/report.md"] = report
    with tempfile.TemporaryDirectory() as tmp:
        validated = _validated(results, row, folder)
        files.update(golden_files(run, results, validated, Path(tmp)))
        reference = for_artifact(run / "validate", results, validated[min(validated, key=PREFERENCE.index)])
        if reference is not None:
            files[f"{drift.FOLDER}/{drift.FILE}"] = reference.write(Path(tmp))
        return _write(run, t, built, results, label, row, files, key, out)


def _write(run: Path, t, built: dict, results: dict, label: str, row: dict | None, files: dict[str, Path], key,
           out: Path | None) -> dict[str, Any]:
    column = results["metric"]["column"]
    meta = {
        "recipe": built["recipe"], "target": t.name, "kind": "device-kit" if label == "tensorrt-kit" else "artifact",
        "artifact": label, "backend": "tensorrt" if row is None else row["backend"],
        "precision": None if row is None else row["precision"],
        "validation": {"figure": column, "value": None if row is None else row[results["metric"]["key"]],
                       "reference": results["rows"][0][results["metric"]["key"]], "passed": results["passed"]},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "edgekit": __version__,
    }
    out = Path(out) if out else run / f"{built['recipe']}--{t.name}--{label}.bundle"
    manifest = write_bundle(files, meta, key, out)
    return {**manifest, "path": str(out), "signed_by": keys_mod.fingerprint(key.public_key())}
