"""Preflight: what TensorRT on a target will make of the ONNX files, checked here without a GPU.

Every check names what it looked at and says ``ok``, ``warning`` or ``error``:
ops against the parser of the target's oldest TensorRT, opset, static shapes, Q/DQ that TensorRT can
fuse (symmetric INT8, zero points 0, per-channel only on weights, every conv/GEMM fed by DQ on
both inputs), layers likely to leave the DLA, the precisions the target runs fast, and an fps
*estimate* from the model's multiply-accumulates and the target's data-sheet peak.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from edgekit.backends.tensorrt.onnx_support import DLA_OPS, max_opset, op_status
from edgekit.backends.tensorrt.version import TrtVersion
from edgekit.targets import Target

COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
# Share of data-sheet peak assumed for a batch-1 CNN: a planning figure, not a measurement (`edgekit bench`
# on the device measures).
UTILISATION = 0.15


@dataclass
class Finding:
    check: str
    level: str        # ok | warning | error
    detail: str


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def macs(model: onnx.ModelProto) -> int:
    """Multiply-accumulates of the conv / transposed-conv / GEMM layers at the model's static shape."""
    inferred = shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}

    def weight_shape(name: str) -> list[int] | None:   # through a DequantizeLinear in a Q/DQ model
        if name in weights:
            return weights[name]
        node = producers.get(name)
        return weights.get(node.input[0]) if node is not None and node.op_type == "DequantizeLinear" else None

    total = 0
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS or len(node.input) < 2:
            continue
        w, out, inp = weight_shape(node.input[1]), shapes.get(node.output[0]), shapes.get(node.input[0])
        if not w or not out or not inp:
            continue
        if node.op_type == "Conv":
            total += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type == "ConvTranspose":
            total += int(np.prod(inp)) * int(np.prod(w[1:]))
        else:  # Gemm / MatMul: rows x K x N
            total += int(np.prod(out)) * (inp[-1] if inp else 1)
    return total


def _shapes(model: onnx.ModelProto) -> Finding:
    init = {i.name for i in model.graph.initializer}
    dynamic = [f"{v.name}[{i}]" for v in model.graph.input if v.name not in init
               for i, d in enumerate(v.type.tensor_type.shape.dim) if not d.HasField("dim_value")]
    if dynamic:
        return Finding("static shapes", "error", "dynamic dimensions " + ", ".join(dynamic)
                       + ": calibration and DLA need static shapes; export with a fixed input size")
    return Finding("static shapes", "ok", "every input dimension is fixed")


def _opset_finding(model: onnx.ModelProto, version: TrtVersion, copies: dict[int, Path]) -> Finding:
    """The kit's model against the parser's opset; an older-opset copy routed to the version passes."""
    opset, limit = opset_of(model), max_opset(version)
    said = f"opset {opset}; TensorRT {version.major}.{version.minor}'s parser documents opset <= {limit}"
    if opset <= limit:
        return Finding("opset", "ok", said)
    fits = [n for n in copies if n <= limit]
    if fits:
        return Finding("opset", "ok", f"{said}: its engines are built from {copies[max(fits)].name} "
                                      f"(exported at opset {max(fits)})")
    return Finding("opset", "error", f"{said}, and no model of the kit fits it: export at opset <= {limit} "
                                     "(`edgekit export` writes an opset-13 copy from a checkpoint)")


