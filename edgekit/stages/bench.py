"""Benchmark an artifact: warm-up, then latency percentiles and throughput per backend and batch."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from edgekit.artifacts import read_manifest, write_json
from edgekit.backends import get_backend, is_available
from edgekit.errors import EdgekitError
from edgekit.progress import bar
from edgekit.timing import measure


def resolve(artifact: Path, backends: list[str] | None) -> list[tuple[str, Path]]:
    """(backend, file) pairs to time for a compile folder, an ONNX file or an OpenVINO IR."""
    artifact = Path(artifact)
    if artifact.is_dir():
        m = read_manifest(artifact)
        if m.get("stage") != "compile" or m["settings"].get("backend") == "tensorrt":
            raise EdgekitError(f"{artifact}: bench needs a compiled CPU artifact, an .onnx or an OpenVINO .xml")
        return [(m["settings"]["backend"], artifact / m["results"]["file"])]
    if not artifact.is_file():
        raise EdgekitError(f"{artifact}: artifact not found")
    if artifact.suffix == ".xml":
        return [("openvino", artifact)]
    if artifact.suffix != ".onnx":
        raise EdgekitError(f"{artifact}: unknown artifact type (expected a folder, .onnx or .xml)")
    names = backends or [b for b in ("onnxruntime", "openvino") if is_available(b)]
    return [(b, artifact) for b in names]


SPEED_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


def cpu_model() -> tuple[str, list[str]]:
    """The CPU's model name and the instruction-set extensions that decide INT8 speed (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    return name or platform.machine(), [f for f in SPEED_FLAGS if f in flags]


def machine() -> dict:
    name, flags = cpu_model()
    return {"platform": platform.platform(), "processor": name, "isa": flags,
            "cpus": os.cpu_count(), "python": platform.python_version()}


def bench(
    artifact: Path,
    backends: list[str] | None = None,
    batches: list[int] = (1, 8),
    threads: int | None = None,
    iters: int = 100,
    warmup: int = 10,
    max_seconds: float = 10.0,
    json_path: Path | None = None,
) -> dict:
    threads = threads or os.cpu_count() or 1
    rows = []
    pairs = resolve(artifact, backends)
    for backend, path in bar(pairs, "backends"):
        for b in batches:
            runner = get_backend(backend).load(path, threads, batch=b)
            x = np.random.default_rng(0).normal(0, 50, size=runner.input_shape).astype(np.float32)
            rows.append({"backend": backend, "file": str(path), **measure(runner.infer, x, warmup, iters, max_seconds)})
    results = {"artifact": str(artifact), "threads": threads, "machine": machine(), "rows": rows}
    if json_path is None:
        json_path = Path(artifact) / "bench.json" if Path(artifact).is_dir() else Path(f"{artifact}.bench.json")
    write_json(json_path, results)
    results["json"] = str(json_path)
    return results
