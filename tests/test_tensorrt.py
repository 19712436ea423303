"""The TensorRT path against test doubles of TensorRT 8.2 / 8.5 / 8.6 / 10.3 / 11 (tests/trt_fakes.py): what
edgekit asks TensorRT to do, the calibration cache, engine keys and refusals, the runner, the device kit and
the preflight report. Tests marked ``tensorrt`` need a real TensorRT and GPU and skip elsewhere."""
from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgekit.artifacts import write_manifest
from edgekit.backends.tensorrt import calibration_cache as cc
from edgekit.backends.tensorrt import jetson, kit as kit_mod, preflight, scales
from edgekit.backends.tensorrt.builder import EngineRequest, build_engine
from edgekit.backends.tensorrt.runner import TensorRTRunner
from edgekit.backends.tensorrt.version import TrtVersion
from edgekit.errors import EdgekitError
from edgekit.targets import load_target
from trt_fakes import FakeCuda, expected_outputs, make_trt


def tiny_onnx(path: Path, op: str = "Relu", batch: int | str = 1, opset: int = 17) -> Path:
    """input [batch,1,8,8] -> Conv 3x3 -> op -> output."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 3, 3], np.ones(18, np.float32))
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node(op, ["c"], ["output"], name="act")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 2, 8, 8])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------------------------------ versions

def test_tensorrt_version_numbers_are_the_calibration_cache_header():
    assert TrtVersion.parse("8.2.1.8").number == 8201
    assert TrtVersion.parse("8.5.2.2").number == 8502
    assert TrtVersion.parse("10.3.0.30").number == 100300
    assert cc.header(TrtVersion.parse("8.6.1")) == "TRT-8601-EntropyCalibration2"


# --------------------------------------------------------------------------------- calibration cache

def test_calibration_cache_text_format_byte_for_byte(tmp_path):
    path = cc.write({"input": 1 / 127, "conv1/out": 0.5}, TrtVersion(8, 2, 1), tmp_path / "c.cache")
    assert path.read_bytes() == b"TRT-8201-EntropyCalibration2\ninput: 3c010204\nconv1/out: 3f000000\n"
    version, algorithm, scales = cc.read(path)
    assert (version, algorithm) == (TrtVersion(8, 2, 1), "EntropyCalibration2")
    assert scales["input"] == struct.unpack(">f", struct.pack(">f", 1 / 127))[0] and scales["conv1/out"] == 0.5


def test_calibration_cache_rejects_garbage_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.cache"
    bad.write_text("TRT-8201-EntropyCalibration2\ninput 3c010204\n")
    with pytest.raises(EdgekitError, match=r"bad\.cache: line 2"):
        cc.read(bad)


def test_cache_scales_agree_with_the_qdq_scales_of_the_same_calibration(tiny_quantized):
    """The implicit (cache) and explicit (Q/DQ) INT8 engines get the same scale for every tensor both quantize."""
    ranges = scales.scales_from_ranges(tiny_quantized / "calibration_ranges.json", tiny_quantized / "fp32.onnx")
    qdq = scales.scales_from_qdq(tiny_quantized / "int8.onnx")
    assert len(qdq) >= 10 and set(qdq) <= set(ranges)
    for name, scale in qdq.items():
        assert ranges[name] == pytest.approx(scale, rel=1e-6), name
    graph_tensors = {o for n in onnx.load(str(tiny_quantized / "fp32.onnx")).graph.node for o in n.output}
    assert set(ranges) <= graph_tensors | {"input"}


# ------------------------------------------------------------------------------------------- builder

@pytest.mark.parametrize("version", ["8.2.1.8", "8.6.1.6", "10.3.0.30"])
def test_fp16_uses_the_builder_flag_on_8_and_10(tmp_path, version):
    trt = make_trt(version)
    built = build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "fp16", workspace_mb=512))
    builder = trt._log[0][1]
    assert builder.config.flags == ["FP16"] and not built.strongly_typed
    explicit = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    assert builder.network.flags == (explicit if version.startswith("8") else 0)
    if version.startswith("8.2"):   # no memory pools before 8.4
        assert builder.config.max_workspace_size == 512 << 20 and not hasattr(builder.config, "set_memory_pool_limit")
    else:
        assert builder.config.pools == {"WORKSPACE": 512 << 20}
    assert json.loads(built.plan)["flags"] == ["FP16"]


def test_tensorrt_11_is_strongly_typed_without_precision_flags(tmp_path):
    trt = make_trt("11.0.0.1")
    built = build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "int8", workspace_mb=256))
    builder = trt._log[0][1]
    assert built.strongly_typed and builder.config.flags == []
    assert builder.network.flags == 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    with pytest.raises(EdgekitError, match="no implicit INT8 calibration"):
        build_engine(trt, EngineRequest(tmp_path / "m.onnx", "int8", 256, int8_route="calibration-cache",
                                        calibration_cache=tmp_path / "x.cache"))


def test_explicit_qdq_int8_asks_for_int8_and_fp16_and_no_calibrator(tmp_path):
    trt = make_trt("8.6.1.6")
    build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "int8", workspace_mb=256))
    config = trt._log[0][1].config
    assert config.flags == ["FP16", "INT8"] and config.int8_calibrator is None


def test_implicit_int8_serves_edgekits_cache_to_the_calibrator(tmp_path):
    trt = make_trt("8.2.1.8")
    cache = cc.write({"input": 0.01, "c": 0.02, "output": 0.02}, TrtVersion(8, 2, 1), tmp_path / "calibration.cache")
    build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "int8", 256, int8_route="calibration-cache",
                                    calibration_cache=cache))
    config = trt._log[0][1].config
    assert config.flags == ["FP16", "INT8"]
    calibrator = config.int8_calibrator
    assert isinstance(calibrator, trt.IInt8EntropyCalibrator2)
    assert calibrator.read_calibration_cache() == cache.read_bytes() and not calibrator.asked_for_batches


def test_a_cache_for_another_tensorrt_is_refused_with_the_reason(tmp_path):
    trt = make_trt("8.5.2.2")
    cache = cc.write({"input": 0.01}, TrtVersion(8, 2, 1), tmp_path / "calibration.cache")
    with pytest.raises(EdgekitError, match=r"refused the calibration cache .*TRT-8502-EntropyCalibration2"):
        build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "int8", 256, int8_route="calibration-cache",
                                        calibration_cache=cache))


def test_dla_core_with_gpu_fallback_reports_the_layers_that_leave(tmp_path):
    trt = make_trt("10.3.0.30", dla_cores=2)
    built = build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx", op="Sigmoid"), "fp16", 256, dla_core=1))
    config = trt._log[0][1].config
    assert config.default_device_type == trt.DeviceType.DLA and config.DLA_core == 1
    assert config.flags == ["FP16", "GPU_FALLBACK"]
    assert built.dla_fallback == ["act (SIGMOID)"]
    with pytest.raises(EdgekitError, match="DLA runs FP16 and INT8 only"):
        build_engine(trt, EngineRequest(tmp_path / "m.onnx", "fp32", 256, dla_core=0))
    with pytest.raises(EdgekitError, match="DLA core 2 requested; this device has 2"):
        build_engine(trt, EngineRequest(tmp_path / "m.onnx", "fp16", 256, dla_core=2))


def test_timing_cache_is_loaded_then_saved(tmp_path):
    model, timing = tiny_onnx(tmp_path / "m.onnx"), tmp_path / "timing.cache"
    trt = make_trt("10.3.0.30")
    build_engine(trt, EngineRequest(model, "fp16", 256, timing_cache=timing))
    assert trt._log[0][1].config.timing_cache_in == b"" and timing.read_bytes() == b"timing:10.3.0.30"
    build_engine(trt, EngineRequest(model, "fp16", 256, timing_cache=timing))
    config = trt._log[1][1].config
    assert config.timing_cache_in == b"timing:10.3.0.30" and config.timing_cache_ignore_mismatch is False


def test_a_timing_cache_of_another_tensorrt_is_set_aside_not_fatal(tmp_path):
    """TensorRT refuses a mismatched cache (set_timing_cache returns False): build with an empty one, warn,
    and save the new tuning."""
    model, timing = tiny_onnx(tmp_path / "m.onnx"), tmp_path / "timing.cache"
    timing.write_bytes(b"timing:8.6.2.3")
    trt = make_trt("10.3.0.30")
    build_engine(trt, EngineRequest(model, "fp16", 256, timing_cache=timing))
    assert timing.read_bytes() == b"timing:10.3.0.30"
    assert any(kind == "log" and "does not fit this TensorRT or GPU" in msg for kind, msg in trt._log)


def test_kit_names_its_timing_cache_by_tensorrt_and_gpu(orin_kit, tmp_path):
    trt = make_trt("10.3.0.30")
    kit_mod.build_from_kit(orin_kit, tmp_path, ["fp16"], trt=trt, cuda=trt._cuda)
    assert (tmp_path / "timing.10.3.0.30.sm87.cache").is_file() and not (tmp_path / "timing.cache").exists()


def test_dla_int8_takes_the_calibration_cache_on_every_tensorrt(orin_kit, tmp_path):
    """A DLA core takes implicit INT8 only: even TensorRT 10.3, whose GPU route is Q/DQ, builds DLA INT8 from
    fp32.onnx and the cache; the runner then names the core to the runtime before deserialising."""
    trt = make_trt("10.3.0.30", dla_cores=2)
    done = kit_mod.build_from_kit(orin_kit, tmp_path, ["int8"], dla_core=1, trt=trt, cuda=trt._cuda)
    manifest = json.loads((Path(done[0]["path"]) / "manifest.json").read_text())
    assert manifest["settings"]["int8_route"] == "calibration-cache"
    assert manifest["inputs"]["onnx"]["path"].endswith("fp32.onnx")
    runner = TensorRTRunner(Path(done[0]["path"]) / "model.engine", trt=trt, cuda=trt._cuda)
    assert runner.runtime.DLA_core == 1
    text = (orin_kit / "BUILD_ON_DEVICE.md").read_text()
    assert "--onnx=fp32.onnx --int8 --fp16 --calib=calibration.10.3.0.cache" in text and "--useDLACore=0" in text
    with pytest.raises(EdgekitError, match=r"TensorRT 11\.0\.0 has no implicit INT8, the only INT8 a DLA core"):
        t11 = make_trt("11.0.0.1", dla_cores=2)
        kit_mod.build_from_kit(orin_kit, tmp_path / "t11", ["int8"], dla_core=0, trt=t11, cuda=t11._cuda)


def test_parser_and_builder_failures_name_the_file(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(EdgekitError, match=r"junk\.onnx: TensorRT's ONNX parser refused it"):
        build_engine(make_trt("10.3.0.30"), EngineRequest(junk, "fp32", 256))
    with pytest.raises(EdgekitError, match="could not build the fp16 engine"):
        build_engine(make_trt("10.3.0.30", fail_build=True), EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "fp16", 256))


# ---------------------------------------------------------------------------- kit -> engines -> runner

def test_each_target_kit_names_its_precision_routes():
    routed, skipped, routes = kit_mod.plan(load_target("jetson-nano"), ["fp32", "fp16", "int8"])
    assert routed == ["fp32", "fp16"] and "int8" in skipped and routes == {"8.2.1": {"fp32": "flags", "fp16": "flags"}}
    _, _, routes = kit_mod.plan(load_target("jetson-orin"), ["fp32", "fp16", "int8"])
    assert {v: r["int8"] for v, r in routes.items()} == {"8.5.2": "calibration-cache", "8.6.2": "qdq", "10.3.0": "qdq"}
    _, _, routes = kit_mod.plan(load_target("desktop-cuda"), ["fp32", "fp16", "int8"])
    assert routes == {"8.6.0": {"fp32": "flags", "fp16": "flags", "int8": "qdq"},
                      "11.0.0": {"fp32": "strongly typed", "fp16": "strongly typed", "int8": "qdq"}}
    _, _, routes = kit_mod.plan(load_target("jetson-xavier-nx"), ["int8"])
    assert set(routes) == {"8.2.1", "8.4.1", "8.5.2"} and {r["int8"] for r in routes.values()} == {"calibration-cache"}


def test_kit_holds_one_calibration_cache_per_tensorrt_version(tiny_recipe, tiny_quantized, tmp_path):
    """TensorRT skips a cache whose header names another version (trtexec then calibrates on random data
    without an error): every trtexec line must name a cache written for its own version."""
    from edgekit.stages.compile import kit_extras

    kit = kit_mod.write_kit(tiny_quantized, load_target("jetson-xavier-nx"), tmp_path / "kit", ["int8"],
                            kit_extras(tiny_recipe))
    caches = kit["calibration_caches"]
    assert set(caches) == {"8.2.1", "8.4.1", "8.5.2"}
    for version, name in caches.items():
        header_version, _, scales = cc.read(tmp_path / "kit" / name)
        assert str(header_version) == version and scales
    for version, lines in kit["commands"].items():
        assert f"--calib={caches[version]}" in lines["int8"]
    assert not (tmp_path / "kit" / "calibration.cache").exists()


@pytest.mark.parametrize("version,route,source", [("8.5.2.2", "calibration-cache", "fp32.onnx"),
                                                   ("8.6.2.3", "qdq", "int8.onnx"),
                                                   ("10.3.0.30", "qdq", "int8.onnx")])
def test_build_from_kit_takes_the_int8_route_of_the_installed_tensorrt(orin_kit, tmp_path, version, route, source):
    trt = make_trt(version, dla_cores=2)
    done = kit_mod.build_from_kit(orin_kit, tmp_path, ["int8"], trt=trt, cuda=trt._cuda)
    folder = Path(done[0]["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["settings"]["int8_route"] == route and manifest["inputs"]["onnx"]["path"].endswith(source)
    keys = manifest["results"]["engine"]
    assert {k: keys[k] for k in ("tensorrt", "compute_capability", "precision", "dla_core")} == \
        {"tensorrt": version, "compute_capability": "8.7", "precision": "int8", "dla_core": None}
    assert keys["input_shapes"] == {"input": [1, 3, 64, 64]} and len(keys["calibration_sha256"]) == 64
    if route == "calibration-cache":
        assert (folder / "calibration.cache").read_text().startswith(f"TRT-{trt._number}-EntropyCalibration2\n")
    assert (folder / "pipeline.json").is_file() and (folder / "model.engine").is_file()


def test_fp16_on_tensorrt_11_is_built_from_the_fp16_onnx(orin_kit, tmp_path):
    trt = make_trt("11.0.0.1")
    done = kit_mod.build_from_kit(orin_kit, tmp_path, ["fp16"], trt=trt, cuda=trt._cuda)
    manifest = json.loads((Path(done[0]["path"]) / "manifest.json").read_text())
    assert manifest["inputs"]["onnx"]["path"].endswith("fp16.onnx") and manifest["results"]["strongly_typed"]


@pytest.fixture()
def engine_dir(tmp_path):
    """An engine folder built by the fake TensorRT 10.3 on a fake Orin."""
    trt = make_trt("10.3.0.30")
    built = build_engine(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "fp16", 256))
    folder = tmp_path / "tensorrt-fp16"
    folder.mkdir()
    (folder / "model.engine").write_bytes(built.plan)
    keys = {"tensorrt": "10.3.0.30", "compute_capability": "8.7", "precision": "fp16", "dla_core": None,
            "input_shapes": {"input": [1, 1, 8, 8]}, "calibration_sha256": None, "gpu": "Fake Orin"}
    write_manifest(folder, "compile", {}, {"backend": "tensorrt", "precision": "fp16"},
                   {"file": "model.engine", "engine": keys})
    return folder


@pytest.mark.parametrize("version", ["8.2.1.8", "10.3.0.30"])
@pytest.mark.parametrize("graph", [False, True])
def test_runner_runs_the_engine_through_pinned_buffers_and_a_stream(engine_dir, version, graph):
    trt = make_trt(version, cuda=FakeCuda())
    if version != "10.3.0.30":   # same engine, rekeyed and re-planned for this TensorRT
        plan = json.loads((engine_dir / "model.engine").read_bytes())
        (engine_dir / "model.engine").write_text(json.dumps({**plan, "version": version}))
        m = json.loads((engine_dir / "manifest.json").read_text())
        m["results"]["engine"]["tensorrt"] = version
        (engine_dir / "manifest.json").write_text(json.dumps(m))
    runner = TensorRTRunner(engine_dir / "model.engine", batch=1, cuda_graph=graph, trt=trt, cuda=trt._cuda)
    x = np.random.default_rng(0).normal(size=(1, 1, 8, 8)).astype(np.float32)
    for _ in range(2):   # buffers are reused between calls
        out = runner.infer(x)
        assert len(out) == 1 and np.allclose(out[0], expected_outputs(x, [[1, 2, 8, 8]])[0])
        x = x * 2
    assert runner.v3 == (version != "8.2.1.8")
    assert (trt._cuda.launches == 2) == graph
    assert runner.compute_ms() > 0


def test_mismatched_engines_are_refused_saying_what_differs_and_how_to_rebuild(engine_dir):
    trt = make_trt("8.6.2.3", cuda=FakeCuda(cc="8.7"))
    with pytest.raises(EdgekitError, match=r"built with TensorRT 10\.3\.0\.30, this device has 8\.6\.2\.3.*"
                                           r"python3 edgekit-device\.pyz build \(or edgekit compile --kit\)"):
        TensorRTRunner(engine_dir / "model.engine", trt=trt, cuda=trt._cuda)
    trt = make_trt("10.3.0.30", cuda=FakeCuda(cc="7.2", gpu="Fake Xavier"))
    with pytest.raises(EdgekitError, match=r"compute capability 8\.7 \(Fake Orin\), this GPU is 7\.2 \(Fake Xavier\)"):
        TensorRTRunner(engine_dir / "model.engine", trt=trt, cuda=trt._cuda)
    trt = make_trt("10.3.0.30")
    with pytest.raises(EdgekitError, match="built for batch 1, not 4"):
        TensorRTRunner(engine_dir / "model.engine", batch=4, trt=trt, cuda=trt._cuda)


# ------------------------------------------------------------------------------------------ preflight

def test_preflight_flags_ops_opset_shapes_and_qdq(tmp_path, tiny_quantized):
    nano, orin = load_target("jetson-nano"), load_target("jetson-orin")
    ok = tiny_onnx(tmp_path / "ok.onnx")
    found = {f["check"]: f for f in preflight.preflight({"fp32": ok}, nano)["findings"]}
    assert found["opset"]["level"] == "error" and "opset <= 13, and no model of the kit fits" in found["opset"]["detail"]
    old = tiny_onnx(tmp_path / "old.onnx", opset=13)
    routed = {f["check"]: f for f in preflight.preflight({"fp32": ok}, nano, {13: old})["findings"]}
    assert routed["opset"]["level"] == "ok" and "built from old.onnx (exported at opset 13)" in routed["opset"]["detail"]
    nz = tiny_onnx(tmp_path / "nz.onnx", op="NonZero", opset=13)
    assert preflight.preflight({"fp32": nz}, nano)["errors"] == 1      # NonZero needs 8.5
    assert preflight.preflight({"fp32": nz}, orin)["errors"] == 0
    dyn = tiny_onnx(tmp_path / "dyn.onnx", batch="N")
    assert any(f["check"] == "static shapes" and f["level"] == "error"
               for f in preflight.preflight({"fp32": dyn}, orin)["findings"])
    good = preflight.preflight({"fp32": tiny_quantized / "fp32.onnx", "int8": tiny_quantized / "int8.onnx"}, orin)
    assert good["errors"] == 0 and good["gmacs"] > 0 and set(good["fps_estimate"]) == {"fp32", "fp16", "int8"}
    u8 = preflight.preflight({"fp32": tiny_quantized / "fp32.onnx", "int8": tiny_quantized / "int8-u8.onnx"}, orin)
    qdq = next(f for f in u8["findings"] if f["check"] == "Q/DQ encoding")
    assert qdq["level"] == "error" and "uint8" in qdq["detail"]
    # a fire module's squeeze output feeds two expand convs: one Q/DQ pair each in the S8 model (DedicatedQDQPair),
    # one shared pair in the U8 model quantized without it
    assert not any(f["check"] == "Q/DQ pairs" for f in good["findings"])
    shared = next(f for f in u8["findings"] if f["check"] == "Q/DQ pairs")
    assert shared["level"] == "warning" and "shared by several consumers" in shared["detail"]


def test_preflight_names_the_layers_likely_to_leave_the_dla(tmp_path):
    report = preflight.preflight({"fp32": tiny_onnx(tmp_path / "m.onnx", op="Softplus")}, load_target("jetson-orin"))
    dla = next(f for f in report["findings"] if f["check"] == "DLA")
    assert dla["level"] == "warning" and "Softplus x1" in dla["detail"]


def test_macs_count_conv_at_static_shape(tmp_path):
    assert preflight.macs(onnx.load(str(tiny_onnx(tmp_path / "m.onnx")))) == 2 * 8 * 8 * 9


# ---------------------------------------------------------------------------------------- tegrastats

def test_tegrastats_lines_of_jetpack_4_and_6():
    nano = ("RAM 1600/3964MB (lfb 1x4MB) SWAP 0/1982MB CPU [5%@102,3%@102] EMC_FREQ 0% GR3D_FREQ 0% "
            "PLL@30C GPU@30.5C POM_5V_IN 2158/2158 POM_5V_GPU 120/120 POM_5V_CPU 359/359")
    orin = ("RAM 5360/30536MB SWAP 0/15268MB CPU [2%@729] GR3D_FREQ 0% cpu@47.5C VDD_GPU_SOC 2381mW/2381mW "
            "VDD_CPU_CV 397mW/397mW VIN_SYS_5V0 2523mW/2523mW")
    assert jetson.parse_rails(nano) == {"POM_5V_IN": 2158, "POM_5V_GPU": 120, "POM_5V_CPU": 359}
    summary = jetson.summarize([jetson.parse_rails(orin), jetson.parse_rails(orin.replace("2523mW/", "2723mW/"))])
    assert summary["total_from"] == "VIN_SYS_5V0" and summary["total_mw"] == 2623.0


# ---------------------------------------------------------------------------------------- real device

def _has_tensorrt_gpu() -> bool:
    if importlib.util.find_spec("tensorrt") is None:
        return False
    try:
        from edgekit.backends.tensorrt.cuda import cuda_api
        cuda_api().device()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.tensorrt
@pytest.mark.skipif(not _has_tensorrt_gpu(), reason="needs TensorRT and an NVIDIA GPU")
def test_real_tensorrt_engine_matches_onnxruntime(tmp_path, tiny_recipe, tiny_quantized):
    import onnxruntime as ort

    from edgekit.stages.compile import device_kit

    kit = tmp_path / "tensorrt-kit"
    device_kit(tiny_recipe, tiny_quantized, load_target("desktop-cuda"), kit, ["fp32", "fp16"])
    done = kit_mod.build_from_kit(kit, tmp_path, ["fp32"])
    runner = TensorRTRunner(Path(done[0]["path"]) / "model.engine")
    x = np.random.default_rng(0).normal(size=runner.input_shape).astype(np.float32)
    ref = ort.InferenceSession(str(tiny_quantized / "fp32.onnx")).run(None, {"input": x})
    for got, want in zip(runner.infer(x), ref):
        assert np.allclose(got, want, rtol=1e-2, atol=1e-2)


# ------------------------------------------------------------------ the device side owns what it makes (issue 29)
class _PushedContexts:
    """The CUDA adapter over pycuda as it behaves: the primary context pushed at start, popped only by close();
    a context still pushed at exit makes pycuda abort the interpreter (exit 134)."""

    def __init__(self, cc: str = "8.7", gpu: str = "Fake Orin") -> None:
        self.pushed, self.cc, self.gpu = [], cc, gpu

    def __call__(self):
        adapter = FakeCuda(cc=self.cc, gpu=self.gpu)
        self.pushed.append(adapter)
        adapter.close = lambda: self.pushed.remove(adapter) if adapter in self.pushed else None
        return adapter


def test_an_engine_refused_at_load_leaves_no_cuda_context_pushed(engine_dir, monkeypatch):
    """A JetPack upgrade refuses the engine (another TensorRT): the runner raises, and the adapter it made for
    itself is closed, or `golden` would exit 134 at interpreter exit instead of 2 (and flash reads that)."""
    from edgekit.backends.tensorrt import runner as runner_mod

    contexts = _PushedContexts()
    monkeypatch.setattr(runner_mod, "cuda_api", contexts)
    with pytest.raises(EdgekitError, match="built with TensorRT 10.3.0.30, this device has 8.6.2.3"):
        TensorRTRunner(engine_dir / "model.engine", trt=make_trt("8.6.2.3"))
    assert contexts.pushed == []
    with TensorRTRunner(engine_dir / "model.engine", trt=make_trt("10.3.0.30")) as runner:
        assert len(contexts.pushed) == 1
        for _ in range(200):
            runner.compute_ms()
        assert runner._events is not None and len(runner._events) == 2     # two events a runner, not two a call
    assert contexts.pushed == []


def test_the_host_kit_build_and_the_native_device_check_close_the_adapter_they_make(orin_kit, tmp_path, monkeypatch):
    """`edgekit compile --kit` exited 134 under pycuda: the adapter made to read the device was never closed."""
    import importlib.util

    from edgekit.backends.tensorrt import cuda as cuda_mod
    from edgekit.backends.tensorrt import runner as runner_mod

    contexts = _PushedContexts()
    monkeypatch.setattr(cuda_mod, "cuda_api", contexts)
    kit_mod.build_from_kit(orin_kit, tmp_path / "out", ["fp16"], trt=make_trt("10.3.0.30"))
    assert contexts.pushed == [] and (tmp_path / "out" / "tensorrt-fp16" / "model.engine").is_file()
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "tensorrt"
                        else real_find_spec(name, *a))
    monkeypatch.setattr(runner_mod, "import_tensorrt", lambda: make_trt("10.3.0.30"))
    assert kit_mod.native_device(load_target("jetson-orin")).compute_capability == "8.7"
    assert contexts.pushed == []


def test_loading_an_engine_builds_no_builder(engine_dir):
    """The DLA core count is the Runtime's to say (`Runtime.num_DLA_cores`); a Builder per engine load is waste."""
    from trt_api import Recorder, Use

    recorder = Recorder({"Runtime": "Runtime", "TensorEngine": "ICudaEngine", "TensorContext": "IExecutionContext",
                         "Logger": "Logger"}, set())
    raw = make_trt("10.3.0.30")
    with TensorRTRunner(engine_dir / "model.engine", trt=recorder.module(raw), cuda=raw._cuda):
        pass
    calls = {u.name for u in recorder.uses if u.kind == "call" and u.owner == "tensorrt"}
    assert "Runtime" in calls and "Builder" not in calls
    assert Use("get", "Runtime", "num_DLA_cores") in recorder.uses
