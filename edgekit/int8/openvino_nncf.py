"""OpenVINO's own INT8: NNCF's post-training quantization of the FP32 model as OpenVINO reads it, from the
same calibration images, and the choice between it and the portable Q/DQ model for an OpenVINO target.

NNCF places quantizers for OpenVINO's CPU plugin (which inputs of which ops, u8 activations after ReLU,
bias correction, the overflow fix for CPUs without VNNI): often faster than the portable Q/DQ model,
which puts Q/DQ pairs where TensorRT wants them. It is chosen only when it is faster by a margin and
its figure on the held-aside images is within the same bound as the Q/DQ model's.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.int8.accuracy import latency_ms

FASTER_BY = 0.03        # NNCF's model must be at least 3 % faster to be chosen over the portable one


def quantize(fp32_onnx: Path, batches: list[np.ndarray], out_xml: Path) -> dict:
    """``nncf.quantize`` with its defaults (performance preset, fast bias correction) on the calibration
    images, saved as OpenVINO IR (FP32 weights kept where not quantized)."""
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    model = ov.convert_model(str(fp32_onnx))
    quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches))
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return {"tool": f"nncf {nncf.__version__}", "call": "nncf.quantize(model, dataset) with its defaults",
            "calibration_images": len(batches)}


def choose(qdq_model: Path, nncf_model: Path, score: Callable[[Path], float], fp32_score: float, max_drop: float,
           threads: int) -> dict:
    """Which INT8 model an OpenVINO target gets, with the measurements that decided it."""
    latency = latency_ms([qdq_model, nncf_model], threads, ["qdq", "nncf"])
    scores = {"qdq": score(qdq_model), "nncf": score(nncf_model)}
    accurate = fp32_score - scores["nncf"] <= max_drop
    faster = latency["nncf"] <= latency["qdq"] * (1.0 - FASTER_BY)
    chosen = "nncf" if accurate and faster else "qdq"
    why = (f"NNCF {latency['nncf']:.2f} ms vs Q/DQ {latency['qdq']:.2f} ms at batch 1; held-aside "
           f"{scores['nncf']:.2f} vs {scores['qdq']:.2f} (FP32 {fp32_score:.2f}, allowed drop {max_drop:g})")
    if chosen == "nncf":
        reason = "NNCF's model is faster within the accuracy bound: " + why
    elif not accurate:
        reason = "NNCF's model drops more than the bound allows: " + why
    else:
        reason = f"NNCF's model is not {FASTER_BY:.0%} faster: " + why
    return {"chosen": chosen, "reason": reason, "latency_ms": latency, "held_aside": scores}
