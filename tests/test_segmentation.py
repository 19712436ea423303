"""Segmentation: LSA-Net's modules and losses, the figures on hand-made masks, connected components,
the mask data of the built-in generator, and lsa-net through every stage with equal answers after
PyTorch, ONNX Runtime and OpenVINO."""
from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
import torch

from edgekit.backends import get_backend
from edgekit.backends.pytorch import TorchRunner
from edgekit.camera.post.segmentation import PostprocessSpec, postprocess
from edgekit.checkpoint import load_model
from edgekit.data.masks import load_masks, read_mask
from edgekit.data.recipe_data import load_split
from edgekit.models import create_model
from edgekit.models.lsa_net import FEM, LAM, SDM, location_map, pyramid_level
from edgekit.stages.build import BuildOptions, build
from edgekit.targets import load_target
from edgekit.tasks.segmentation.data import area_resize, bounding_rectangles
from edgekit.tasks.segmentation.metrics import confusion, figures, per_image_confusion, split_figures, trivial_figures
from edgekit.tasks.segmentation.val import pixel_answers
from edgekit.tasks.segmentation.spec import SegmentationSpec
from edgekit.tasks.segmentation.train import bce_dice, feature_difference, segmentation_loss


def test_module_shapes() -> None:
    x = torch.randn(2, 16, 24, 32)
    y, loc = LAM(16)(x)
    assert y.shape == x.shape and loc.shape == (2, 1, 24, 32)
    w, v1, v2 = SDM(16, 24)(x)
    assert w.shape == x.shape and v1.shape == v2.shape == (2, 24, 24, 32)
    assert FEM(16)(x).shape == x.shape


def test_sppm_is_a_pyramid_of_cells_upsampled_back() -> None:
    """Table 2: 3x3 and 5x5 average pools, then "Upsample": each pixel holds the mean of its own k x k cell
    (a last, partial cell the mean of what it holds), at the map's size."""
    x = torch.randn(2, 4, 32, 32)
    for k, cells in ((3, 11), (5, 7)):
        y = pyramid_level(x, k, 32, 32)
        assert y.shape == x.shape
        assert len(torch.unique(y[0, 0])) <= cells * cells < len(torch.unique(x[0, 0]))
        a = 4 // k * k                                            # the cell holding pixel (4, 4)
        assert torch.allclose(y[..., 4, 4], x[..., a : a + k, a : a + k].mean((-2, -1)), atol=1e-6)
        assert torch.allclose(y[..., 31, 31], x[..., 30:, 30:].mean((-2, -1)), atol=1e-6)   # 32 = 30 + 2 for both
    sdm = SDM(16, 8).eval()
    out, v1, v2 = sdm(torch.randn(1, 16, 16, 16))
    assert out.shape == (1, 16, 16, 16) and v1.shape == v2.shape == (1, 8, 16, 16)


def test_area_resize_keeps_a_one_pixel_line() -> None:
    """A crack one pixel wide survives shrinking to the network's size, straight or diagonal, where nearest
    neighbour and a plain half-area threshold drop it; a blob keeps its area; a speck too small for half a
    network pixel is kept as one."""
    line = np.zeros((512, 512), np.uint8)
    line[201, :] = 1                                              # horizontal, 1 px
    np.fill_diagonal(line, 1)                                     # and a diagonal
    small = area_resize(line, 128)
    assert small[50, :].all() and small.diagonal().all()         # each keeps every network pixel it crosses
    assert small.sum() == 128 + 127                               # and only those (they cross at one)
    nearest = cv2.resize(line, (128, 128), interpolation=cv2.INTER_NEAREST)
    assert nearest[50].sum() <= 1                                 # nearest samples row 200: the line is gone
    assert not (cv2.resize(line.astype(np.float32), (128, 128), interpolation=cv2.INTER_AREA) >= 0.5).any()  # half-area: gone
    blob = np.zeros((400, 300), np.uint8)
    blob[100:300, 60:240] = 1
    assert area_resize(blob, 128).sum() == pytest.approx(blob.mean() * 128 * 128, rel=0.06)
    speck = np.zeros((256, 256), np.uint8)
    speck[100, 100] = 1
    assert area_resize(speck, 64).sum() == 1
    classes = np.zeros((256, 256), np.uint8)
    classes[:, :100], classes[10:12, 150:] = 2, 1
    out = area_resize(classes, 64)
    assert set(np.unique(out)) == {0, 1, 2} and (out[:, :24] == 2).all() and (out[2, 38:] == 1).all()


