"""Golden images: a bundle's evidence that a camera runs the model validation ran, checked on the camera
before its slot may become active, and again by the runtime before it swaps a model in.

``golden/golden.npz`` holds a few test images as the camera would read them (``frame:<i>``), the same
pre-processed as validation pre-processed them (``input``) and, per precision the bundle can run, the raw
outputs validation's artifact of that precision gave for them (``<precision>:<output>``);
``golden/golden.json`` says which artifact gave them and the tolerance per output. The check runs the slot
as the line will (:class:`edgekit.camera.model.LineModel`: the slot's runner and ``pipeline.json``): each
frame through the camera's pre-processing, compared with validation's input (``PREPROCESS_TOLERANCE``: an
OpenCV whose resize rounds a level differently passes, a wrong size, channel order or normalisation does
not); validation's inputs through the runner, each output compared with :func:`deviation` (the largest
absolute difference, as a fraction of the expected output's largest magnitude); and those outputs through
the post-processing to the JSON line the line would write. The output tolerance is ``MARGIN`` times the
artifact's own deviation from the FP32 model on the same images, never below ``FLOOR``: a camera whose
kernels quantize no worse than validation's stays within twice validation's own distance from FP32 (the
triangle inequality), while a wrong, damaged or mis-built model does not.

Device-side code: Python 3.6+, numpy.
"""
import json
from pathlib import Path
from typing import Any, Dict, List

import numpy as np

from edgekit.errors import EdgekitError

FOLDER, ARRAYS, SPEC = "golden", "golden.npz", "golden.json"
MARGIN = 2.0
FLOOR = 0.02
PREPROCESS_TOLERANCE = 0.02


def deviation(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got - expected| as a fraction of max |expected| (inf when the shapes differ)."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    if got.shape != expected.shape:
        return float("inf")
    scale = max(float(np.abs(expected).max()), 1e-6)
    return float(np.abs(got - expected).max()) / scale


def write(folder: Path, frames: List[np.ndarray], inputs: np.ndarray, names: List[str],
          reference: Dict[str, np.ndarray], artifacts: Dict[str, Dict[str, Any]]) -> List[Path]:
    """Write the golden files into ``folder``. ``frames``: the images as read (uint8), ``inputs`` the same
    pre-processed; ``reference``: the FP32 model's outputs by name; ``artifacts``: per precision,
    ``{"artifact": label, "outputs": {name: array}}``. Returns the files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if len(frames) != len(inputs):
        raise ValueError("{} frames for {} inputs".format(len(frames), len(inputs)))
    arrays = {"input": np.asarray(inputs, np.float32)}
    arrays.update({"frame:{}".format(i): np.asarray(f, np.uint8) for i, f in enumerate(frames)})
    spec = {"images": int(len(inputs)), "outputs": list(names), "margin": MARGIN, "floor": FLOOR, "precisions": {}}
    for precision, entry in sorted(artifacts.items()):
        tolerance = {}
        for name in names:
            arrays["{}:{}".format(precision, name)] = entry["outputs"][name]
            measured = deviation(entry["outputs"][name], reference[name])
            tolerance[name] = max(FLOOR, MARGIN * measured)
        spec["precisions"][precision] = {"artifact": entry["artifact"], "tolerance": tolerance}
    np.savez_compressed(str(folder / ARRAYS), **arrays)
    (folder / SPEC).write_text(json.dumps(spec, indent=2) + "\n")
    return [folder / ARRAYS, folder / SPEC]


def check(model: Any, folder: Path, where: str = "") -> Dict[str, Any]:
    """Run the golden images through ``model`` (a :class:`~edgekit.camera.model.LineModel`: pre-processing,
    runner, post-processing) and compare with what validation's artifact of ``model.precision`` gave; an
    :class:`EdgekitError` naming the first step out of tolerance, else the figures."""
    folder = Path(folder)
    where = where or str(folder)
    precision = model.precision
    if not (folder / SPEC).is_file() or not (folder / ARRAYS).is_file():
        raise EdgekitError("{}: no golden images ({}/{}): the bundle cannot be checked".format(where, FOLDER, SPEC))
    spec = json.loads((folder / SPEC).read_text())
    entry = spec["precisions"].get(precision)
    if entry is None:
        raise EdgekitError("{}: no golden outputs for {} (the bundle has {})".format(
            where, precision, ", ".join(sorted(spec["precisions"])) or "none"))
    with np.load(str(folder / ARRAYS), allow_pickle=False) as data:
        inputs = data["input"]
        frames = [data["frame:{}".format(i)] for i in range(len(inputs)) if "frame:{}".format(i) in data.files]
        expected = {name: data["{}:{}".format(precision, name)] for name in spec["outputs"]}
    if len(frames) != len(inputs):
        raise EdgekitError("{}: golden images without the frames they came from (bundled by an older edgekit: "
                           "bundle it again)".format(where))
    pre = max(deviation(model.preprocess(frame), x) for frame, x in zip(frames, inputs))
    if not pre <= PREPROCESS_TOLERANCE:
        raise EdgekitError("{}: golden images fail: this camera's pre-processing deviates {:.3g} of the range from "
                           "validation's (tolerance {}): not the pixels the model was validated on".format(
                               where, pre, PREPROCESS_TOLERANCE))
    runs = [model.runner.infer(np.ascontiguousarray(x[None])) for x in inputs]
    figures = {}
    for i, name in enumerate(spec["outputs"]):
        got = np.concatenate([np.asarray(r[i]) for r in runs])
        figures[name] = {"deviation": deviation(got, expected[name]), "tolerance": entry["tolerance"][name]}
    for name, f in figures.items():
        if not f["deviation"] <= f["tolerance"]:
            raise EdgekitError("{}: golden images fail: output {!r} deviates {:.3g} of its range from what "
                               "validation's {} gave (tolerance {:.3g}): not the validated model".format(
                                   where, name, f["deviation"], entry["artifact"], f["tolerance"]))
    try:
        lines = [json.dumps(model.record(model.pipeline.answers(r)[0], 0.0)) for r in runs]
    except Exception as exc:  # noqa: BLE001 - whatever breaks the post-processing breaks the line
        raise EdgekitError("{}: golden images fail: the post-processing of pipeline.json cannot answer the "
                           "model's outputs ({}: {})".format(where, type(exc).__name__, exc)) from None
    return {"images": len(inputs), "precision": precision, "artifact": entry["artifact"], "outputs": figures,
            "preprocess_deviation": pre, "answers": len(lines)}
