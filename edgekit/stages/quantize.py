"""FP16 and INT8 variants of an FP32 ONNX model.

INT8 is post-training static quantization into explicit Q/DQ ONNX (``edgekit.int8``): activation
ranges calibrated once (cached by model + calibration-set hash + settings), then two encodings of
them: symmetric INT8 activations with per-channel symmetric INT8 weights and float biases, the one
model TensorRT (>= 8), OpenVINO and ONNX Runtime all consume; and U8 activations, which ONNX
Runtime's x86 kernels run fast. Graph outputs stay float; on a CPU target without VNNI the weights
keep 7 bits. Given the recipe's split, INT8 is held to the accuracy bound on training images held
aside from calibration (layers kept in float where needed), and for an OpenVINO target NNCF's own INT8
model, held to the same bound, competes with the Q/DQ model (``results.openvino_int8`` says which the
compile stage takes).
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

import onnx
from onnxconverter_common import float16
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgekit import calibration
from edgekit.artifacts import sha256_file, sha256_json, staged_dir, write_manifest
from edgekit.errors import EdgekitError
from edgekit.data.recipe_data import SplitData
from edgekit.int8 import accuracy, openvino_nncf, qdq, ranges
from edgekit.recipes import Recipe
from edgekit.stages.export import check_onnx

STAGE = "quantize"
# file written for each precision / INT8 encoding
FILES = {"fp32": "fp32.onnx", "fp16": "fp16.onnx", "int8": "int8.onnx", "int8-u8": "int8-u8.onnx"}
NNCF = "int8-nncf.xml"     # OpenVINO's own INT8 (with its .bin), for an OpenVINO target


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


def accuracy_settings(recipe: Recipe) -> dict | None:
    """How far INT8 may fall below FP32 on the held-aside images before layers are kept in float
    (``quantize.accuracy``; ``false`` turns the bound off). The default drop is validation's INT8 gate."""
    cfg = recipe.quantize.get("accuracy", {})
    if cfg is False:
        return None
    return {"max_drop": float(cfg.get("max_drop", recipe.validate.get("max_drop", {}).get("int8", 1.0))),
            "per_class": int(cfg.get("per_class", 16)), "max_float": float(cfg.get("max_float", 0.25)),
            "seed": int(cfg.get("seed", 1)), "measured_on": "training images held aside from calibration"}


def quantize_settings(recipe: Recipe, method: str | None = None, per_channel: bool | None = None,
                      percentile: float | None = None, reduce_range: bool = False, bounded: bool = False,
                      openvino: bool = False) -> dict:
    """The quantization settings a quantize artifact records (``build`` compares them to resume)."""
    method = method or recipe.quantize.get("method", "minmax")
    if method not in ranges.METHODS:
        raise EdgekitError(f"unknown calibration method {method!r} (known: {', '.join(ranges.METHODS)})")
    per_channel = recipe.quantize.get("per_channel", True) if per_channel is None else per_channel
    percentile = percentile or recipe.quantize.get("percentile") if method == "percentile" else None
    return {"recipe": recipe.name, "method": method, "per_channel": per_channel, "format": "QDQ",
            "calibrator": ranges.calibrator_options(method, percentile),
            "calibration_order": "images by sha256 (independent of the manifest's order)",
            "activations": "symmetric int8 (+ uint8 copy for ONNX Runtime CPU)",
            "weights": ("symmetric int8" + (" per channel" if per_channel else " per tensor")
                        + (", 7-bit range (the target CPU has no VNNI)" if reduce_range else "")),
            "reduce_range": reduce_range,
            "outputs": "float (no Q/DQ between the last Conv/Gemm and the graph outputs)",
            "biases": "float in the int8 (s8) model, int32 in the uint8 copy",
            "older_opsets": "fp32.opset<N>.onnx from the export's copies, for older TensorRT parsers",
            "accuracy_bound": accuracy_settings(recipe) if bounded else None,
            "openvino_int8": ("the faster within the bound of the Q/DQ model and NNCF's (nncf.quantize, activation "
                              "ranges by the same method, held to the same bound: NNCF's other range estimators, "
                              "then the ranked layers in its ignored scope)" if openvino and bounded else None)}


def opset_copies(onnx_path: Path, folder: Path) -> dict[str, str]:
    """The export's older-opset copies of the FP32 model (``model.opset13.onnx`` beside ``onnx_path``),
    pre-processed as ``fp32.onnx`` is, into ``folder`` as ``fp32.opset<N>.onnx``. Older TensorRT builds
    INT8 from that file and a calibration cache naming its tensors: a copy is kept only when every
    calibrated tensor of ``fp32.onnx`` has its name there too."""
    from edgekit.backends.tensorrt.scales import read_ranges

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


def summary(manifest: dict) -> str:
    """One line for the build table: the calibration and what the accuracy bound did."""
    line = f"{manifest['settings']['method']} calibration, Q/DQ INT8 + FP16"
    bound = manifest["results"].get("accuracy_bound")
    if bound:
        line += f"; held-aside FP32 {bound['fp32']:.2f}, INT8 {bound['int8']:.2f}"
        if bound["kept_float"]:
            line += f" -> {bound['final']:.2f}"
        line += f" ({bound['status']})"
    nncf = manifest["results"].get("openvino_int8")
    if nncf:
        line += f"; OpenVINO INT8 from {'NNCF' if nncf['chosen'] == 'nncf' else 'the Q/DQ model'}"
        how = nncf.get("accuracy_bound", {}).get("status", "").removeprefix("within bound with ")  # (older runs: none)
        line += f" ({how})" if nncf["chosen"] == "nncf" and how not in ("", "every layer in INT8") else ""
    return line


