"""FP16 and INT8 variants of an FP32 ONNX model.

INT8 is post-training static quantization with ONNX Runtime's quantizer into explicit Q/DQ
ONNX, symmetric INT8 activations, per-channel symmetric INT8 weights and float biases: the one
encoding TensorRT (>= 8), OpenVINO and ONNX Runtime all consume. The same calibration (activation
ranges, cached by model + calibration-set hash) also yields a U8-activation Q/DQ model, which
is what ONNX Runtime's x86 kernels run fast.
"""
from __future__ import annotations

import contextlib
import io
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx
from onnxconverter_common import float16
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgekit import calibration
from edgekit.artifacts import sha256_file, sha256_json, staged_dir, write_manifest
from edgekit.data.images import read_grey
from edgekit.errors import EdgekitError
from edgekit.progress import bar
from edgekit.recipes import Recipe
from edgekit.stages.export import check_onnx

STAGE = "quantize"
METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
# file written for each precision / INT8 encoding
FILES = {"fp32": "fp32.onnx", "fp16": "fp16.onnx", "int8": "int8.onnx", "int8-u8": "int8-u8.onnx"}


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer logs the same generic advice on every call, and its histogram
    calibrators print their progress to stdout; keep errors only."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


class _Reader(CalibrationDataReader):
    def __init__(self, batches: list[np.ndarray], input_name: str) -> None:
        self.batches, self.input_name, self.i = batches, input_name, 0

    def get_next(self) -> dict | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.input_name: self.batches[self.i - 1]}

    def __len__(self) -> int:
        return len(self.batches)


DEFAULT_PERCENTILE = 99.999


def quantize_settings(recipe: Recipe, method: str | None = None, per_channel: bool | None = None,
                      percentile: float | None = None) -> dict:
    """The quantization settings a quantize artifact records (``build`` compares them to resume)."""
    method = method or recipe.quantize.get("method", "minmax")
    if method not in METHODS:
        raise EdgekitError(f"unknown calibration method {method!r} (known: {', '.join(METHODS)})")
    per_channel = recipe.quantize.get("per_channel", True) if per_channel is None else per_channel
    settings = {"recipe": recipe.name, "method": method, "per_channel": per_channel, "format": "QDQ",
                "activations": "symmetric int8 (+ uint8 copy for ONNX Runtime CPU)",
                "weights": "symmetric int8" + (" per channel" if per_channel else " per tensor"),
                "biases": "float in the int8 (s8) model, int32 in the uint8 copy",
                "older_opsets": "fp32.opset<N>.onnx from the export's copies, for older TensorRT parsers"}
    if method == "percentile":
        settings["percentile"] = percentile or recipe.quantize.get("percentile", DEFAULT_PERCENTILE)
    return settings


def opset_copies(onnx_path: Path, folder: Path) -> dict[str, str]:
    """The export's older-opset copies of the FP32 model (``model.opset13.onnx`` beside ``onnx_path``),
    pre-processed as ``fp32.onnx`` is, into ``folder`` as ``fp32.opset<N>.onnx``. Older TensorRT builds
    INT8 from that file and a calibration cache naming its tensors: a copy is kept only when every
    calibrated tensor of ``fp32.onnx`` has its name there too."""
    from edgekit.backends.tensorrt.calibration_cache import read_ranges

    calibrated = set(read_ranges(folder / "calibration_ranges.json"))
    kept = {}
    for copy in sorted(onnx_path.parent.glob("model.opset*.onnx")):
        opset = copy.stem.removeprefix("model.opset")
        target = folder / f"fp32.opset{opset}.onnx"
        quant_pre_process(str(copy), str(target), skip_symbolic_shape=True)
        graph = onnx.load(str(target)).graph
        names = {t for n in graph.node for t in (*n.input, *n.output)}
        if calibrated <= names:
            kept[opset] = target.name
        else:
            target.unlink()
    return kept


