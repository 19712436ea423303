"""Latency and throughput of a call: warm-up, then timed calls; percentiles over calls."""
import time
from typing import Any, Callable, Dict

import numpy as np


def measure(fn: Callable[[np.ndarray], Any], batch: np.ndarray, warmup: int = 10, iters: int = 100,
            max_seconds: float = 10.0) -> Dict[str, Any]:
    """Time ``fn(batch)`` (a runner's ``infer``, or inference plus post-processing). Stops after
    ``iters`` calls or ``max_seconds``, whichever is first."""
    for _ in range(warmup):
        fn(batch)
    times = []
    start = time.perf_counter()
    while len(times) < iters and (time.perf_counter() - start) < max_seconds:
        t = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t)
    return summarize(np.array(times) * 1000.0, batch.shape[0])


def interleaved_p50(calls: Dict[str, Callable[[np.ndarray], Any]], batch: np.ndarray, rounds: int = 5,
                    iters: int = 100, max_seconds: float = 2.0) -> Dict[str, float]:
    """The best p50 latency (ms) of each call over ``rounds`` rounds that take turns in one process, so
    that a machine's drift hits every call alike: for deciding which of two models is faster."""
    best = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            best[name] = min(best[name], measure(fn, batch, warmup=5, iters=iters, max_seconds=max_seconds)["p50_ms"])
    return {name: round(ms, 3) for name, ms in best.items()}


def summarize(ms: np.ndarray, n: int) -> Dict[str, Any]:
    """Percentiles and throughput of per-call milliseconds for batches of ``n`` (and the calls themselves,
    for a histogram)."""
    ms = np.asarray(ms, dtype=np.float64)
    return {
        "samples_ms": [round(float(v), 4) for v in ms],
        "batch": n,
        "calls": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "throughput_fps": float(n * 1000.0 / ms.mean()),
    }
