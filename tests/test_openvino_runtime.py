"""OpenVINO through its C API (``edgekit.backends.openvino_capi``), held to OpenVINO's own Python API on the same
files: the runner every OpenVINO artifact runs with (validation, bench, golden, the line), which never imports
the ``openvino`` package. Blobs compiled once per camera, and what a blob cut short or gone bad does."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.backends import openvino as ov_backend
from edgekit.backends.openvino_capi import element_types
from edgekit.errors import EdgekitError


@pytest.fixture(scope="module")
def irs(tiny_stages, tmp_path_factory) -> dict[str, Path]:
    """The tiny model as OpenVINO IRs: FP32, FP16 (weights stored in FP16) and the INT8 ONNX's FakeQuantize IR."""
    out = tmp_path_factory.mktemp("ir")
    made = {}
    for precision, source in (("fp32", "fp32.onnx"), ("fp16", "fp32.onnx"), ("int8", "int8.onnx")):
        (out / precision).mkdir()
        made[precision] = ov_backend.compile(tiny_stages["root"] / "quantize" / source, out / precision, precision)
    return made


def _python_api(path: Path, x: np.ndarray) -> list[np.ndarray]:
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()
    request.infer({0: x})
    return [request.get_output_tensor(i).data.copy() for i in range(len(compiled.outputs))]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_the_c_api_runner_answers_as_openvinos_python_api(irs, precision) -> None:
    runner = ov_backend.load(irs[precision], threads=2)
    x = np.random.default_rng(0).normal(0, 1, size=runner.input_shape).astype(np.float32)
    ours, theirs = runner.infer(x), _python_api(irs[precision], x)
    assert runner.precision == "f32" and len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert np.array_equal(a, b)                          # the same library and kernels: bit for bit
    batched = ov_backend.load(irs[precision], threads=2, batch=3)
    assert batched.input_shape == (3, *runner.input_shape[1:])
    rows = np.concatenate([x, x * 0.5, -x])
    got = batched.infer(rows)[0]
    assert np.allclose(got[0], ours[0][0], atol=1e-5) and np.allclose(got[2], runner.infer(-x)[0][0], atol=1e-5)
    with pytest.raises(EdgekitError, match=r"batch of shape \(3, .*\) for a model compiled for \(1, "):
        runner.infer(rows)
    runner.close()
    runner.close()                  # again: nothing


def test_the_runner_never_imports_the_openvino_package(irs) -> None:
    probe = ("import sys, numpy as np; from edgekit.backends import openvino as b; r = b.load(sys.argv[1], 1); "
             "r.infer(np.zeros(r.input_shape, np.float32)); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'openvino'))")
    out = subprocess.run([sys.executable, "-c", probe, str(irs["int8"])], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_compiled_blob_is_imported_by_the_next_load(irs, tmp_path) -> None:
    blobs = tmp_path / "blobs"
    first = ov_backend.load(irs["int8"], 2, cache=blobs)
    x = np.random.default_rng(1).normal(0, 1, size=first.input_shape).astype(np.float32)
    assert not first.from_cache and len(list(blobs.glob("*.blob"))) == 1
    second = ov_backend.load(irs["int8"], 2, cache=blobs)
    assert second.from_cache and np.array_equal(second.infer(x)[0], first.infer(x)[0])
    assert not ov_backend.load(irs["int8"], 2).from_cache             # no cache given: compiled


def test_a_blob_cut_short_is_compiled_again(irs, tmp_path) -> None:
    """A power cut while OpenVINO wrote the blob: the next load compiles the IR again and rewrites it."""
    blobs = tmp_path / "blobs"
    first = ov_backend.load(irs["fp32"], 2, cache=blobs)
    x = np.random.default_rng(2).normal(0, 1, size=first.input_shape).astype(np.float32)
    expected = first.infer(x)[0]
    blob = next(blobs.glob("*.blob"))
    size = blob.stat().st_size
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[: size // 3])
    again = ov_backend.load(irs["fp32"], 2, cache=blobs)
    assert not again.from_cache and np.array_equal(again.infer(x)[0], expected) and blob.stat().st_size == size


def test_files_the_runner_cannot_load_fail_in_one_line_naming_them(irs, tmp_path) -> None:
    (tmp_path / "text.xml").write_text("not xml at all")
    (tmp_path / "net.xml").write_text("<net><layers></layers></net>")
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "model.xml").write_bytes(irs["fp32"].read_bytes())
    (cut / "model.bin").write_bytes(irs["fp32"].with_suffix(".bin").read_bytes()[:100])
    for path, why in ((tmp_path / "none.xml", "model file not found"), (tmp_path / "text.xml", "not an OpenVINO IR"),
                      (tmp_path / "net.xml", "OpenVINO cannot load it"), (cut / "model.xml", "OpenVINO cannot load it")):
        with pytest.raises(EdgekitError) as caught:
            ov_backend.load(path, 1)
        assert str(caught.value).startswith(f"{path}: {why}") and "\n" not in str(caught.value), caught.value


def test_an_artifact_compiled_to_compute_in_bf16_says_so(irs, tmp_path) -> None:
    """compile(bf16=True) writes the hint into the IR; the runner reads it back (and pins f32 otherwise)."""
    (tmp_path / "bf16").mkdir()
    ir = ov_backend.compile(irs["fp16"], tmp_path / "bf16", "fp16", bf16=True)
    assert ov_backend.precision_hint(ir) == "bf16" and ov_backend.precision_hint(irs["fp16"]) == "f32"


def test_element_type_codes_follow_the_c_api_of_each_release() -> None:
    """ov_element_type_e: UNDEFINED (0) was removed in 2026.0 (openvinotoolkit/openvino#32573). The older
    numbering is also run for real: OpenVINO 2024.4 under Python 3.8 in tests/test_device_side.py."""
    assert element_types("2024.4.0-16579")[5] == "float32" and element_types("2024.4.0-16579")[11] == "int64"
    assert element_types("2026.4.1-22982")[4] == "float32" and element_types("2026.0.0-1")[10] == "int64"
