"""Activation ranges: ONNX Runtime's calibrators run with settings edgekit states, on the calibration
images in a canonical order, into ONNX Runtime's range cache that every Q/DQ encoding then reads.

``quantize_static`` calibrates by itself but passes no histogram sizes, so its entropy calibrator runs
with 128 bins and 128 quantized bins: a KL search with one candidate, i.e. min-max. Here the entropy
search gets TensorRT's 2048 bins and 128 quantized bins. A histogram merged batch by batch grows with
the largest value seen so far, so its bins depend on the order of the images (ONNX Runtime 1.32
histograms all images at once, strided or older calibrators do not): the images are fed in the order
of their sha256, the order the range cache's key (sorted image hashes) implies, so that the ranges
never depend on the manifest's order.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator
from onnxruntime.quantization.calibrate import save_tensors_data
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
HISTOGRAM_BINS = 2048          # TensorRT's entropy calibrator's histogram
QUANTIZED_BINS = 128           # 8-bit: 128 levels each side of zero
DEFAULT_PERCENTILE = 99.999


class BatchReader(CalibrationDataReader):
    """Feeds one image at a time to ONNX Runtime's calibrator (or to a sensitivity search)."""

    def __init__(self, batches: list[np.ndarray], input_name: str) -> None:
        self.batches, self.input_name, self.i = batches, input_name, 0

    def get_next(self) -> dict | None:
        if self.i >= len(self.batches):
            return None
        self.i += 1
        return {self.input_name: self.batches[self.i - 1]}

    def __len__(self) -> int:
        return len(self.batches)


def canonical_order(images: list, digests: list[str]) -> list:
    """``images`` sorted by their sha256: the order calibration sees them in, whatever the manifest's."""
    return [im for _, im in sorted(zip(digests, images), key=lambda pair: pair[0])]


def calibrator_options(method: str, percentile: float | None = None) -> dict:
    """What ONNX Runtime's calibrator for ``method`` is told (recorded in the quantize artifact)."""
    if method == "entropy":
        return {"num_bins": HISTOGRAM_BINS, "num_quantized_bins": QUANTIZED_BINS}
    if method == "percentile":
        return {"num_bins": HISTOGRAM_BINS, "percentile": percentile or DEFAULT_PERCENTILE, "symmetric": True}
    return {}


def calibrate(fp32: Path, batches: list[np.ndarray], method: str, cache: Path, percentile: float | None = None) -> None:
    """Ranges of every tensor a Q/DQ quantizer may quantize, over ``batches`` in the given order, into
    ``cache`` (ONNX Runtime's calibration cache, read by ``quantize_static``)."""
    input_name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="edgekit-calib.") as tmp:
        calibrator = create_calibrator(
            Path(fp32), list(set(QLinearOpsRegistry) | set(QDQRegistry)),
            augmented_model_path=str(Path(tmp) / "augmented.onnx"), calibrate_method=METHODS[method],
            extra_options=calibrator_options(method, percentile))
        calibrator.collect_data(BatchReader(batches, input_name))
        save_tensors_data(calibrator.compute_data(), cache)
        del calibrator
