"""An engine timed on its device: GPU compute alone (CUDA events), and copies + inference with the power
tegrastats reports meanwhile. Random input: the time does not depend on the values. Device-side code
(Python 3.6+, numpy, no torch): used by ``edgekit bench`` and by ``edgekit-device.pyz bench``."""
from typing import Any, Dict, List, Tuple

import numpy as np

from edgekit.backends.tensorrt import jetson
from edgekit.timing import measure, summarize


def bench_runner(runner: Any, warmup: int, iters: int, max_seconds: float
                 ) -> Tuple[List[Dict[str, Any]], Dict[str, Any], np.ndarray]:
    """(rows, device facts, the input used) for an open :class:`TensorRTRunner`."""
    engine = str(runner.path)
    x = np.random.RandomState(0).normal(0, 50, size=runner.input_shape).astype(np.float32)
    for _ in range(warmup):
        runner.infer(x)
    compute = summarize([runner.compute_ms() for _ in range(iters)], runner.input_shape[0])
    with jetson.Tegrastats() as power:
        copies = measure(runner.infer, x, warmup, iters, max_seconds)
    device = dict(runner.device._asdict(), power_mode=jetson.power_mode())
    rows = [dict(backend="tensorrt", file=engine, timing="gpu compute only", **compute),
            with_power(dict(backend="tensorrt", file=engine, timing="copies + inference", **copies), power, device)]
    return rows, device, x


def with_power(row: Dict[str, Any], power: jetson.Tegrastats, device: Dict[str, Any]) -> Dict[str, Any]:
    """``row`` with the mean power while it was timed and the energy per frame (where tegrastats ran)."""
    if power.result:
        row["power_mw"] = power.result["total_mw"]
        row["mj_per_frame"] = round(power.result["total_mw"] / row["throughput_fps"], 2)
        device["power"] = power.result
    return row
