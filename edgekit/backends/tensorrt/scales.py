"""INT8 scales from the quantize stage's files, on the host (onnx): ONNX Runtime's calibration ranges
(``calibration_ranges.json``) turned into per-tensor scales the way ONNX Runtime computes a symmetric INT8
scale and adjusts it when it writes the Q/DQ model, and the scales a Q/DQ model carries. The kit writes them
into TensorRT calibration caches (:mod:`.calibration_cache`)."""
import json
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from edgekit.errors import EdgekitError

SUFFIX = "_QuantizeLinear_Input"      # ONNX Runtime's rename of a graph output's tensor before its Q node


def _value(v) -> float:
    """A range end as ONNX Runtime's cache stores it: a number or ``{"data": .., "CLS": "numpy.array"}``."""
    if isinstance(v, dict):
        v = v.get("data")
    if isinstance(v, list):
        v = np.asarray(v, dtype=np.float64).reshape(-1)[0]
    return float(v)


def symmetric_int8_scale(lowest: float, highest: float) -> float:
    """ONNX Runtime's symmetric INT8 scale for a range, as float32: max(|lo|, |hi|) * 2 / 254."""
    amax = max(abs(np.float32(min(lowest, 0.0))), abs(np.float32(max(highest, 0.0))))
    scale = np.float32(np.float64(2 * amax) / 254.0)
    return 1.0 if scale < np.finfo(np.float32).tiny else float(scale)


# ONNX Runtime's Q/DQ quantizer gives these ops' outputs their input's scale (QDQDirect8BitOp, QDQMaxPool)
SAME_SCALE_OPS = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Resize", "MaxPool", "AveragePool",
                  "Slice", "Pad", "Split", "Gather", "GatherElements", "TopK"}
REMOVABLE_ACTIVATIONS = {"Relu", "Clip"}  # fused into the producer, which takes the activation's range


def read_ranges(path: Path) -> Dict[str, Tuple[float, float]]:
    """(lowest, highest) per tensor from the quantize stage's ``calibration_ranges.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())["data"]
        return {name: (_value(r["lowest"]), _value(r["highest"])) for name, r in data.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgekitError(f"{path}: not an ONNX Runtime calibration-range file ({exc})") from exc


def scales_from_ranges(ranges_path: Path, fp32_onnx: Path) -> Dict[str, float]:
    """Per-tensor INT8 scales for every calibrated tensor of ``fp32_onnx``, adjusted as ONNX Runtime adjusts
    them when it writes the Q/DQ model: a Relu/Clip's single-consumer input takes the activation's range,
    and data-movement ops pass their input's scale on to their output."""
    import onnx

    ranges = read_ranges(ranges_path)
    graph = onnx.load(str(fp32_onnx), load_external_data=False).graph
    consumers: Dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    for node in graph.node:
        if (node.op_type in REMOVABLE_ACTIVATIONS and consumers.get(node.input[0]) == 1
                and node.input[0] in ranges and node.output[0] in ranges):
            ranges[node.input[0]] = ranges[node.output[0]]
    scales = {name: symmetric_int8_scale(lo, hi) for name, (lo, hi) in ranges.items()}
    for node in graph.node:  # graph order is topological: chains of shared scales resolve in one pass
        if node.op_type in SAME_SCALE_OPS and node.input[0] in scales:
            for out in node.output:
                if out in scales:
                    scales[out] = scales[node.input[0]]
    return scales


def scales_from_qdq(onnx_path: Path) -> Dict[str, float]:
    """Activation scales of an explicit Q/DQ ONNX: each QuantizeLinear's input tensor -> its scale."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    weights = {i.name: i for i in model.graph.initializer}
    scales = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in weights and node.input[1] in weights:
            scale = numpy_helper.to_array(weights[node.input[1]])
            if scale.size == 1:  # a graph output's tensor is renamed <name>_QuantizeLinear_Input
                name = node.input[0]
                if name.endswith(SUFFIX):
                    name = name[: -len(SUFFIX)]
                scales[name] = float(scale.reshape(-1)[0])
    return scales