def bounded_int8(fp32: Path, folder: Path, held: accuracy.Bound, write, ranked: accuracy.Ranking) -> dict:
    """``int8.onnx`` in ``folder`` held to the accuracy bound; when layers had to stay in float, what that
    cost in latency against every layer in INT8."""
    record = accuracy.bounded(fp32, folder / FILES["int8"], lambda p, nodes: write(p, "s8", nodes), held, ranked)
    if record["kept_float"]:
        every = folder / "int8.all-layers.onnx"
        write(every, "s8")
        record["latency_ms"] = accuracy.latency_ms([every, folder / FILES["int8"]], held.threads,
                                                   ["every layer INT8", "mixed"])
        every.unlink()
    return record


def held_aside_bound(recipe: Recipe, data: SplitData, manifest: dict, cfg: dict, threads: int) -> accuracy.Bound:
    """The bound INT8 is held to: the task's own headline figure on training images held aside from the
    calibration set, ONNX models scored on ONNX Runtime, an OpenVINO IR (NNCF's model) on OpenVINO."""
    from edgekit.backends import get_backend
    from edgekit.tasks import get_task

    task = get_task(recipe).validation(recipe, calibration.held_aside(recipe, data, manifest, cfg["per_class"],
                                                                      cfg["seed"]))

    def answers(path: Path):
        runner = get_backend("openvino" if Path(path).suffix == ".xml" else "onnxruntime").load(path, threads)
        return task.evaluate(runner, "held aside")["answers"]

    return accuracy.Bound(answers, [x[None] for x in task.x], cfg["max_drop"], cfg["max_float"], threads)


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
    reduce_range: bool = False,       # 7-bit weights: the target CPU lacks VNNI (Target.int8_dot)
    data: SplitData | None = None,    # the recipe's split: with it, INT8 is held to the accuracy bound
    threads: int = 2,
    openvino: bool = False,           # the target runs OpenVINO: NNCF's INT8 competes with the Q/DQ model
) -> dict:
    """Write fp32/fp16/int8 (S8 Q/DQ) and int8-u8 ONNX files into the artifact folder ``out``."""
    onnx_path = Path(onnx_path)
    if onnx_path.is_dir():
        onnx_path = onnx_path / "model.onnx"
    check_onnx(onnx_path, recipe)
    manifest, images = calibration.load(manifest_path, data_root)

    settings = quantize_settings(recipe, method, per_channel, percentile, reduce_range,
                                 bounded=data is not None and accuracy_settings(recipe) is not None, openvino=openvino)
    model_hash = sha256_file(onnx_path)
    key = sha256_json({"model": model_hash, "calibration": manifest["sha256"],
                       "preprocess": recipe.preprocess._asdict(), **settings})[:16]
    method, per_channel = settings["method"], settings["per_channel"]
    cache_dir = Path(cache_dir or Path.home() / ".cache" / "edgekit" / "calibration")
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = cache_dir / f"{model_hash[:12]}-{manifest['sha256'][:12]}-{method}-{key}.json"
    cache_hit = cache.is_file()

    images = ranges.canonical_order(images, [e["sha256"] for e in manifest["images"]])
    openvino = bool(settings["openvino_int8"])
    batches = [] if cache_hit and not openvino else calibration.batches(recipe, images)
    with _quiet_root_logger(), staged_dir(out) as tmp:
        fp32 = tmp / FILES["fp32"]
        quant_pre_process(str(onnx_path), str(fp32), skip_symbolic_shape=True)
        with warnings.catch_warnings():  # it warns for every weight below FP16's range (flushed to 1e-7)
            warnings.simplefilter("ignore")
            fp16 = float16.convert_float_to_float16(outputs_apart(onnx.load(str(fp32))), keep_io_types=True)
        onnx.save(fp16, str(tmp / FILES["fp16"]))
        t0 = time.perf_counter()
        if not cache_hit:
            ranges.calibrate(fp32, batches, method, cache, settings["calibrator"].get("percentile"))

        def write(path: Path, encoding: str, exclude: tuple[str, ...] = ()) -> None:
            qdq.write(fp32, path, cache, method, encoding, per_channel, reduce_range, exclude)

        bound = nncf = None
        if settings["accuracy_bound"]:
            held = held_aside_bound(recipe, data, manifest, settings["accuracy_bound"], threads)
            ranked = accuracy.ranking(fp32, lambda p, nodes: write(p, "s8", nodes), held)
            bound = bounded_int8(fp32, tmp, held, write, ranked)
            if openvino:
                nncf = openvino_nncf.bounded(fp32, batches, tmp / NNCF, held, ranked, method,
                                             settings["calibrator"].get("percentile"))
                models = {"qdq": tmp / FILES["int8"], "nncf": tmp / NNCF}
                records = {"qdq": bound, "nncf": nncf["accuracy_bound"]}
                nncf.update(openvino_nncf.choose(
                    accuracy.latency_ms(list(models.values()), threads, list(models)),
                    {k: r["final"] for k, r in records.items()}, {k: r["within"] for k, r in records.items()},
                    bound["fp32"], held.max_drop))
        else:
            write(tmp / FILES["int8"], "s8")
        write(tmp / FILES["int8-u8"], "u8", tuple(k["node"] for k in (bound or {}).get("kept_float", [])))
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
            "accuracy_bound": bound,
            "openvino_int8": nncf,
            "seconds": round(seconds, 2),
            "size_bytes": {n: (tmp / f).stat().st_size for n, f in FILES.items()},
        }
        write_manifest(tmp, STAGE, {"onnx": onnx_path, "calibration": manifest_path}, settings, results)
    return results
