"""The drift reference: measured by validation on the test images (``validate/drift.json``), composed for one
artifact by the bundle stage into what the camera reads (``drift/reference.json``,
:class:`edgekit.camera.drift.Reference`)."""
from __future__ import annotations

import json
from pathlib import Path
import numpy as np

from edgekit.camera.drift import FORMAT, IMAGE_FEATURES, Reference, image_features
from edgekit.errors import EdgekitError

FILE = "drift.json"


def _values(v) -> list[float]:
    return [float(f"{x:.6g}") for x in v]


def _features(images: list[np.ndarray], size: int) -> dict[str, list[float]]:
    """Each image feature over ``images``, as the camera computes it."""
    table = np.array([image_features(im, size) for im in images], np.float64).reshape(-1, len(IMAGE_FEATURES))
    return {f: _values(table[:, i]) for i, f in enumerate(IMAGE_FEATURES)}


class Measured:
    """What validation measures for the drift reference, filled as it goes and written as ``drift.json``."""

    def __init__(self, images: list[np.ndarray], size: int) -> None:
        self.size, self.images = size, len(images)
        self.values = _features(images, size)
        self.conditions: dict[str, dict[str, list[float]]] = {}
        self.answers: dict[str, dict[str, dict]] = {}   # artifact -> "clean" or condition -> per image scores, groups

    def condition(self, name: str, images: list[np.ndarray]) -> dict[str, list[float]]:
        """The features of the test images under robustness condition ``name`` (kept, and returned)."""
        self.conditions[name] = _features(images, self.size)
        return self.conditions[name]

    def answered(self, artifact: str, condition: str | None, summaries: list[tuple[float, str]]) -> None:
        """What ``artifact`` answered for each test image (clean, or under ``condition``): score and group."""
        self.answers.setdefault(artifact, {})[condition or "clean"] = {
            "scores": _values(s for s, _ in summaries), "groups": [g for _, g in summaries]}

    def write(self, folder: Path) -> Path:
        path = Path(folder) / FILE
        path.write_text(json.dumps({
            "format": FORMAT, "size": self.size, "images": self.images, "values": self.values,
            "conditions": self.conditions, "answers": self.answers}) + "\n")
        return path


def for_artifact(validate_dir: Path, results: dict, artifact: str) -> Reference | None:
    """The camera's reference for ``artifact`` (its frame scores, the accuracy it kept under each condition);
    None for a run validated before drift references existed."""
    path = Path(validate_dir) / FILE
    if not path.is_file():
        return None
    measured = json.loads(path.read_text())
    row = next((r for r in results["rows"] if r["artifact"] == artifact), None)
    answers = measured.get("answers", {}).get(artifact, {})
    if row is None or "clean" not in answers:
        raise EdgekitError(f"{path}: no validation of {artifact} (validate the run again)")
    robustness = row.get("robustness") or {}
    conditions = {}
    for name, values in measured["conditions"].items():
        answered = answers.get(name)          # measured with --robustness: the condition's own answers
        conditions[name] = {"values": dict(values, **({"score": answered["scores"]} if answered else {})),
                            "groups": (answered or answers["clean"])["groups"], "accuracy": robustness.get(name)}
    return Reference({"format": FORMAT, "size": measured["size"], "artifact": artifact,
                      "values": dict(measured["values"], score=answers["clean"]["scores"]),
                      "groups": answers["clean"]["groups"], "conditions": conditions,
                      "figure": results["metric"]["column"], "clean": row[results["metric"]["key"]]}, str(path))
