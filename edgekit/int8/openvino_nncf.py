"""OpenVINO's own INT8: NNCF's post-training quantization of the FP32 model as OpenVINO reads it, from the
same calibration images, and the choice between it and the portable Q/DQ model for an OpenVINO target.

NNCF places quantizers for OpenVINO's CPU plugin (which inputs of which ops, u8 activations after ReLU,
bias correction, the overflow fix for CPUs without VNNI): often faster than the portable Q/DQ model,
which puts Q/DQ pairs where TensorRT wants them. It is held to the same accuracy bound as the Q/DQ model
(out of bounds, NNCF's other activation range estimators are tried first, then the network's most sensitive
layers, ranked once, go to NNCF's ignored scope until its figure on the held-aside images is within it), and
chosen only when it is faster by a margin within the bound (or the only one within it).

Its activation ranges follow the recipe's calibration method, as the Q/DQ model's do. NNCF's default
(the *mean* over the calibration images of each image's min and max) clips every activation larger than
an average image produces: on sdc-squeezenet-mrf trained on real NEU-DET it shrank the logits of
confident images by up to half (mean |logit error| 37 % of the mean |logit|, against 3.6 % with the
global min/max) and flipped one test image of 288, at the same speed.
"""
from __future__ import annotations

import logging
from pathlib import Path
import numpy as np

from edgekit.errors import EdgekitError
from edgekit.int8 import accuracy
from edgekit.int8.ranges import DEFAULT_PERCENTILE

# OpenVINO ops that carry a layer's weights (what NNCF's ignored scope names to keep a layer in float)
WEIGHTED_OPS = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData", "MatMul"}
# tried in this order, every layer in INT8, when NNCF's model with the recipe's ranges is out of bounds and
# before any layer is kept in float (the ranges cost no speed; float layers do). Not per-image percentiles:
# the least accurate on both real-NEU models (benchmarks/results/*-nncf-ranges.md).
OTHER_RANGES = ("minmax", "entropy", None)
FASTER_BY = 0.03        # NNCF's model must be at least 3 % faster to be chosen over the portable one
# edgekit's calibration method -> NNCF's activation range estimator (weights: NNCF's per-channel min/max)
RANGES = {"minmax": "MINMAX",          # global min and max over the calibration images, as the Q/DQ model's
          "entropy": "HISTOGRAM",      # NNCF's histogram search for the range with the least quantization error
          "percentile": "QUANTILE"}    # the recipe's percentile of each image's values, averaged over images


def range_estimator(method: str, percentile: float | None = None):
    """NNCF's activation range estimator for an edgekit calibration method."""
    from nncf.quantization.range_estimator import (AggregatorType, RangeEstimatorParameters,
                                                   RangeEstimatorParametersSet, StatisticsCollectorParameters,
                                                   StatisticsType)

    if RANGES[method] != "QUANTILE":
        return getattr(RangeEstimatorParametersSet, RANGES[method])
    tail = (100.0 - (percentile or DEFAULT_PERCENTILE)) / 100.0
    side = StatisticsCollectorParameters(statistics_type=StatisticsType.QUANTILE, aggregator_type=AggregatorType.MEAN,
                                         quantile_outlier_prob=tail)
    return RangeEstimatorParameters(min=side, max=side)


def openvino_layers(model, onnx_nodes: tuple[str, ...] | list[str]) -> list[str]:
    """The OpenVINO op computing each named ONNX layer: the op of that name, or, for a layer with a bias (which
    OpenVINO splits into the weighted op and an ``Add`` that keeps the ONNX node's name), the op that Add reads."""
    ops = {op.get_friendly_name(): op for op in model.get_ops()}
    found = []
    for name in onnx_nodes:
        op = ops.get(name)
        if op is not None and op.get_type_name() == "Add":
            op = next((i.get_source_output().get_node() for i in op.inputs()
                       if i.get_source_output().get_node().get_type_name() in WEIGHTED_OPS), None)
        if op is None or op.get_type_name() not in WEIGHTED_OPS:
            raise EdgekitError(f"layer {name!r}: no OpenVINO convolution or matrix multiplication computes it")
        found.append(op.get_friendly_name())
    return found


