"""Accuracy-bounded INT8: when the INT8 model loses more than the recipe allows on images held aside from
the calibration set, the layers most responsible stay in float until the loss is within bounds.

Ranking: each quantized layer (a Conv, ConvTranspose, Gemm or MatMul with weights) is left in float alone in
the Q/DQ model, and ranked by how much that brings the model's outputs on the held-aside images back towards
FP32's (normalised mean squared error, as NNCF ranks without a metric). Then layers join the float set in
that order, the task's own figure on the held-aside images measured after each, until the drop from FP32 is
within ``max_drop`` or ``max_float`` of the layers are float. "Within" is the validation gate's paired statistic
on the held-aside images (``edgekit.stats.paired_drop``), the INT8 model's answers compared with FP32's image by
image: within when the gate would pass (the drop's 95 % interval inside ``max_drop``); never when it would fail;
and where the held-aside set is too small to decide (the gate would warn), the drop itself decides — chasing an
interval the set cannot narrow would only keep layers in float for nothing (the test split's gate decides). The float layers are simply not quantized in
the Q/DQ model (their inputs and weights carry no Q/DQ pair), so TensorRT, OpenVINO and ONNX Runtime all run
the same mixed-precision network. The same ranking bounds NNCF's model for an OpenVINO target
(``edgekit.int8.openvino_nncf.bounded``: the float layers go to NNCF's ignored scope).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from edgekit.progress import bar
from edgekit.stats import Answers, paired_drop

WEIGHTED_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
Writer = Callable[[Path, tuple[str, ...]], None]     # (out file, nodes kept in float) -> a Q/DQ model


@dataclass
class Bound:
    """What the INT8 model is held to, on images held aside from calibration (never the test split)."""
    answers: Callable[[Path], Answers]  # the task's answers of a model file on the held-aside images
    inputs: list[np.ndarray]            # the same images, pre-processed, for the per-layer output error
    max_drop: float                     # points below FP32 allowed
    max_float: float = 0.25             # at most this share of the quantized layers kept in float
    threads: int = 2
    _fp32: dict = field(default_factory=dict, repr=False)

    def fp32_answers(self, fp32: Path) -> Answers:
        """The FP32 model's answers, computed once for every INT8 model held to it (the Q/DQ model, NNCF's)."""
        if fp32 not in self._fp32:
            self._fp32[fp32] = self.answers(fp32)
        return self._fp32[fp32]

    def check(self, fp32: Path, model: Path) -> tuple[float, dict]:
        """``model``'s figure and the paired evidence of its drop from FP32, with ``within`` the bound."""
        answers = self.answers(model)
        evidence = paired_drop(self.fp32_answers(fp32), answers, self.max_drop)
        evidence["within"] = evidence["status"] == "pass" or (
            evidence["status"] == "warn" and evidence["drop"] <= self.max_drop + 1e-9)
        return answers.value, evidence


