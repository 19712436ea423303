"""raf-ssd through every stage on the built-in data with a CI-sized recipe (64 px, one epoch)."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgekit.artifacts import read_manifest
from edgekit.backends import get_backend
from edgekit.backends.pytorch import TorchRunner
from edgekit.camera.post.detection import postprocess
from edgekit.checkpoint import load_model
from edgekit.stages.build import BuildOptions, build
from edgekit.targets import load_target
from edgekit.tasks.detection.spec import DetectionSpec


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_det_recipe, tiny_data) -> dict:
    root = tmp_path_factory.mktemp("det")
    res = build(tiny_det_recipe, load_target("intel-cpu"), root / "run", BuildOptions(data=tiny_data, threads=2))
    return {"dir": root / "run", "res": res}


def test_build_runs_every_stage_and_reports_map(run) -> None:
    res = run["res"]
    assert [s["stage"] for s in res["stages"]] == ["train", "prune", "export", "calibration set", "quantize",
                                                  "compile", "validate"]
    assert res["stages"][1]["result"].startswith("MACs kept 2")  # half the channels: about a quarter of the MACs
    assert res["stages"][0]["result"].startswith("test mAP@0.5 % (VOC07 11-point)")
    rows = res["results"]["rows"]
    assert [r["artifact"] for r in rows] == ["fp32-reference", "openvino-fp32", "openvino-fp16", "openvino-int8"]
    for r in rows:
        assert set(r["ap_voc07"]) <= set(run["res"]["results"]["rows"][0]["gt_per_class"])
        assert 0.0 <= r["map_voc07"] <= 100.0 and 0.0 <= r["coco"]["map"] <= 100.0
    assert rows[1]["drop_vs_fp32"] == pytest.approx(0.0, abs=1e-9)  # same graph on another runtime
    report = (run["dir"] / "validate" / "report.md").read_text()
    assert "Per-class AP@0.5 % (VOC07 11-point)" in report and "COCO mAP@[.5:.95]" in report
    assert "![detections](detections.png)" in report
    # the reference is the pruned model; what pruning cost is gated against the unpruned one
    pruning = res["results"]["pruning"]
    assert pruning["macs_kept"] < 0.4 and pruning["unpruned"] == pytest.approx(
        read_manifest(run["dir"] / "train")["results"]["headline"]["value"])
    assert res["results"]["gates"][0]["gate"].startswith("mAP@0.5 % (VOC07) drop vs unpruned <=")
    assert "Pruning: 50% of the channels" in report and "Pruned model kept: " in report
    png = run["dir"] / "validate" / "detections.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_has_two_static_outputs_and_no_batch_constants(run, tiny_det_recipe) -> None:
    model = onnx.load(str(run["dir"] / "export" / "model.onnx"))
    n = len(DetectionSpec.from_recipe(tiny_det_recipe).prior_boxes)
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert outputs == {"loc": [1, n, 4], "conf": [1, n, 7]}
    # TensorRT 8.2 parses every op here; nothing data-dependent (no NMS, no Shape/NonZero/Loop)
    ops = {node.op_type for node in model.graph.node}
    assert ops <= {"Conv", "ConvTranspose", "BatchNormalization", "Relu", "Add", "Mul", "Sigmoid", "MaxPool",
                   "GlobalAveragePool", "Slice", "Transpose", "Reshape", "Concat", "Constant"}
    assert read_manifest(run["dir"] / "export")["results"]["max_abs_diff_vs_pytorch"] < 1e-3


def test_nms_gives_equal_detections_after_every_backend(run, tiny_det_recipe, tiny_data) -> None:
    """PyTorch eager, ONNX Runtime and OpenVINO FP32 outputs through the one host post-processing."""
    spec = DetectionSpec.from_recipe(tiny_det_recipe)
    x = np.random.default_rng(0).normal(0, 1, (3, 3, 64, 64)).astype(np.float32)
    fp32 = run["dir"] / "quantize" / "fp32.onnx"
    runners = {
        "pytorch": TorchRunner(load_model(tiny_det_recipe, run["dir"] / "prune" / "model.pt"), (1, 3, 64, 64), 2),
        "onnxruntime": get_backend("onnxruntime").load(fp32, 2),
        "openvino": get_backend("openvino").load(run["dir"] / "compile" / "openvino-fp32" / "model.xml", 2),
    }
    dets = {name: [postprocess(*r.infer(xi[None]), spec.prior_boxes, spec.postprocess)[0] for xi in x]
            for name, r in runners.items()}
    ref = dets["pytorch"]
    assert sum(len(d) for d in ref) > 0
    for name in ("onnxruntime", "openvino"):
        for a, b in zip(ref, dets[name]):
            assert a.labels.tolist() == b.labels.tolist(), name
            assert np.allclose(a.boxes, b.boxes, atol=1e-4) and np.allclose(a.scores, b.scores, atol=1e-4), name


def test_int8_is_qdq_and_runs_through_the_same_postprocessing(run) -> None:
    q = onnx.load(str(run["dir"] / "quantize" / "int8.onnx"))
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("QuantizeLinear") > 50 and "ConvTranspose" in ops
    int8 = next(r for r in run["res"]["results"]["rows"] if r["artifact"] == "openvino-int8")
    assert int8["detections"] > 0 and "drop_vs_fp32" in int8


def test_jetson_build_of_a_detector_leaves_a_device_kit(run, tiny_det_recipe, tiny_data) -> None:
    res = build(tiny_det_recipe, load_target("jetson-orin"), run["dir"].parent / "orin",
                BuildOptions(data=tiny_data, checkpoint=run["dir"] / "train" / "model.pt", threads=2))
    kit = run["dir"].parent / "orin" / "compile" / "tensorrt-kit"
    assert (kit / "int8.onnx").is_file() and "BUILD_ON_DEVICE.md" in res["left_to_do"]
    pipeline = json.loads((kit / "pipeline.json").read_text())
    assert pipeline["outputs"] == ["loc", "conf"] and pipeline["classes"][0] == "crazing"
    assert pipeline["postprocess"]["nms"]["iou_threshold"] == 0.45 and pipeline["input"]["shape"] == [1, 3, 64, 64]
    assert np.load(kit / "priors.npy").shape == (len(DetectionSpec.from_recipe(tiny_det_recipe).prior_boxes), 4)
    # the OpenVINO artifacts here are the Orin's CPU fallback: accuracy gated, fps reported but not gated
    results = json.loads((run["dir"].parent / "orin" / "validate" / "results.json").read_text())
    assert results["gates"] and not any("fps" in g["gate"] for g in results["gates"])
    assert any("not gated" in n for n in results["notes"])
    on_cpu = json.loads((run["dir"] / "validate" / "results.json").read_text())
    assert any("fps >= line rate" in g["gate"] for g in on_cpu["gates"])


def test_pruning_is_measured_and_its_decision_followed(run) -> None:
    decision = read_manifest(run["dir"] / "prune")["results"]["decision"]
    assert [r["model"] for r in decision["table"]] == ["unpruned", "pruned + fine-tuned"]
    assert decision["table"][1]["macs"] < decision["table"][0]["macs"] and decision["speed_on"] == "openvino"
    # the build ships INT8: the speed-up that decides is INT8's (NNCF's model on OpenVINO); FP32's is in the table
    assert decision["precision"] == "int8" and "FP32" in decision["reason"]
    unpruned, pruned = decision["table"]
    assert decision["speedup"] == pytest.approx(unpruned["latency_int8_ms"] / pruned["latency_int8_ms"], rel=1e-2)
    assert unpruned["latency_ms"] > 0 and pruned["latency_ms"] > 0
    exported = read_manifest(run["dir"] / "export")["inputs"]["checkpoint"]["path"]
    assert exported.startswith(str(run["dir"] / ("prune" if decision["kept"] else "train")))
    assert "pruning" in (run["dir"] / "validate" / "report.md").read_text().lower()


def test_a_pruning_that_does_not_pay_is_declined(run, tiny_det_recipe, tiny_data, tmp_path) -> None:
    import yaml

    from edgekit.recipes import load_recipe
    from edgekit.report import prune_table
    from edgekit.stages import prune as prune_stage
    from edgekit.stages import train as train_stage

    raw = yaml.safe_load(tiny_det_recipe.path.read_text())
    raw["prune"].update(min_speedup=50.0, finetune={"epochs": 1})       # no pruning makes it 50x faster
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(raw))
    recipe = load_recipe(path)
    unpruned = run["dir"] / "train" / "model.pt"
    m = prune_stage.prune(recipe, unpruned, tiny_data, tmp_path / "prune", threads=2, target=load_target("cpu"))
    decision = m["results"]["decision"]
    assert not decision["kept"] and decision["reason"].startswith("pruning DECLINED")
    assert decision["speed_on"] == "onnxruntime" and 0 < decision["speedup"] < 50
    assert decision["precision"] == "int8" and "INT8 ms (b=1)" in prune_table(decision["table"], "mAP")[0]
    assert train_stage.chosen_checkpoint(tmp_path / "prune", unpruned) == unpruned
    # a Jetson not at hand: the data-sheet estimate from the MACs decides
    assert prune_stage.speed_backend(load_target("jetson-orin")) == "estimate"
    model = load_model(recipe, unpruned)
    ms = prune_stage.latency_ms(recipe, {"a": model, "b": load_model(recipe, tmp_path / "prune" / "model.pt")},
                                "estimate", load_target("jetson-orin"), 1)
    assert ms["b"] < ms["a"]


class _Planned(Exception):
    """Stops a build once it has planned."""


def test_a_recipe_with_sparsity_builds_without_its_optional_extra(monkeypatch, tmp_path, tiny_det_recipe,
                                                                  tiny_data) -> None:
    """raf-ssd for an Orin (Sparse Tensor Cores) where NVIDIA Model Optimizer is not installed: the build plans
    without the sparsify stage and says in one line what it skipped and how to get it."""
    import sys

    for name in [m for m in sys.modules if m == "modelopt" or m.startswith("modelopt.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "modelopt", None)       # `import modelopt...` now raises ImportError
    assert tiny_det_recipe.sparsity and load_target("jetson-orin").sparse_tensor_cores
    seen = []

    def stop(rows):
        seen.extend(rows)
        raise _Planned

    with pytest.raises(_Planned):
        build(tiny_det_recipe, load_target("jetson-orin"), tmp_path / "run", BuildOptions(data=tiny_data, threads=2),
              on_plan=stop)
    stages = [(r["stage"], r["action"]) for r in seen]
    assert ("sparsify", "skip") in stages and ("sparsify", "run") not in stages
    skip = next(r for r in seen if r["action"] == "skip")
    from edgekit.stages.build import skipped_line

    line = skipped_line(skip)
    assert line.startswith("sparsify skipped: NVIDIA Model Optimizer is not installed")
    assert "pip install 'edgekit[sparsity]'" in line and "dense model" in line
    # the plan as the terminal shows it: the line whole (rich would read "[sparsity]" as markup)
    import io

    from rich.console import Console

    from edgekit import cli

    printed = io.StringIO()
    monkeypatch.setattr(cli, "out", Console(file=printed, width=200))
    cli._print_plan(seen, tiny_det_recipe, "jetson-orin", quick=False)
    assert "pip install 'edgekit[sparsity]' to add it" in printed.getvalue()