def qdq(fp32: Path, out: Path, reader: CalibrationDataReader | None, ranges: Path, method: str,
        per_channel: bool, activation: QuantType, extra: dict) -> None:
    """One Q/DQ model of ``fp32``: S8 (``activation`` QInt8, the portable model) or U8. ``ranges`` is ONNX
    Runtime's calibration cache: read when it exists (``reader`` may then be None), written otherwise."""
    s8 = activation == QuantType.QInt8
    quantize_static(
        str(fp32), str(out), reader, quant_format=QuantFormat.QDQ, per_channel=per_channel,
        activation_type=activation, weight_type=QuantType.QInt8, calibrate_method=METHODS[method],
        # the portable S8 model keeps float biases: TensorRT's Q/DQ is INT8 only (no INT32 bias DQ), and gives
        # each consumer its own Q/DQ pair (a pair shared by several consumers can stop its fusion)
        extra_options={**extra, "ActivationSymmetric": s8, "QuantizeBias": not s8, "DedicatedQDQPair": s8},
        calibration_cache_path=str(ranges),
    )


def outputs_apart(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with every graph output that other nodes also read (segdec-net's map, read by its decision
    subnet) produced by an Identity of its own: onnxconverter-common's FP16 conversion with FP32 outputs
    casts the output tensor itself, and the nodes reading it would then mix FP32 and FP16 inputs."""
    read = {name for node in model.graph.node for name in node.input}
    for output in model.graph.output:
        if output.name not in read:
            continue
        inner = output.name + "_inner"
        for node in model.graph.node:
            node.output[:] = [inner if o == output.name else o for o in node.output]
            node.input[:] = [inner if i == output.name else i for i in node.input]
        model.graph.node.append(onnx.helper.make_node("Identity", [inner], [output.name], name=output.name + "_out"))
    return model


def quantize(
    recipe: Recipe,
    onnx_path: Path,
    manifest_path: Path,
    data_root: Path,                  # the folder the manifest's image paths are relative to
    out: Path,
    method: str | None = None,
    percentile: float | None = None,
    per_channel: bool | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """Write fp32/fp16/int8 (S8 Q/DQ) and int8-u8 ONNX files into the artifact folder ``out``."""
    onnx_path = Path(onnx_path)
    if onnx_path.is_dir():
        onnx_path = onnx_path / "model.onnx"
    model = check_onnx(onnx_path, recipe)
    manifest, images = calibration.load(manifest_path, data_root)
    input_name = model.graph.input[0].name

    settings = quantize_settings(recipe, method, per_channel, percentile)
    model_hash = sha256_file(onnx_path)
    key = sha256_json({"model": model_hash, "calibration": manifest["sha256"],
                       "preprocess": recipe.preprocess.__dict__, **settings})[:16]
    method, per_channel = settings["method"], settings["per_channel"]
    cache_dir = Path(cache_dir or Path.home() / ".cache" / "edgekit" / "calibration")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / f"{model_hash[:12]}-{manifest['sha256'][:12]}-{method}-{key}.json"
    cache_hit = cache.is_file()

    batches = [recipe.preprocess(read_grey(p))[None] for p in bar(images, "calibration images")]
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True}
    if method == "percentile":
        extra["CalibPercentile"] = settings["percentile"]
    with _quiet_root_logger(), staged_dir(out) as tmp:
        quant_pre_process(str(onnx_path), str(tmp / FILES["fp32"]), skip_symbolic_shape=True)
        with warnings.catch_warnings():  # it warns for every weight below FP16's range (flushed to 1e-7)
            warnings.simplefilter("ignore")
            fp16 = float16.convert_float_to_float16(outputs_apart(onnx.load(str(tmp / FILES["fp32"]))),
                                                    keep_io_types=True)
        onnx.save(fp16, str(tmp / FILES["fp16"]))
        t0 = time.perf_counter()
        for name, activation in (("int8", QuantType.QInt8), ("int8-u8", QuantType.QUInt8)):
            qdq(tmp / FILES["fp32"], tmp / FILES[name], _Reader(batches, input_name), cache, method, per_channel,
                activation, extra)
        seconds = time.perf_counter() - t0
        shutil.copyfile(cache, tmp / "calibration_ranges.json")
        for name in FILES:
            onnx.checker.check_model(onnx.load(str(tmp / FILES[name])))
        copies = opset_copies(onnx_path, tmp)
        results = {
            "opset_copies": copies,
            "calibration_set": {"name": manifest["name"], "sha256": manifest["sha256"], "count": len(images)},
            "calibration_cache": str(cache),
            "calibration_cache_hit": cache_hit,
            "seconds": round(seconds, 2),
            "size_bytes": {n: (tmp / f).stat().st_size for n, f in FILES.items()},
        }
        write_manifest(tmp, STAGE, {"onnx": onnx_path, "calibration": manifest_path}, settings, results)
    return results
