"""The Q/DQ ONNX model: ONNX Runtime's quantizer on cached ranges, then the graph outputs put back in float.

Two encodings of one calibration: ``s8`` (symmetric INT8 activations, float biases, a Q/DQ pair per
consumer), the portable model TensorRT (>= 8) and OpenVINO consume; ``u8`` (unsigned activations,
INT32 biases), what ONNX Runtime's x86 kernels run fast. ``reduce_range`` keeps weights to 7 bits for
CPUs without VNNI, whose u8 x s8 multiply-adds (``vpmaddubsw``) saturate on full-range 8-bit weights.
Nodes named in ``exclude`` stay in float (the accuracy-bounded choice, ``edgekit.int8.accuracy``): no
weight quantization and no Q/DQ pair on their inputs, so they see the float tensor their producer made.
Relu/Clip stay in the graph (``QDQKeepRemovableActivations``): ONNX Runtime otherwise folds them into the
unsigned range of the producer's output, and a float reader of that output would miss them.
"""
from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

from edgekit.int8.ranges import METHODS

ENCODINGS = {"s8": QuantType.QInt8, "u8": QuantType.QUInt8}
# Nodes between a model's last computation and its outputs that only move, join or squash values:
# the Q/DQ pairs ONNX Runtime puts on them are removed, so the outputs (logits, box deltas, scores,
# maps) keep the float precision of the last Conv/Gemm. Quantized outputs tie: argmax picks the lower
# class, equal detection scores make NMS's order arbitrary.
TAIL_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Identity", "Softmax",
            "Sigmoid", "Slice", "Split", "Gather"}
ACTIVATIONS = {"Relu", "Clip", "LeakyRelu"}


def write(fp32: Path, out: Path, ranges: Path, method: str, encoding: str, per_channel: bool = True,
          reduce_range: bool = False, exclude: list[str] | tuple[str, ...] = ()) -> None:
    """Quantize ``fp32`` with the activation ranges in ``ranges`` (ONNX Runtime's cache, see ``ranges``)."""
    s8 = encoding == "s8"
    quantize_static(
        str(fp32), str(out), None, quant_format=QuantFormat.QDQ, per_channel=per_channel,
        reduce_range=reduce_range, activation_type=ENCODINGS[encoding], weight_type=QuantType.QInt8,
        calibrate_method=METHODS[method], nodes_to_exclude=list(exclude),
        # TensorRT's Q/DQ is INT8 only (no INT32 bias DQ); a pair shared by several consumers can stop its fusion
        extra_options={"ActivationSymmetric": s8, "WeightSymmetric": True, "QuantizeBias": not s8,
                       "DedicatedQDQPair": s8, "QDQKeepRemovableActivations": True},
        calibration_cache_path=str(ranges),
    )
    model = float_outputs(onnx.load(str(out)))
    onnx.save(float_inputs(model, set(exclude)), str(out))


def output_tail(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], dict[str, str]]:
    """The activation Q/DQ nodes between the graph outputs and the last computation before them, and for
    each of those DequantizeLinear outputs the float tensor it stands for."""
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    weights = {t.name for t in graph.initializer}
    pairs: list[onnx.NodeProto] = []
    stands_for: dict[str, str] = {}
    stack, seen = [o.name for o in graph.output], set()
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if tensor in seen or node is None:
            continue
        seen.add(tensor)
        if node.op_type == "DequantizeLinear":
            q = producer.get(node.input[0])
            if q is not None and q.op_type == "QuantizeLinear":      # not a weight's DQ
                pairs += [node, q]
                stands_for[node.output[0]] = q.input[0]
                stack.append(q.input[0])
        elif node.op_type in TAIL_OPS:
            stack += [i for i in node.input if i and i not in weights]
    return pairs, stands_for


def float_inputs(model: onnx.ModelProto, nodes: set[str]) -> onnx.ModelProto:
    """``model`` with the nodes named in ``nodes`` reading float inputs, not quantized copies; the float
    path reaches back through activations (Relu, Clip) to the computation that made the tensor, so a
    wide range quantized before the activation does not reach the float layer either."""
    producer = {o: n for n in model.graph.node for o in n.output}
    pairs: list[onnx.NodeProto] = []
    readers = [n for n in model.graph.node if n.name in nodes]
    while readers:
        reader = readers.pop()
        for k, tensor in enumerate(reader.input):
            dq = producer.get(tensor)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is None or q.op_type != "QuantizeLinear":           # a float tensor, or a weight's DQ
                continue
            pairs += [dq, q]
            reader.input[k] = q.input[0]
            upstream = producer.get(q.input[0])
            if upstream is not None and upstream.op_type in ACTIVATIONS:
                readers.append(upstream)
    _drop_unread(model, pairs)
    return model


def _drop_unread(model: onnx.ModelProto, pairs: list[onnx.NodeProto], moved: set[str] = frozenset()) -> None:
    """Remove the DequantizeLinear nodes of ``pairs`` that nothing reads any more, then their QuantizeLinear
    nodes likewise (another consumer may keep its own pair, or share one), then initializers left unread. ``moved``: graph outputs that
    another tensor is about to take over. Nodes are known by their output tensor, unique in a graph."""
    graph = model.graph
    outputs = {o.name for o in graph.output} - set(moved)
    for op in ("DequantizeLinear", "QuantizeLinear"):
        candidates = {n.output[0] for n in pairs if n.op_type == op}
        read = {i for n in graph.node for i in n.input} | outputs
        kept = [n for n in graph.node if not (n.op_type == op and n.output[0] in candidates - read)]
        del graph.node[:]
        graph.node.extend(kept)
    # the scales and zero points only the removed pairs read (else every runtime warns about them on load)
    read = {i for n in graph.node for i in n.input} | outputs | {i.name for i in graph.input}
    used = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(used)


def float_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` without Q/DQ pairs on its outputs' tail (``TAIL_OPS``); the outputs keep their names."""
    graph = model.graph
    pairs, stands_for = output_tail(model)
    if not pairs:
        return model
    for node in graph.node:
        node.input[:] = [stands_for.get(i, i) for i in node.input]
    renamed = {stands_for[o.name]: o.name for o in graph.output if o.name in stands_for}
    _drop_unread(model, pairs, set(renamed.values()))
    for node in graph.node:                       # the float tensor takes the output's name
        node.input[:] = [renamed.get(i, i) for i in node.input]
        node.output[:] = [renamed.get(o, o) for o in node.output]
    gone = set(stands_for) | set(renamed)
    kept_info = [v for v in graph.value_info if v.name not in gone]
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    return model