def _ops(model: onnx.ModelProto, version: TrtVersion, copies: dict[int, Path]) -> list[Finding]:
    found = [_opset_finding(model, version, copies)]
    counts = Counter(n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx"))
    custom = sorted({f"{n.domain}:{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    bad, unknown = [], []
    for op in sorted(counts):
        status, why = op_status(op, version)
        (bad if status == "unsupported" else unknown if status == "unknown" else []).append(f"{op} ({why})")
    if custom:
        bad.append("custom-domain ops " + ", ".join(custom) + " (need TensorRT plugins)")
    level = "error" if bad else "warning" if unknown else "ok"
    detail = (f"{sum(counts.values())} nodes, {len(counts)} op types: " + ", ".join(sorted(counts))) if level == "ok" \
        else "; ".join(bad + unknown)
    found.append(Finding(f"ops on TensorRT {version.major}.{version.minor}", level, detail))
    return found


def _qdq(model: onnx.ModelProto) -> list[Finding]:
    init = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    problems: dict[str, list[str]] = {}   # reason -> nodes

    def problem(reason: str, node: onnx.NodeProto) -> None:
        problems.setdefault(reason, []).append(node.name)

    for node in model.graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        zp = init.get(node.input[2]) if len(node.input) > 2 else None
        quantized = init.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        # the integer type: the zero point's, else a DQ'd initializer's, else ONNX's default (uint8)
        dtype = (numpy_helper.to_array(zp).dtype if zp is not None
                 else numpy_helper.to_array(quantized).dtype if quantized is not None else np.dtype(np.uint8))
        if dtype != np.int8:
            problem(f"{dtype} Q/DQ (TensorRT's is signed INT8" + ("; keep biases in float)" if dtype == np.int32 else ")"), node)
        elif zp is not None and np.any(numpy_helper.to_array(zp) != 0):
            problem("non-zero zero point (TensorRT quantizes symmetrically)", node)
        scale = init.get(node.input[1])
        if scale is not None and int(np.prod(scale.dims or [1])) > 1 and node.input[0] not in init:
            problem("per-channel scale on an activation (TensorRT: weights only)", node)
    consumers = Counter(i for n in model.graph.node for i in n.input)
    shared = [n.name for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] not in init
              and consumers[n.output[0]] > 1]
    fused, left = 0, []
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS:
            continue
        fed = [producers.get(i) is not None and producers[i].op_type == "DequantizeLinear" for i in node.input[:2]]
        if all(fed):
            fused += 1
        else:
            left.append(node.name)
    detail = "; ".join(f"{len(nodes)} x {reason}, e.g. {nodes[0]}" for reason, nodes in problems.items())
    findings = [Finding("Q/DQ encoding", "error" if problems else "ok",
                        detail or "signed INT8, zero points 0, per-channel scales on weights only")]
    if shared:
        findings.append(Finding("Q/DQ pairs", "warning", f"{len(shared)} activation DQ shared by several consumers, "
                                f"e.g. {shared[0]}: TensorRT fuses a pair into one consumer; quantize with one pair per "
                                "consumer (ONNX Runtime's DedicatedQDQPair, as edgekit's quantize stage does)"))
    total = fused + len(left)
    findings.append(Finding("Q/DQ placement", "warning" if left else "ok",
                            f"{fused}/{total} conv/GEMM layers have DQ on input and weights (run in INT8)"
                            + (f"; in float: {', '.join(left[:5])}" + (" ..." if len(left) > 5 else "") if left else "")))
    return findings


def _dla(model: onnx.ModelProto, target: Target) -> Finding:
    if not target.dla_cores:
        return Finding("DLA", "ok", f"{target.name} has no DLA; everything runs on the GPU")
    leave = Counter(n.op_type for n in model.graph.node if n.op_type not in DLA_OPS)
    gap = [n.name for n in model.graph.node if n.op_type == "GlobalAveragePool"]
    detail = ("likely to run on the GPU (GPU fallback, a DLA<->GPU copy at each boundary): "
              + ", ".join(f"{op} x{c}" for op, c in sorted(leave.items()))) if leave else "every op type is on the DLA list"
    if gap:
        detail += "; GlobalAveragePool becomes a pooling window the size of the map (DLA windows are 1..8)"
    return Finding("DLA", "warning" if leave else "ok", detail)


def _precisions(target: Target, precisions: list[str]) -> Finding:
    slow = [p for p in precisions if not target.supports(p)]
    if not slow:
        return Finding("precision", "ok", f"{', '.join(precisions)} all fast on {target.name}")
    return Finding("precision", "warning", f"{target.name} has no fast {', '.join(slow)}: "
                   f"its engines are built in {', '.join(p for p in precisions if target.supports(p))}")


def estimate(total_macs: int, target: Target) -> dict[str, Any]:
    """fps per precision from data-sheet peaks: a ceiling (100 % of peak) and an estimate at UTILISATION."""
    peaks = {"fp32": target.peak.fp32_tflops, "fp16": target.peak.fp16_tflops, "int8": target.peak.int8_tops}
    out = {}
    for p, tera in peaks.items():
        if tera and total_macs and target.supports(p):
            ceiling = tera * 1e12 / (2 * total_macs)
            out[p] = {"ceiling_fps": round(ceiling, 1), "estimate_fps": round(ceiling * UTILISATION, 1)}
    return out


def preflight(files: dict[str, Path], target: Target, copies: dict[int, Path] | None = None) -> dict[str, Any]:
    """Check the kit's ONNX files (precision -> path) and its older-opset FP32 copies (opset -> path) against
    ``target``; JSON-ready result."""
    version = TrtVersion.parse(target.tensorrt.min) if target.tensorrt and target.tensorrt.min else TrtVersion(10)
    reference = onnx.load(str(files["fp32"]))
    findings = [_shapes(reference), *_ops(reference, version, copies or {})]
    if "int8" in files:
        findings += _qdq(onnx.load(str(files["int8"])))
    findings += [_dla(reference, target), _precisions(target, list(files))]
    total = macs(reference)
    result = {
        "target": target.name,
        "tensorrt_checked": f"{version.major}.{version.minor} (the oldest the target ships)",
        "findings": [asdict(f) for f in findings],
        "errors": sum(f.level == "error" for f in findings),
        "warnings": sum(f.level == "warning" for f in findings),
        "gmacs": round(total / 1e9, 3),
        "fps_estimate": estimate(total, target),
        "fps_estimate_note": (f"ESTIMATE from {total / 1e9:.2f} GMAC per frame and the data-sheet peak: ceiling "
                              f"at 100 % of peak, estimate at {UTILISATION:.0%}; not a measurement"),
    }
    return result


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Preflight for {result['target']} (TensorRT {result['tensorrt_checked']})", "",
             "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {f['check']} | {f['level']} | {f['detail']} |" for f in result["findings"]]
    lines += ["", f"{result['errors']} error(s), {result['warnings']} warning(s).", "",
              f"## fps {result['fps_estimate_note']}", "", "| precision | ceiling fps | estimate fps |", "|---|---|---|"]
    lines += [f"| {p} | {e['ceiling_fps']} | {e['estimate_fps']} |" for p, e in result["fps_estimate"].items()]
    return "\n".join(lines) + "\n"
