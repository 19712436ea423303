"""Export to ONNX: static shapes, opset 17 and an opset-13 copy for older TensorRT parsers, checked and
compared with PyTorch."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from edgekit.artifacts import staged_dir, write_manifest
from edgekit.backends.base import onnx_input_shape, read_onnx
from edgekit.checkpoint import load_model
from edgekit.errors import EdgekitError
from edgekit.recipes import Recipe
from edgekit.tasks import get_task

STAGE = "export"
OPSET = 17                # TensorRT's parser documents opset <= 17 from 8.5
OPSET_COPIES = (13,)      # ... and <= 13 on 8.0-8.4 (JetPack 4.6 on Nano and Xavier: TensorRT 8.2)
MODEL = "model.onnx"
INPUT = "input"


def output_names(recipe: Recipe) -> tuple[str, ...]:
    """The graph's outputs, in the order runners return them (the task says)."""
    return get_task(recipe).outputs


def export_settings(recipe: Recipe) -> dict:
    """What an export artifact records as its settings (``build`` compares it to resume)."""
    return {"recipe": recipe.name, "opset": OPSET, "opset_copies": list(OPSET_COPIES),
            "outputs": list(output_names(recipe))}


def copy_name(opset: int) -> str:
    """The file of the model exported again at an older ``opset`` (for older TensorRT parsers)."""
    return f"model.opset{opset}.onnx"


def to_onnx(model: torch.nn.Module, shape: tuple[int, ...], path: Path, recipe: Recipe, opset: int = OPSET) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(shape),), str(path), opset_version=opset, input_names=[INPUT],
                          output_names=list(output_names(recipe)), dynamo=False, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _rel_diff(ref: list[np.ndarray], got: list[np.ndarray]) -> float:
    """Largest difference relative to each output's peak (logits of a deep net reach tens)."""
    return max(float(np.abs(r - g).max()) / max(1.0, float(np.abs(r).max())) for r, g in zip(ref, got))


def opset_copy(model: torch.nn.Module, shape: tuple[int, ...], folder: Path, recipe: Recipe, opset: int,
               reference: Path, samples: np.ndarray, tolerance: float) -> dict:
    """The model exported again at ``opset``, checked, and compared with ``reference`` on ONNX Runtime;
    ``{"error": why}`` when the network cannot be expressed at that opset (the preflight then says so)."""
    path = folder / copy_name(opset)
    try:
        to_onnx(model, shape, path, recipe, opset)
    except Exception as exc:  # noqa: BLE001  (torch's exporter raises many kinds)
        path.unlink(missing_ok=True)
        return {"error": f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"}
    ref, got = _session(reference), _session(path)
    diff = max(_rel_diff(ref.run(None, {INPUT: x[None]}), got.run(None, {INPUT: x[None]})) for x in samples)
    if diff > tolerance:
        path.unlink()
        return {"error": f"differs from the opset-{OPSET} model by {diff:.1e} of the output's peak"}
    return {"file": path.name, "max_rel_diff_vs_opset": diff}


def check_onnx(path: Path, recipe: Recipe) -> onnx.ModelProto:
    """Load a user's or our ONNX file; refuse anything that is not one or has the wrong input shape."""
    path = Path(path)
    model = read_onnx(path)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise EdgekitError(f"{path}: not a valid ONNX model ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})") from exc
    shape = onnx_input_shape(model, path)
    expected = (1, *recipe.preprocess.input_shape)
    if shape != expected:
        raise EdgekitError(f"{path}: input shape {shape} does not match recipe {recipe.name} (needs {expected})")
    return model


def as_outputs(result) -> list[np.ndarray]:
    """A model's return value (a tensor or a tuple of them) as the list of numpy outputs."""
    tensors = result if isinstance(result, (tuple, list)) else (result,)
    return [t.detach().float().cpu().numpy() for t in tensors]


def export(recipe: Recipe, checkpoint: Path, out: Path, samples: np.ndarray | None = None, tolerance: float = 1e-4) -> dict:
    """Export ``checkpoint`` (file, or a train artifact folder) into the artifact folder ``out``."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_dir():
        checkpoint = checkpoint / "model.pt"
    model = load_model(recipe, checkpoint)
    shape = (1, *recipe.preprocess.input_shape)
    if samples is None:  # random images through the recipe's pre-processing: inputs in the model's range
        pixels = np.random.default_rng(0).integers(0, 256, size=(4, recipe.preprocess.size, recipe.preprocess.size, 3))
        samples = recipe.preprocess.batch(list(pixels.astype(np.uint8)))
    with staged_dir(out) as tmp:
        path = tmp / MODEL
        to_onnx(model, shape, path, recipe, OPSET)
        session = _session(path)
        diffs, rel = [], []
        with torch.inference_mode():
            for x in samples:
                ref = as_outputs(model(torch.from_numpy(x[None])))
                got = session.run(None, {INPUT: x[None]})
                diffs.append(max(float(np.abs(r - g).max()) for r, g in zip(ref, got)))
                rel.append(_rel_diff(ref, got))
        max_diff, max_rel = max(diffs), max(rel)
        if max_rel > tolerance:
            raise EdgekitError(f"{path.name}: ONNX Runtime differs from PyTorch by {max_diff:.2e} "
                               f"({max_rel:.1e} of the output's peak, > {tolerance:.0e})")
        copies = {str(n): opset_copy(model, shape, tmp, recipe, n, path, samples, tolerance) for n in OPSET_COPIES}
        results = {"opset": OPSET, "input_shape": list(shape), "max_abs_diff_vs_pytorch": max_diff,
                   "max_rel_diff_vs_pytorch": max_rel, "opset_copies": copies,
                   "compared_inputs": len(samples), "size_bytes": path.stat().st_size}
        write_manifest(tmp, STAGE, {"checkpoint": checkpoint}, export_settings(recipe), results)
    return results
