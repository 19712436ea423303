"""Every stage on the built-in data with a CI-sized recipe, through the real code paths."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgekit import calibration
from edgekit.artifacts import read_manifest
from edgekit.data.recipe_data import load_split
from edgekit.errors import EdgekitError
from edgekit.stages.bench import bench
from edgekit.stages.build import BuildOptions, build
from edgekit.stages.compile import compile_for_target
from edgekit.stages.export import check_onnx
from edgekit.stages.quantize import quantize
from edgekit.stages.train import train
from edgekit.stages.validate import required_fps, validate
from edgekit.targets import load_target


@pytest.fixture(scope="module")
def stages(tiny_stages) -> dict[str, Path]:
    """train -> export -> calibration -> quantize (the session's tiny run)."""
    return tiny_stages


def test_train_writes_checkpoint_history_and_manifest(stages) -> None:
    m = read_manifest(stages["root"] / "train")
    assert m["stage"] == "train" and "model.pt" in m["files"]
    assert m["settings"]["lr_multipliers"] == {"conv1": 9, "fire2": 9, "fire3": 9}
    assert m["results"]["pretrained_tensors_loaded"] == 50 and m["inputs"]["pretrained"]["sha256"]
    assert m["results"]["data"]["train"] + m["results"]["data"]["test"] == 60
    assert len(json.loads((stages["root"] / "train" / "history.json").read_text())) == 1
    assert not (stages["root"] / "train.ckpt").exists()  # resume checkpoint removed once done


def test_export_is_static_checked_and_close_to_pytorch(stages, tiny_recipe) -> None:
    res = read_manifest(stages["root"] / "export")["results"]
    assert res["input_shape"] == [1, 3, 64, 64] and res["opset"] >= 17
    assert res["max_abs_diff_vs_pytorch"] < 1e-3
    check_onnx(stages["root"] / "export" / "model.onnx", tiny_recipe)
    # the copy for TensorRT 8.0-8.4: exported again at opset 13, checked, equal on ONNX Runtime
    copy = res["opset_copies"]["13"]
    assert copy["file"] == "model.opset13.onnx" and copy["max_rel_diff_vs_opset"] <= 1e-4
    old = onnx.load(str(stages["root"] / "export" / copy["file"]))
    assert next(o.version for o in old.opset_import if o.domain in ("", "ai.onnx")) == 13
    quantized = read_manifest(stages["root"] / "quantize")["results"]["opset_copies"]
    assert quantized == {"13": "fp32.opset13.onnx"}


def test_int8_is_symmetric_per_channel_qdq(stages) -> None:
    model = onnx.load(str(stages["root"] / "quantize" / "int8.onnx"))
    ops = [n.op_type for n in model.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "DequantizeLinear" and len(n.input) > 2]
    assert zero_points and not any(zp.any() for zp in zero_points)  # symmetric: every zero point is 0
    assert {zp.dtype for zp in zero_points} == {np.dtype(np.int8)}  # biases stay float: TensorRT's Q/DQ is INT8 only
    biases = [n for n in model.graph.node if n.op_type == "Conv" and len(n.input) > 2]
    assert biases and all(n.input[2] in inits and inits[n.input[2]].dtype == np.float32 for n in biases)
    conv_weight_scales = [inits[n.input[1]] for n in model.graph.node
                          if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4]
    assert conv_weight_scales and all(s.ndim == 1 and s.size > 1 for s in conv_weight_scales)
    u8 = onnx.load(str(stages["root"] / "quantize" / "int8-u8.onnx"))
    u8_inits = {i.name: numpy_helper.to_array(i) for i in u8.graph.initializer}
    assert any(u8_inits[n.input[2]].dtype == np.uint8 for n in u8.graph.node if n.op_type == "QuantizeLinear")
    assert any(u8_inits[n.input[0]].dtype == np.int32 for n in u8.graph.node  # ONNX Runtime's int32 biases
               if n.op_type == "DequantizeLinear" and n.input[0] in u8_inits)


def test_calibration_result_is_cached_by_model_and_set(stages, tiny_recipe, tiny_data, tmp_path) -> None:
    first = read_manifest(stages["root"] / "quantize")["results"]
    assert first["calibration_cache_hit"] is False
    again = quantize(tiny_recipe, stages["root"] / "export", stages["manifest"], tiny_data, tmp_path / "q",
                     cache_dir=stages["root"] / "cache")
    assert again["calibration_cache_hit"] is True and again["calibration_cache"] == first["calibration_cache"]
    other = quantize(tiny_recipe, stages["root"] / "export", stages["manifest"], tiny_data, tmp_path / "q2",
                     method="percentile", cache_dir=stages["root"] / "cache")
    assert other["calibration_cache_hit"] is False and other["calibration_cache"] != first["calibration_cache"]


def test_calibration_manifest_is_from_train_split_and_detects_changed_images(stages, tiny_recipe, tiny_data,
                                                                           tmp_path) -> None:
    m, files = calibration.load(stages["manifest"], tiny_data)
    assert m["count"] == 12 and len(files) == 12
    assert m["selection"]["method"] == "class-stratified" and m["selection"]["per_class"] == 2
    test_paths = {s.path for s in load_split(tiny_recipe, tiny_data).test}
    assert not test_paths & set(files)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_data, copy)
    victim = copy / m["images"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(EdgekitError, match="sha256 mismatch"):
        calibration.load(stages["manifest"], copy)


def test_compile_validate_bench_on_cpu_backends(stages, tiny_recipe, tiny_data, tmp_path) -> None:
    root = stages["root"]
    done = compile_for_target(tiny_recipe, root / "quantize", load_target("intel-cpu"), tmp_path / "c",
                              ["fp32", "fp16", "int8"])
    assert [(d["backend"], d["precision"]) for d in done] == [("openvino", p) for p in ("fp32", "fp16", "int8")]
    # the half-precision artifact computes in bf16 on a CPU target with bf16 (AMX), and says so
    assert [d.get("compute") for d in done] == [None, "bf16", None]
    from edgekit.backends import get_backend
    assert [get_backend("openvino").load(tmp_path / "c" / f"openvino-{p}" / "model.xml", 1).precision
            for p in ("fp32", "fp16")] == ["f32", "bf16"]
    done += compile_for_target(tiny_recipe, root / "quantize", load_target("cpu"), tmp_path / "c", ["int8"])
    assert read_manifest(tmp_path / "c" / "onnxruntime-int8")["settings"]["int8_encoding"] == "u8"
    res = validate(tiny_recipe, root / "quantize" / "fp32.onnx", [Path(d["path"]) for d in done], tiny_data,
                   tmp_path / "v", threads=2)
    labels = [r["artifact"] for r in res["rows"]]
    assert labels == ["fp32-reference", "openvino-fp32", "openvino-fp16", "openvino-int8", "onnxruntime-int8"]
    ov32 = res["rows"][1]
    assert ov32["drop_vs_fp32"] == pytest.approx(0.0, abs=1e-9)  # same model, another runtime: same answers
    assert res["rows"][2]["compute"] == "bf16" and "| openvino-fp16 | bf16 |" in (tmp_path / "v" / "report.md").read_text()
    assert np.array(ov32["confusion"]).sum() == 12
    assert res["passed"] and not any(g["gate"].startswith("accuracy >= paper") for g in res["gates"])
    report = (tmp_path / "v" / "report.md").read_text()
    assert "not the paper's data" in report and "Confusion matrix: openvino-int8" in report
    assert "![confusion matrices](confusion.png)" in report and (tmp_path / "v" / "confusion.png").stat().st_size > 1000
    b = bench(tmp_path / "c" / "openvino-int8", batches=[1, 2], iters=5, warmup=1, max_seconds=2)
    assert [(r["backend"], r["batch"], r.get("timing")) for r in b["rows"]] == [
        ("openvino", 1, None), ("openvino", 1, "end to end"), ("openvino", 2, None)]
    assert all(r["p50_ms"] <= r["p99_ms"] for r in b["rows"])


def test_jetson_target_gets_a_device_kit_and_a_cpu_estimate(stages, tiny_recipe, tmp_path) -> None:
    done = compile_for_target(tiny_recipe, stages["root"] / "quantize", load_target("jetson-orin"), tmp_path / "j",
                              ["fp32", "fp16", "int8"])
    kit = tmp_path / "j" / "tensorrt-kit"
    assert done[0]["backend"] == "tensorrt" and (kit / "int8.onnx").is_file()
    howto = (kit / "BUILD_ON_DEVICE.md").read_text()
    assert "--onnx=int8.onnx --int8" in howto and "--useDLACore=0 --allowGPUFallback" in howto
    assert {d["backend"] for d in done[1:]} == {"openvino"}
    nano = compile_for_target(tiny_recipe, stages["root"] / "quantize", load_target("jetson-nano"), tmp_path / "n",
                              ["fp32", "fp16", "int8"])
    skipped = read_manifest(tmp_path / "n" / "tensorrt-kit")["results"]["skipped"]
    nano_howto = (tmp_path / "n" / "tensorrt-kit" / "BUILD_ON_DEVICE.md").read_text()
    assert "int8" in skipped and "--workspace=" in nano_howto
    # TensorRT 8.2's parser documents opset <= 13: the Nano's lines parse the opset-13 copy of the export
    assert "trtexec --onnx=fp32.opset13.onnx" in nano_howto and "--onnx=fp32.onnx" not in nano_howto
    nano_check = json.loads((tmp_path / "n" / "tensorrt-kit" / "preflight.json").read_text())
    assert next(f for f in nano_check["findings"] if f["check"] == "opset")["level"] == "ok"
    assert "--onnx=fp32.onnx" in howto     # Orin's TensorRT 8.5+ reads the opset-17 model
    assert nano[0]["precision"] == "fp32,fp16"


def test_line_rate_formula() -> None:
    assert required_fps({"strip_speed_mps": 18, "fov_along_strip_m": 1.0, "overlap": 0.1}) == pytest.approx(20.0)
    assert required_fps({"strip_speed_mps": 10, "fov_along_strip_m": 0.5, "overlap": 0.0, "tiles_per_frame": 4}) == 80


def test_build_resumes_and_starts_from_onnx(stages, tiny_recipe, tiny_data, tmp_path) -> None:
    opts = BuildOptions(data=tiny_data, epochs=1, threads=2)
    first = build(tiny_recipe, load_target("intel-cpu"), tmp_path / "run", opts)
    assert [s["status"] for s in first["stages"]] == ["ran"] * 6
    # INT8 held to the recipe's bound on training images held aside from calibration; NNCF's INT8 measured
    # against the Q/DQ model for the OpenVINO target, the choice and its reason recorded and compiled
    q = read_manifest(tmp_path / "run" / "quantize")
    bound, ov = q["results"]["accuracy_bound"], q["results"]["openvino_int8"]
    assert bound["held_aside_images"] > 0 and bound["status"].startswith("within bound") and bound["fp32"] >= 0
    assert ov["chosen"] in ("nncf", "qdq") and ov["reason"] and set(ov["latency_ms"]) == {"qdq", "nncf"}
    compiled = read_manifest(tmp_path / "run" / "compile" / "openvino-int8")["settings"]["int8_encoding"]
    assert compiled == ("nncf" if ov["chosen"] == "nncf" else "s8")
    assert not q["settings"]["reduce_range"]
    second = build(tiny_recipe, load_target("intel-cpu"), tmp_path / "run", opts)
    assert [s["status"] for s in second["stages"]][:4] == ["reused"] * 4
    onnx_opts = BuildOptions(data=tiny_data, onnx=stages["root"] / "export" / "model.onnx", threads=2)
    from_onnx = build(tiny_recipe, load_target("cpu"), tmp_path / "run2", onnx_opts)
    assert [s["stage"] for s in from_onnx["stages"]] == ["calibration set", "quantize", "compile", "validate"]
    assert json.loads((tmp_path / "run2" / "build.json").read_text())["target"] == "cpu"
    q = read_manifest(tmp_path / "run2" / "quantize")          # no VNNI assumed: 7-bit weights, no NNCF
    assert q["settings"]["reduce_range"] and q["results"]["openvino_int8"] is None


def test_training_resumes_after_an_interruption(tiny_recipe, tiny_data, tmp_path, monkeypatch) -> None:
    import edgekit.stages.train as train_mod

    real_save = train_mod.save_checkpoint
    calls = []

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        calls.append(kwargs.get("epoch"))
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(train_mod, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_recipe, tiny_data, tmp_path / "t", epochs=2, threads=2)
    assert calls == [1] and (tmp_path / "t.ckpt" / "last.pt").is_file() and not (tmp_path / "t").exists()
    monkeypatch.setattr(train_mod, "save_checkpoint", real_save)
    m = train(tiny_recipe, tiny_data, tmp_path / "t", epochs=2, threads=2)
    history = json.loads((tmp_path / "t" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and m["results"]["epochs"] == 2


def test_lr_schedules_warm_up_then_decay_as_named():
    from edgekit.stages.train import lr_factor

    base = {"epochs": 10, "warmup_epochs": 1}
    assert lr_factor({**base, "schedule": "exponential", "gamma": 0.5}, 0, 4) == 0.25  # 1/4 into warm-up
    assert lr_factor({**base, "schedule": "exponential", "gamma": 0.5}, 8, 4) == 0.25  # epoch 2: 0.5^2
    assert lr_factor({**base, "schedule": "step", "gamma": 0.1, "step_epochs": 5}, 20, 4) == pytest.approx(0.1)
    cosine = {**base, "schedule": "cosine", "min_lr_factor": 0.1}
    assert lr_factor(cosine, 20, 4) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way
    assert lr_factor(cosine, 40, 4) == pytest.approx(0.1)  # the end


def test_bf16_autocast_trains_only_where_the_cpu_computes_in_bf16(monkeypatch):
    import torch

    from edgekit.stages import train as train_stage

    cpu = torch.device("cpu")
    monkeypatch.setattr(train_stage, "host_cpu", lambda: ("Xeon", ["avx512_vnni", "amx_int8", "amx_bf16"]))
    assert train_stage.autocast_bf16({"amp": True}, cpu) and not train_stage.autocast_bf16({}, cpu)
    monkeypatch.setattr(train_stage, "host_cpu", lambda: ("EPYC", ["avx2", "fma"]))
    assert not train_stage.autocast_bf16({"amp": True}, cpu)
    assert train_stage.autocast_bf16({"amp": True}, torch.device("cuda"))