def test_lam_location_map_is_the_outer_product_of_strip_means() -> None:
    """A defect's rows and columns light up where they cross: the strip pooling of seeds/004, Fig. 5."""
    lam = LAM(1)
    f = torch.zeros(1, 1, 6, 8)
    f[0, 0, 2:4, 5:7] = 1.0
    product = location_map(f)
    assert product[0, 0].nonzero().tolist() == [[r, c] for r in (2, 3) for c in (5, 6)]
    assert lam(torch.randn(1, 1, 6, 8))[1].shape == (1, 1, 6, 8)


@pytest.mark.parametrize("name,extra", [("lsa_net", 3), ("unet", 0)])
def test_networks_train_and_deploy_outputs(name: str, extra: int) -> None:
    model = create_model(name, in_channels=1, base=4).train()
    out = model(torch.randn(2, 1, 64, 64))
    assert len(out) == 1 + extra and out[0].shape == (2, 1, 64, 64)
    if extra:
        assert out[1].shape == (2, 1, 32, 32) and out[2].shape == out[3].shape == (2, 48, 8, 8)
    assert model.eval()(torch.randn(1, 1, 64, 64)).shape == (1, 1, 64, 64)


def test_feature_difference_loss_falls_as_the_branches_differ() -> None:
    v1 = torch.randn(4, 8, 5, 5)
    losses = [feature_difference(v1, v1 + d, 1.0).item() for d in (0.0, 0.5, 1.0, 3.0)]
    assert losses[0] == pytest.approx(1.0) and losses == sorted(losses, reverse=True) and losses[-1] < 0.15


def test_bce_dice_is_low_for_the_truth_and_high_for_its_opposite() -> None:
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:5, 2:5] = 1
    good = bce_dice(torch.where(target > 0, 8.0, -8.0), target, 0.5).item()
    bad = bce_dice(torch.where(target > 0, -8.0, 8.0), target, 0.5).item()
    assert good < 0.01 and bad > 1.0


def test_lsa_net_loss_weights_its_three_parts() -> None:
    w = SegmentationSpec().loss
    mask = torch.zeros(2, 1, 16, 16)
    mask[:, :, 4:8, 4:10] = 1
    outputs = (torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 8, 8), torch.zeros(2, 3, 2, 2), torch.ones(2, 3, 2, 2))
    total, parts = segmentation_loss(outputs, mask, mask, w)
    assert set(parts) == {"seg", "loc", "diff"} and parts["diff"] == pytest.approx(0.5)
    assert total.item() == pytest.approx(1.4 * parts["seg"] + 0.4 * parts["loc"] + 0.2 * parts["diff"], rel=1e-5)
    assert set(segmentation_loss(outputs[0], mask, mask, w)[1]) == {"seg"}


def test_bounding_rectangles_fill_each_component_box() -> None:
    mask = np.zeros((10, 12), bool)
    mask[1, 1:4] = mask[2:4, 3] = True           # an L: its rectangle is rows 1-3, columns 1-3
    mask[7:9, 9] = True
    rect = bounding_rectangles(mask)
    assert rect[1:4, 1:4].all() and rect[7:9, 9].all() and rect.sum() == 9 + 2


