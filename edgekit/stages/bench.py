"""Benchmark an artifact: warm-up, then latency percentiles and throughput per backend and batch."""
from __future__ import annotations

import itertools
import os
import platform
from pathlib import Path

import numpy as np

from edgekit.artifacts import read_manifest, write_json
from edgekit.backends import get_backend, is_available
from edgekit.backends.base import onnx_input_shape, read_onnx
from edgekit.errors import EdgekitError
from edgekit.plots import latency_histogram
from edgekit.progress import bar
from edgekit.targets import host_cpu
from edgekit.timing import measure


def resolve(artifact: Path, backends: list[str] | None) -> list[tuple[str, Path]]:
    """(backend, file) pairs to time for a compile folder, an ONNX file or an OpenVINO IR."""
    artifact = Path(artifact)
    if artifact.is_dir():
        m = read_manifest(artifact)
        if m.get("stage") != "compile" or m["settings"].get("kind") == "device-kit":
            raise EdgekitError(f"{artifact}: bench needs a compiled artifact (a TensorRT engine folder, OpenVINO, "
                               "ONNX Runtime), an .onnx or an OpenVINO .xml"
                               + ("; this is a device kit: build it with `edgekit compile --kit` on the device"
                                  if m["settings"].get("kind") else ""))
        return [(m["settings"]["backend"], artifact / m["results"]["file"])]
    if not artifact.is_file():
        raise EdgekitError(f"{artifact}: artifact not found")
    if artifact.suffix == ".xml":
        return [("openvino", artifact)]
    if artifact.suffix != ".onnx":
        raise EdgekitError(f"{artifact}: unknown artifact type (expected a folder, .onnx or .xml)")
    onnx_input_shape(read_onnx(artifact), artifact)   # a broken or dynamic-shape file: one line, before any work
    names = backends or [b for b in ("onnxruntime", "openvino") if is_available(b)]
    return [(b, artifact) for b in names]




def machine() -> dict:
    name, flags = host_cpu()
    return {"platform": platform.platform(), "processor": name, "isa": flags,
            "cpus": os.cpu_count(), "python": platform.python_version()}


def read_frames(source: str, limit: int = 500) -> list[np.ndarray]:
    """Up to ``limit`` decoded frames of a video, image folder or camera (as ``edgekit run`` reads them)."""
    from edgekit.camera.sources import open_source

    frames = []
    for frame in open_source(source).frames():
        if frame.image is not None:
            frames.append(frame.image)
        if len(frames) >= limit:
            break
    if not frames:
        raise EdgekitError(f"{source}: no decodable frames")
    return frames


def end_to_end(folder: Path, runner, warmup: int, iters: int, max_seconds: float,
               frames: list[np.ndarray] | None = None) -> dict | None:
    """Decoded frames through the pipeline's pre-processing, ``runner`` and post-processing, one at a time as
    ``edgekit run`` does it (None for a folder without its ``pipeline.json``). Without
    ``frames``, one random frame: post-processing then has little to do (no defects), so real frames
    (``--frames``) give the line's figure."""
    from edgekit.camera import pipeline
    from edgekit.camera.model import LineModel
    from edgekit.camera.preprocess import opencv_single_threaded

    if not (Path(folder) / pipeline.FILE).is_file():
        return None
    opencv_single_threaded()                         # as the line runs
    model = LineModel.for_runner(folder, runner)
    used = f"{len(frames)} decoded frames" if frames else "one random frame"
    if not frames:
        size = model.preprocess.size
        frames = [np.random.default_rng(0).integers(0, 256, size=(size, size, 3), dtype=np.uint8)]
    turn = itertools.cycle(frames)
    return {**measure(lambda _: model(next(turn)), np.zeros(1), warmup, iters, max_seconds), "frames": used}


def on_device(engine: Path, warmup: int, iters: int, max_seconds: float,
              frames: list[np.ndarray] | None = None) -> tuple[list[dict], dict]:
    """A TensorRT engine on its device: GPU compute alone (CUDA events), inference with copies, and end to end
    (the recipe's pre-processing, copies, inference, post-processing) with power from tegrastats."""
    from edgekit.backends.tensorrt import jetson
    from edgekit.backends.tensorrt.bench import bench_runner, with_power

    with get_backend("tensorrt").load(engine) as runner:   # buffers, stream and context released after
        rows, device, x = bench_runner(runner, warmup, iters, max_seconds)
        with jetson.Tegrastats() as power:
            e2e = end_to_end(engine.parent, runner, warmup, iters, max_seconds, frames)
        if e2e is not None:
            rows.append(with_power({"backend": "tensorrt", "file": str(engine), "timing": "end to end", **e2e},
                                   power, device))
        return rows, device


def bench(
    artifact: Path,
    backends: list[str] | None = None,
    batches: list[int] = (1, 8),
    threads: int | None = None,
    iters: int = 100,
    warmup: int = 10,
    max_seconds: float = 10.0,
    json_path: Path | None = None,
    frames: list[np.ndarray] | None = None,
) -> dict:
    """Time ``artifact``; a compiled folder also end to end, on ``frames`` (decoded images, e.g. from
    :func:`read_frames`) or one random frame."""
    threads = threads or os.cpu_count() or 1
    rows = []
    pairs = resolve(artifact, backends)
    device = None
    for backend, path in bar(pairs, "backends"):
        if backend == "tensorrt":     # a static-shape engine: its own batch, timed three ways, with power
            engine_rows, device = on_device(path, warmup, iters, max_seconds, frames)
            rows += engine_rows
            continue
        for b in batches:
            runner = get_backend(backend).load(path, threads, batch=b)
            x = np.random.default_rng(0).normal(0, 50, size=runner.input_shape).astype(np.float32)
            rows.append({"backend": backend, "file": str(path), **measure(runner.infer, x, warmup, iters, max_seconds)})
            e2e = end_to_end(path.parent, runner, warmup, iters, max_seconds, frames) if b == 1 else None
            if e2e is not None:
                rows.append({"backend": backend, "file": str(path), "timing": "end to end", **e2e})
    results = {"artifact": str(artifact), "threads": threads, "machine": machine(), "rows": rows}
    if device is not None:
        results["device"] = device
    if json_path is None:
        json_path = Path(artifact) / "bench.json" if Path(artifact).is_dir() else Path(f"{artifact}.bench.json")
    write_json(json_path, results)
    results["json"] = str(json_path)
    picture = json_path.with_name(json_path.name.replace(".json", "") + ".latency.png")
    latency_histogram(picture, {f"{r['backend']} b={r['batch']}" + (f" ({r['timing']})" if "timing" in r else ""):
                                r["samples_ms"] for r in rows})
    results["histogram"] = str(picture)
    return results
