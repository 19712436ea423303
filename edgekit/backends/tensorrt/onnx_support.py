"""What TensorRT's ONNX parser takes, by TensorRT version, and what the DLA runs.

From onnx-tensorrt's ``docs/operators.md`` (8.2: opset <= 13; 8.4 list used as the 8.2 baseline less
the two ops 8.4 added) and its changelog for the ops each later release added. An op missing from
these tables is reported as unknown (a warning), not as unsupported.
"""
from typing import Tuple
from edgekit.backends.tensorrt.version import TrtVersion

# (major, minor) -> highest ONNX opset the parser claims ("supports operators up to opset N")
MAX_OPSET = {(8, 0): 13, (8, 2): 13, (8, 4): 13, (8, 5): 17, (8, 6): 17, (10, 0): 17, (10, 15): 24}

BASELINE_8_2 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU HardSigmoid Identity If ImageScaler InstanceNormalization
IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min
Mul Neg Not Or Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range ReduceL1
ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu
Reshape Resize ReverseSequence RNN Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Sigmoid Sign
Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile
TopK Transpose Unsqueeze Upsample Where
""".split())

ADDED = {  # op -> first TensorRT (major, minor) whose parser takes it
    "Shrink": (8, 4), "Xor": (8, 4),
    "RandomNormal": (8, 5), "RandomNormalLike": (8, 5), "MeanVarianceNormalization": (8, 5), "RoiAlign": (8, 5),
    "Mod": (8, 5), "Trilu": (8, 5), "GridSample": (8, 5), "NonZero": (8, 5), "NonMaxSuppression": (8, 5),
    "GroupNormalization": (8, 6), "LayerNormalization": (8, 6), "IsInf": (8, 6),
    "Hardmax": (9, 2), "DeformConv": (10, 1),
    "BlackmanWindow": (10, 4), "HammingWindow": (10, 4), "HannWindow": (10, 4), "STFT": (10, 5),
}

NEVER = frozenset("""
BitShift Compress ConcatFromSequence ConvInteger Det DynamicQuantizeLinear MatMulInteger MaxRoiPool MaxUnpool
Multinomial NegativeLogLikelihoodLoss QLinearConv QLinearMatMul SequenceAt SequenceConstruct SequenceEmpty
SequenceErase SequenceInsert SequenceLength SoftmaxCrossEntropyLoss SplitToSequence StringNormalizer
TfIdfVectorizer Unique
""".split())

# NVIDIA's DLA supported-layers list: these ONNX ops map to layers the DLA can run (with limits: pooling
# windows 1..8, concatenation on channels only, element-wise on equal shapes); anything else runs on the GPU.
DLA_OPS = frozenset("""
Conv ConvTranspose Gemm MatMul MaxPool AveragePool Relu Sigmoid Tanh Clip LeakyRelu PRelu Elu Selu
Add Sub Mul Max Min Div BatchNormalization Concat Resize Softmax Slice QuantizeLinear DequantizeLinear Identity
""".split())


def max_opset(version: TrtVersion) -> int:
    best = min(MAX_OPSET.values())
    for (major, minor), opset in sorted(MAX_OPSET.items()):
        if version.at_least(major, minor):
            best = opset
    return best


def op_status(op: str, version: TrtVersion) -> Tuple[str, str]:
    """("ok" | "unsupported" | "unknown", reason) for an ONNX op type on a TensorRT version."""
    if op in NEVER:
        return "unsupported", f"{op} has no TensorRT importer"
    if op in ADDED:
        first = ADDED[op]
        if not version.at_least(*first):
            return "unsupported", f"{op} needs TensorRT >= {first[0]}.{first[1]}"
        return "ok", ""
    if op in BASELINE_8_2:
        return ("ok", "") if version.at_least(8, 2) else ("unknown", "edgekit's table starts at TensorRT 8.2")
    return "unknown", f"{op} is not in edgekit's table of TensorRT's ONNX operators"