def test_figures_on_hand_made_masks() -> None:
    truth = np.zeros((10, 10), bool)
    truth[0:4, 0:5] = True                       # 20 defect pixels
    pred = np.zeros((10, 10), bool)
    pred[0:4, 0:3] = True                        # 12 of them found ...
    pred[9, 0:8] = True                          # ... and 8 false alarms
    m = confusion(pred, truth)
    assert m.tolist() == [[72, 8], [8, 12]]
    f = figures(m)
    assert f["pixel_accuracy"] == pytest.approx(84.0)
    assert f["defect_iou"] == pytest.approx(100 * 12 / 28)
    assert f["background_iou"] == pytest.approx(100 * 72 / 88)
    assert f["mean_iou"] == pytest.approx((100 * 12 / 28 + 100 * 72 / 88) / 2)
    assert f["dice"] == pytest.approx(100 * 24 / 40)
    empty = figures(confusion(np.zeros((4, 4), bool), np.zeros((4, 4), bool)))
    assert empty["defect_iou"] is None and empty["mean_iou"] == 100.0 and empty["dice"] is None
    split = split_figures([pred, np.zeros_like(pred)], [truth, np.zeros_like(truth)], [0, 1], ("a", "b"))
    assert split["confusion"] == [[172, 8], [8, 12]] and split["per_group"]["b"]["defect_iou"] is None
    trivial = trivial_figures([truth])
    assert trivial["all background"]["mean_iou"] == pytest.approx(40.0)
    assert trivial["all defect"]["defect_iou"] == pytest.approx(20.0)


def test_split_and_per_image_readings() -> None:
    """The split's mean IoU is at most (100 + Dice) / 2; per image, many well-answered images each weigh one and
    the mean can pass it. The gates' weighted figure follows the reading it is asked for."""
    truth = np.zeros((10, 10), np.uint8)
    truth[0:4, 0:5] = 1
    pred = np.zeros_like(truth)
    pred[0:4, 0:3] = 1
    hard = [pred, *[np.zeros_like(truth)] * 3]                  # one defect image, three defect-free answered right
    truths = [truth, *[np.zeros_like(truth)] * 3]
    f = split_figures(hard, truths, [0] * 4, ("a",), probs=[p.astype(float) for p in hard])
    one = figures(confusion(pred, truth))
    assert f["mean_iou_per_image"] == pytest.approx((one["mean_iou"] + 300) / 4)
    assert f["defect_iou_per_image"] == pytest.approx(one["defect_iou"])          # defined on one image only
    assert f["dice_per_image"] == pytest.approx(one["dice"]) and f["dice_soft"] == pytest.approx(f["dice"])
    assert f["mean_iou"] <= (100 + f["dice"]) / 2 < f["mean_iou_per_image"]
    soft = split_figures(hard, truths, [0] * 4, ("a",), probs=[truth * 0.5, *[np.zeros((10, 10))] * 3])
    assert soft["dice_soft"] == pytest.approx(100 * 2 * 10 / (10 + 20))
    answers = pixel_answers(per_image_confusion(hard, truths), "mean_iou_per_image")
    assert answers.figure(np.ones(4)) == pytest.approx(f["mean_iou_per_image"])
    assert answers.figure(np.array([2.0, 0, 0, 1])) == pytest.approx((2 * one["mean_iou"] + 100) / 3)
    # all background: the defect image scores (80 + 0) / 2, the three defect-free ones 100
    assert trivial_figures(truths)["all background"]["mean_iou_per_image"] == pytest.approx((40 + 300) / 4)


def test_components_threshold_area_box_and_score() -> None:
    logits = np.full((1, 1, 20, 40), -6.0, np.float32)
    logits[0, 0, 2:6, 10:20] = 2.0               # 40 px, probability 0.88
    logits[0, 0, 15, 30] = 1.0                   # 1 px: below min_area
    logits[0, 0, 12:14, 2:4] = -0.1              # below the threshold
    (seg,) = postprocess(logits, PostprocessSpec(threshold=0.5, min_area=4))
    assert len(seg.defects) == 1 and seg.mask.sum() == 40 and not seg.mask[15, 30]
    d = seg.defects[0]
    assert d.area == 40 and d.box == (10 / 40, 2 / 20, 20 / 40, 6 / 20)
    assert d.score == pytest.approx(1 / (1 + np.exp(-2.0)), rel=1e-5) and d.scaled(400, 200) == (100, 20, 200, 60)
    (low,) = postprocess(logits, PostprocessSpec(threshold=0.45, min_area=1))
    assert len(low.defects) == 3 and low.mask.sum() == 45