def weighted_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes whose weights INT8 quantizes, in graph order."""
    weights = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in WEIGHTED_OPS and len(n.input) > 1 and n.input[1] in weights]


def _outputs(path: Path, inputs: list[np.ndarray], threads: int) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return [session.run(None, {name: x}) for x in inputs]


def output_error(reference: list[list[np.ndarray]], candidate: list[list[np.ndarray]]) -> float:
    """Normalised mean squared error of ``candidate`` against ``reference``, averaged over outputs and images."""
    errors = [float(np.mean((c - r) ** 2) / (np.mean(r ** 2) + 1e-12))
              for ref, cand in zip(reference, candidate) for r, c in zip(ref, cand)]
    return float(np.mean(errors))


Ranking = Callable[[], list[tuple[float, str]]]   # layers, most responsible first, with the error share each recovers


def ranking(fp32: Path, write: Writer, bound: Bound) -> Ranking:
    """The quantized layers of ``fp32`` by how much keeping each alone in float brings the Q/DQ model's outputs
    on the held-aside images back towards FP32's (share of the output error recovered), most first. Computed
    on the first call, then remembered: one ranking serves every INT8 model of the network (the Q/DQ model
    and NNCF's), so it is paid once and only when a model is out of bounds."""
    ranked: list[tuple[float, str]] = []

    def ranked_layers() -> list[tuple[float, str]]:
        if ranked:
            return ranked
        layers = weighted_layers(onnx.load(str(fp32)))
        reference = _outputs(fp32, bound.inputs, bound.threads)
        with tempfile.TemporaryDirectory(prefix="edgekit-sensitivity.") as tmp:
            probe = Path(tmp) / "probe.onnx"
            write(probe, ())
            baseline = output_error(reference, _outputs(probe, bound.inputs, bound.threads))
            for layer in bar(layers, "INT8 sensitivity per layer"):
                write(probe, (layer,))
                gain = baseline - output_error(reference, _outputs(probe, bound.inputs, bound.threads))
                ranked.append((gain / baseline if baseline else 0.0, layer))
        ranked.sort(key=lambda pair: -pair[0])
        return ranked

    return ranked_layers


def bounded(fp32: Path, out: Path, write: Writer, bound: Bound, ranked: Ranking | None = None,
            alternatives: dict[str, Callable[[Path], None]] | None = None) -> dict:
    """Write the full INT8 model to ``out``; if it drops more than the bound allows, try the every-layer
    ``alternatives`` (other writers of the same network, e.g. other activation ranges: no speed lost) in
    order, then keep the layers ``ranked`` names first (by default this Q/DQ model's own ranking) in float,
    one more at a time, until it is within the bound, and write that mixed model there instead. Returns the
    record for the artifact's manifest."""
    write(out, ())
    full, evidence = bound.check(fp32, out)
    record = {"held_aside_images": len(bound.inputs), "max_drop": bound.max_drop,
              "fp32": bound.fp32_answers(fp32).value, "int8": full, "kept_float": [], "final": full,
              "evidence": evidence, "within": evidence["within"]}
    if record["within"]:
        record["status"] = "within bound with every layer in INT8"
        return record
    for name, alternative in (alternatives or {}).items():
        alternative(out)
        score, evidence = bound.check(fp32, out)
        record.setdefault("alternatives", {})[name] = score
        if evidence["within"]:
            record.update(final=score, evidence=evidence, within=True,
                          status=f"within bound with every layer in INT8, {name}")
            return record
    layers = (ranked or ranking(fp32, write, bound))()
    limit = max(1, int(bound.max_float * len(layers)))
    kept: list[dict] = []
    score = full
    for recovered, layer in bar(layers[:limit], "keeping the most sensitive layers in float"):
        kept.append({"node": layer, "output_error_recovered": round(recovered, 4)})
        write(out, tuple(k["node"] for k in kept))
        score, evidence = bound.check(fp32, out)
        kept[-1]["score_after"] = score
        if evidence["within"]:
            break
    within = evidence["within"]
    record.update(kept_float=kept, final=score, quantized_layers=len(layers), evidence=evidence, within=within,
                  status=(f"within bound with {len(kept)} of {len(layers)} layers in float" if within else
                          f"NOT within bound: {len(kept)} of {len(layers)} layers in float (the most allowed)"))
    return record


def latency_ms(files: list[Path], threads: int, labels: list[str]) -> dict[str, float]:
    """Batch-1 latency (best p50 of interleaved rounds, ms) of model files on OpenVINO's CPU plugin: what
    keeping layers in float costs, and which INT8 model of two is faster."""
    from edgekit.backends import get_backend
    from edgekit.timing import interleaved_p50

    runners = [get_backend("openvino").load(f, threads) for f in files]
    x = np.zeros(runners[0].input_shape, dtype=np.float32)
    return interleaved_p50({label: runner.infer for label, runner in zip(labels, runners)}, x)