def quantize(fp32_onnx: Path, batches: list[np.ndarray], out_xml: Path, method: str | None = None,
             percentile: float | None = None, ignored: tuple[str, ...] | list[str] = ()) -> dict:
    """``nncf.quantize`` on the calibration images (performance preset, fast bias correction), activation
    ranges by ``method`` (``None``: NNCF's default, what a user gets in five lines), the ONNX layers named in
    ``ignored`` left in float (NNCF's ignored scope), saved as OpenVINO IR (FP32 weights kept where not
    quantized)."""
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters

    nncf.set_log_level(logging.ERROR)
    model = ov.convert_model(str(fp32_onnx))
    options = {} if method is None else {"advanced_parameters": AdvancedQuantizationParameters(
        activations_range_estimator_params=range_estimator(method, percentile))}
    if ignored:
        options["ignored_scope"] = nncf.IgnoredScope(names=openvino_layers(model, ignored))
    quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches), **options)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    ranges = ("NNCF's default (mean over images of each image's min/max)" if method is None else
              f"{method}: NNCF's {RANGES[method]} estimator")
    call = f"nncf.quantize({', '.join(['model', 'dataset', 'subset_size', *options])})"
    return {"tool": f"nncf {nncf.__version__}", "call": call, "method": method or "NNCF default",
            "activation_ranges": ranges, "calibration_images": len(batches)}


def bounded(fp32_onnx: Path, batches: list[np.ndarray], out_xml: Path, held: accuracy.Bound,
            ranked: accuracy.Ranking, method: str | None = None, percentile: float | None = None) -> dict:
    """NNCF's model held to the same bound as the Q/DQ model: every layer in INT8 with the recipe's activation
    ranges if that is within it; else with NNCF's other range estimators (``OTHER_RANGES``, each as fast);
    else, with the recipe's ranges, the layers of the network's ranking (``accuracy.ranking``) join NNCF's
    ignored scope one at a time."""
    record: dict = {}

    def write(path: Path, nodes: tuple[str, ...] = (), ranges: str | None = method) -> None:
        record.update(quantize(fp32_onnx, batches, path, ranges, percentile, nodes))

    others = {f"{other or 'NNCF default'} ranges": (lambda path, other=other: write(path, ranges=other))
              for other in OTHER_RANGES if other != method}
    record["accuracy_bound"] = accuracy.bounded(fp32_onnx, out_xml, write, held, ranked, others)
    return record


def choose(latency: dict[str, float], scores: dict[str, float], within: dict[str, bool], fp32_score: float,
           max_drop: float) -> dict:
    """Which INT8 model an OpenVINO target gets (``qdq`` or ``nncf``), from their batch-1 latencies, held-aside
    figures and whether each is within the bound: NNCF's when it is within it and either faster by
    ``FASTER_BY`` or the only one within it."""
    faster = latency["nncf"] <= latency["qdq"] * (1.0 - FASTER_BY)
    chosen = "nncf" if within["nncf"] and (faster or not within["qdq"]) else "qdq"
    why = (f"NNCF {latency['nncf']:.2f} ms vs Q/DQ {latency['qdq']:.2f} ms at batch 1; held-aside "
           f"{scores['nncf']:.2f} vs {scores['qdq']:.2f} (FP32 {fp32_score:.2f}, allowed drop {max_drop:g})")
    if chosen == "nncf":
        reason = ("NNCF's model is faster within the accuracy bound: " if faster else
                  "only NNCF's model is within the accuracy bound: ") + why
    elif not within["nncf"]:
        reason = "NNCF's model drops more than the bound allows: " + why
    else:
        reason = f"NNCF's model is not {FASTER_BY:.0%} faster: " + why
    return {"chosen": chosen, "reason": reason, "latency_ms": latency, "held_aside": scores}