def test_builtin_data_serves_as_mask_data(tiny_data) -> None:
    ds = load_masks(tiny_data)
    assert ds.layout == "builtin" and ds.classes[0] == "crazing" and len(ds.samples) == 60
    classes, cut = read_mask(ds.samples[-1], (200, 200))        # a scratches image: value 6 (class index + 1)
    assert not cut and set(np.unique(classes)) <= {0, 6} and (classes == 6).any()


def test_neu_seg_own_test_split(tmp_path, tiny_seg_recipe) -> None:
    import cv2

    for split, stems in (("training", ("1", "2", "3")), ("test", ("4",))):
        for stem in stems:
            (tmp_path / "images" / split).mkdir(parents=True, exist_ok=True)
            (tmp_path / "annotations" / split).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "images" / split / f"{stem}.jpg"), np.full((32, 32), 40 * int(stem), np.uint8))
            cv2.imwrite(str(tmp_path / "annotations" / split / f"{stem}.png"), np.zeros((32, 32), np.uint8))
    data = load_split(tiny_seg_recipe, tmp_path)
    assert [s.path.stem for s in data.test] == ["4"] and len(data.train) == 3 and "own test split" in data.split


def test_recipe_section_is_checked(tmp_path) -> None:
    from edgekit.errors import EdgekitError
    from edgekit.recipes import load_recipe

    (tmp_path / "bad.yaml").write_text("extends: lsa-net\nname: bad\nsegmentation: {postprocess: {threshold: 1.5}}\n")
    with pytest.raises(EdgekitError, match=r"bad\.yaml: segmentation\.postprocess: threshold in \(0, 1\)"):
        SegmentationSpec.from_recipe(load_recipe(tmp_path / "bad.yaml"))
    (tmp_path / "typo.yaml").write_text("extends: lsa-net\nname: typo\nsegmentation: {los: {}}\n")
    with pytest.raises(EdgekitError, match=r"typo\.yaml: segmentation: .*'los'"):
        SegmentationSpec.from_recipe(load_recipe(tmp_path / "typo.yaml"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_seg_recipe, tiny_data) -> dict:
    root = tmp_path_factory.mktemp("seg")
    res = build(tiny_seg_recipe, load_target("intel-cpu"), root / "run", BuildOptions(data=tiny_data, threads=2))
    return {"dir": root / "run", "res": res}


def test_build_runs_every_stage_and_reports_masks(run) -> None:
    res = run["res"]
    assert [s["stage"] for s in res["stages"]] == ["train", "export", "calibration set", "quantize", "compile",
                                                  "validate"]
    assert res["stages"][0]["result"].startswith("test mean IoU %")
    rows = res["results"]["rows"]
    assert [r["artifact"] for r in rows] == ["fp32-reference", "openvino-fp32", "openvino-fp16", "openvino-int8"]
    for r in rows:
        assert 0.0 <= r["mean_iou"] <= 100.0 and 0.0 <= r["pixel_accuracy"] <= 100.0
        assert set(r["per_group"]) == {"crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale",
                                       "scratches"}
    assert rows[1]["drop_vs_fp32"] == pytest.approx(0.0, abs=1e-6)
    report = (run["dir"] / "validate" / "report.md").read_text()
    assert "## Segmentation figures" in report and "(all background)" in report and "![masks](masks.png)" in report
    assert (run["dir"] / "validate" / "masks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pipeline = (run["dir"] / "compile" / "openvino-int8" / "pipeline.json").read_text()
    assert '"logit_threshold": 0.0' in pipeline and '"min_area": 4' in pipeline


def test_export_is_static_and_parsable_by_tensorrt_8_2(run) -> None:
    model = onnx.load(str(run["dir"] / "export" / "model.onnx"))
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    assert outputs == {"mask": [1, 1, 64, 64]}
    ops = {node.op_type for node in model.graph.node}
    assert ops <= {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "Resize", "Concat", "Add", "Mul",
                   "ReduceMean", "Constant", "Slice"}, ops
    assert not {"Shape", "NonZero", "Loop", "If"} & ops
    # SPPM's crops back to the map's size: Slice with constant starts and ends (folded, no size arithmetic)
    constants = {i.name for i in model.graph.initializer} | {o for n in model.graph.node if n.op_type == "Constant"
                                                            for o in n.output}
    assert all(set(n.input[1:]) <= constants for n in model.graph.node if n.op_type == "Slice")


def test_components_equal_after_every_backend(run, tiny_seg_recipe) -> None:
    """PyTorch eager, ONNX Runtime and OpenVINO FP32 logits through the one host post-processing."""
    spec = SegmentationSpec.from_recipe(tiny_seg_recipe).postprocess
    x = np.random.default_rng(0).normal(0, 1, (3, 1, 64, 64)).astype(np.float32)
    runners = {
        "pytorch": TorchRunner(load_model(tiny_seg_recipe, run["dir"] / "train" / "model.pt"), (1, 1, 64, 64), 2),
        "onnxruntime": get_backend("onnxruntime").load(run["dir"] / "quantize" / "fp32.onnx", 2),
        "openvino": get_backend("openvino").load(run["dir"] / "compile" / "openvino-fp32" / "model.xml", 2),
    }
    # a threshold at the logits' median makes components on any model, however little trained
    spec = PostprocessSpec(threshold=float(1 / (1 + np.exp(-np.median(runners["pytorch"].infer(x[:1])[0])))),
                           min_area=2)
    segs = {name: [postprocess(r.infer(xi[None])[0], spec)[0] for xi in x] for name, r in runners.items()}
    ref = segs["pytorch"]
    assert sum(len(s.defects) for s in ref) > 0
    for name in ("onnxruntime", "openvino"):
        for a, b in zip(ref, segs[name]):
            # pixels within float rounding of the threshold may fall either way: nearly all agree
            assert (a.mask == b.mask).mean() > 0.999, name
            assert abs(len(a.defects) - len(b.defects)) <= 1, name


def test_jetson_orin_kit_has_a_clean_preflight(run, tiny_seg_recipe, tmp_path) -> None:
    import json

    from edgekit.stages.compile import compile_for_target

    done = compile_for_target(tiny_seg_recipe, run["dir"] / "quantize", load_target("jetson-orin"), tmp_path / "j",
                              ["fp32", "fp16", "int8"])
    kit = tmp_path / "j" / "tensorrt-kit"
    assert done[0]["backend"] == "tensorrt" and (kit / "int8.onnx").is_file()
    report = json.loads((kit / "preflight.json").read_text())
    assert report["errors"] == 0, report["findings"]
    ops = next(f for f in report["findings"] if f["check"].startswith("ops on TensorRT"))
    assert ops["level"] == "ok" and "Resize" in ops["detail"] and "ReduceMean" in ops["detail"]
    assert json.loads((kit / "pipeline.json").read_text())["postprocess"]["components"] == "OpenCV, 8-connected"


def test_score_runs_scores_runs_alike_and_finds_no_change_between_equal_models(run, tiny_seg_recipe, tiny_data,
                                                                               tmp_path, monkeypatch) -> None:
    """benchmarks/score_runs.py (the before/after tables): the same model twice changes nothing, image by image."""
    import json
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    monkeypatch.syspath_prepend(str(bench))
    import run_tables
    import score_runs

    monkeypatch.setattr(run_tables, "RESULTS", tmp_path)
    monkeypatch.setattr(sys, "argv", ["score_runs.py", "--recipe", str(tiny_seg_recipe.path), "--data", str(tiny_data),
                                      "--name", "t", f"a={run['dir']}", f"b={run['dir']}"])
    score_runs.main()
    out = json.loads((tmp_path / "t.json").read_text())
    assert out["headline"] == "mean_iou" and out["runs"]["a"] == {**out["runs"]["b"], "model": out["runs"]["a"]["model"]}
    change = out["changes"]["b"]
    assert change["drop"] == 0 and change["better"] == change["worse"] == 0 and change["low"] <= 0 <= change["high"]
    assert "| a |" in (tmp_path / "t.md").read_text()
