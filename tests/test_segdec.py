"""segdec-net: the network of seeds/001 Table 2, the loss and its theta schedule, which images carry a
pixel loss in each supervision mode, what the reference code adds (its gradient stop, by mode, balanced
epochs by frequency sampling, label dilation, the edge-weighted pixel loss), the decision figures on
hand-made scores, the built-in data's defect-free images, and a tiny build through every stage (with a
Jetson kit's preflight)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from edgekit.camera.post.segdec import postprocess
from edgekit.camera.post.segmentation import PostprocessSpec
from edgekit.errors import EdgekitError
from edgekit.models import create_model
from edgekit.recipes import load_recipe, recipes_dir
from edgekit.targets import load_target
from edgekit.tasks.segdec.metrics import decision_figures
from edgekit.tasks.segdec.spec import DecisionSpec
from edgekit.tasks.segdec.train import balanced_epoch, edge_weights, pixel_labelled, segdec_loss
from edgekit.tasks.segmentation.data import area_resize


def test_both_subnets_and_the_66_decision_features() -> None:
    model = create_model("segdec_net", in_channels=1, width=1.0)
    convs = [m for m in model.features.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert len(convs) == 10 and model.seg_head.kernel_size == (1, 1)                     # + the 1x1: 11
    assert [c.dilation for c in convs] == [(2, 2)] * 9 + [(7, 7)] and convs[-1].out_channels == 1024
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model.features) == 3
    assert sum(type(m).__name__ == "SE" for m in model.features.modules()) == 8           # after the 3rd to 10th
    assert model.decision[1][0].in_channels == 1025 and model.fc.in_features == 66
    seen = {}
    model.fc.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))     # None: the output stays
    model.eval()
    with torch.no_grad():
        seg, dec = model(torch.randn(2, 1, 128, 128))
    assert seg.shape == (2, 1, 16, 16) and dec.shape == (2, 1) and seen["x"].shape == (2, 66)
    assert torch.allclose(seen["x"][:, 64], seg.amax((1, 2, 3))) and torch.allclose(seen["x"][:, 65], seg.mean((1, 2, 3)))
    original = create_model("segdec_net", dilated=False, se=False)
    assert [m.kernel_size for m in original.features.modules() if isinstance(m, torch.nn.Conv2d)][-2:] == [(5, 5), (15, 15)]


def test_the_decision_gradient_reaches_the_segmentation_subnet_only_when_asked() -> None:
    x = torch.randn(2, 1, 64, 64)
    for scale, reaches in ((1.0, True), (0.0, False)):
        torch.manual_seed(0)
        model = create_model("segdec_net", width=0.25, decision_gradient=scale).train()
        model(x)[1].sum().backward()
        assert (model.features[0][0].weight.grad.abs().sum() > 0) == reaches


def _recipe(tmp_path: Path, **decision) -> object:
    raw = yaml.safe_load((recipes_dir() / "segdec-net.yaml").read_text())
    raw["decision"].update(decision)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    return load_recipe(tmp_path / "r.yaml")


def test_theta_falls_by_the_schedule(tmp_path) -> None:
    decay = DecisionSpec.from_recipe(_recipe(tmp_path, beta=0.02))
    assert decay.theta(0, 40) == 1.0 and decay.theta(10, 40) == pytest.approx(0.98 ** 10)
    linear = DecisionSpec.from_recipe(_recipe(tmp_path, schedule="linear"))
    assert [linear.theta(n, 4) for n in range(4)] == [1.0, 0.75, 0.5, 0.25]


def test_the_decision_gradient_by_mode_or_recipe(tmp_path) -> None:
    """Unset, stopped in full supervision and end to end in mixed and weak (as measured on Magnetic-Tile); a
    recipe's ``decision_gradient`` overrides. The task sets it on the model before training, whatever the model
    was built with; stopped, the decision loss never reaches the segmentation subnet."""
    from edgekit.tasks.segdec.train import SegDecTraining

    x = torch.randn(2, 1, 64, 64)
    recipe = load_recipe(recipes_dir() / "segdec-net.yaml")
    for mode, gradient, reaches in (("weak", None, True), ("mixed", None, True), ("full", None, False),
                                    ("full", 1.0, True), ("mixed", 0.0, False)):
        extra = {"pixel_labels": 3} if mode == "mixed" else {}
        if gradient is not None:
            extra["decision_gradient"] = gradient
        spec = DecisionSpec.from_recipe(_recipe(tmp_path, supervision=mode, **extra))
        torch.manual_seed(0)
        model = create_model("segdec_net", width=0.25, decision_gradient=0.5).train()
        task = SegDecTraining.__new__(SegDecTraining)             # prepare() reads only the spec and settings
        task.spec = spec
        task.prepare(model, {"epochs": 5})
        model(x)[1].sum().backward()
        assert (model.features[0][0].weight.grad.abs().sum() > 0) == reaches, (mode, gradient)
        assert model.decision[1][0].weight.grad.abs().sum() > 0                   # the decision subnet learns
    assert "decision_gradient" not in recipe.model["args"]
    with pytest.raises(EdgekitError, match="decision_gradient in"):
        DecisionSpec.from_recipe(_recipe(tmp_path, decision_gradient=2))


def test_theta_runs_over_the_epochs_trained(tmp_path) -> None:
    """theta follows the epochs the run trains (--epochs, the gpu: profile), not the recipe's train.epochs."""
    from edgekit.tasks.segdec.train import SegDecTraining

    task = SegDecTraining.__new__(SegDecTraining)
    task.spec = DecisionSpec.from_recipe(_recipe(tmp_path, schedule="linear"))
    task.prepare(create_model("segdec_net", width=0.25), {"epochs": 90})
    assert task.spec.theta(89, task.epochs) == pytest.approx(1 / 90)            # never negative at 90 of 30


def test_balanced_epochs_by_frequency_sampling() -> None:
    labels = [True] * 5 + [False] * 16
    epochs = [balanced_epoch(labels, 0, e) for e in range(5)]
    for chosen in epochs:
        assert sorted(chosen[:5]) == [0, 1, 2, 3, 4] and len(chosen) == 10 and len(set(chosen)) == 10
        assert all(i >= 5 for i in chosen[5:])
    negatives = [set(c[5:].tolist()) for c in epochs]
    assert set().union(*negatives[:3]) | negatives[3] == set(range(5, 21))   # all 16 seen within 4 epochs ...
    assert not negatives[0] & negatives[1] and not negatives[0] & negatives[2] and not negatives[1] & negatives[2]
    assert (balanced_epoch(labels, 0, 3) == epochs[3]).all()                 # ... and the same after a resume
    assert sorted(balanced_epoch([True] * 6 + [False] * 2, 0, 0)) == list(range(8))   # fewer negatives: all of them


def test_label_dilation_and_the_edge_weighted_pixel_loss() -> None:
    mask = np.zeros((64, 64), np.uint8)
    mask[30, 10:50] = 1                                                   # a crack one pixel wide
    assert area_resize(mask, 64, dilate=7)[27:34, 10:50].all() and area_resize(mask, 64, 7).sum() == 7 * 46
    blob = np.zeros((32, 32), np.uint8)
    blob[8:24, 8:24] = 1
    w = edge_weights(blob, 2.0, 1.0)
    assert (w[blob == 0] == 1).all() and w[15, 15] == pytest.approx(1.0) and w[8, 8] < 0.05
    assert (edge_weights(blob, None, 1.0) == 1).all() and (edge_weights(blob * 0, 2.0, 1.0) == 1).all()
    spec = DecisionSpec.from_recipe(load_recipe(recipes_dir() / "segdec-net.yaml"))
    seg, dec = torch.full((1, 1, 4, 4), -3.0), torch.zeros(1, 1)
    target = torch.from_numpy(blob.astype(np.float32))[None, None]
    gamma, label = torch.tensor([True]), torch.tensor([1])
    plain, _ = segdec_loss((seg, dec), target, label, gamma, 1.0, spec)
    weighted, _ = segdec_loss((seg, dec), target, label, gamma, 1.0, spec, torch.from_numpy(w)[None, None])
    assert weighted < plain                                     # a defect's uncertain border counts less


def test_which_images_carry_a_pixel_loss_in_each_mode(tmp_path) -> None:
    labels = [True] * 10 + [False] * 6
    weak = pixel_labelled(labels, DecisionSpec.from_recipe(_recipe(tmp_path, supervision="weak")), 0)
    assert weak.tolist() == [False] * 10 + [True] * 6
    full = pixel_labelled(labels, DecisionSpec.from_recipe(_recipe(tmp_path, supervision="full")), 0)
    assert full.all()
    recipe = load_recipe(recipes_dir() / "segdec-net.yaml").with_pixel_labels(3)
    mixed = DecisionSpec.from_recipe(recipe)
    a, b, c = (pixel_labelled(labels, mixed, seed) for seed in (0, 0, 1))
    assert a[:10].sum() == 3 and a[10:].all() and (a == b).all() and not (a == c).all()
    half = DecisionSpec.from_recipe(load_recipe(recipes_dir() / "segdec-net.yaml").with_pixel_labels(0.25))
    assert pixel_labelled(labels, half, 0)[:10].sum() == 3                    # ceil(0.25 x 10)
    for bad, why in (({"supervision": "mixed"}, "pixel_labels"), ({"pixel_labels": 4}, "pixel_labels"),
                     ({"supervision": "mixed", "pixel_labels": 2.5}, "whole count"), ({"schedule": "cosine"}, "schedule")):
        with pytest.raises(EdgekitError, match=f"r.yaml: decision: .*{why}"):
            DecisionSpec.from_recipe(_recipe(tmp_path, **bad))


def test_an_unlabelled_positive_has_no_pixel_loss(tmp_path) -> None:
    spec = DecisionSpec.from_recipe(_recipe(tmp_path))
    seg, dec = torch.full((2, 1, 8, 8), -3.0), torch.zeros(2, 1)          # the map says "no defect"
    mask = torch.zeros(2, 1, 64, 64)
    label, gamma = torch.tensor([1, 0]), torch.tensor([False, True])
    base, _ = segdec_loss((seg, dec), mask, label, gamma, 0.7, spec)
    mask[0, 0, :20, :20] = 1.0                            # the unlabelled positive's mask changes nothing
    assert segdec_loss((seg, dec), mask, label, gamma, 0.7, spec)[0] == base
    mask[1, 0, :20, :20] = 1.0                            # the labelled image's does
    assert segdec_loss((seg, dec), mask, label, gamma, 0.7, spec)[0] > base
    only_dec, parts = segdec_loss((seg, dec), mask, label, gamma, 0.0, spec)
    assert only_dec.item() == pytest.approx(0.1 * np.log(2), rel=1e-5) and parts["theta"] == 0.0


def test_decision_figures_on_hand_made_scores() -> None:
    f = decision_figures(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), 0.5)
    assert f["auc"] == pytest.approx(75.0) and f["ap"] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))
    assert f["f_at_threshold"] == pytest.approx(200 / 3) and (f["fp"], f["fn"]) == (0, 1)
    assert f["f_best"] == pytest.approx(80.0) and f["best_threshold"] == pytest.approx(0.35)
    assert decision_figures(np.array([1, 1]), np.array([0.2, 0.9]), 0.5)["ap"] is None     # one class: undefined


def test_postprocess_decides_and_finds_the_components() -> None:
    logits = np.full((2, 1, 8, 8), -5.0, np.float32)
    logits[0, 0, 2:4, 5:8] = 5.0
    out = postprocess(logits, np.array([[2.0], [-2.0]], np.float32), 0.5, PostprocessSpec(min_area=1))
    assert out[0].defective and not out[1].defective and out[0].score == pytest.approx(1 / (1 + np.exp(-2)))
    assert [d.box for d in out[0].segmentation.defects] == [(5 / 8, 2 / 8, 1.0, 4 / 8)]
    assert not out[1].segmentation.defects


def test_builtin_data_with_defect_free_images(tmp_path) -> None:
    from edgekit.data import synth
    from edgekit.data.masks import load_masks

    root = synth.generate(tmp_path / "d", per_class=2, seed=1, size=64, progress=False, free=3)
    data = load_masks(root)
    assert "free" in data.classes and sum(data.classes[s.label] == "free" for s in data.samples) == 3
    assert json.loads((root / "synth.json").read_text())["defect_free"] == 3
    assert all(not np.asarray(__import__("cv2").imread(str(p), 0)).any() for p in (root / "MASKS").glob("free_*.png"))
    from types import SimpleNamespace

    from edgekit.tasks import get_task

    recipe = load_recipe(recipes_dir() / "segdec-net.yaml")
    strata = get_task(recipe).calibration_strata(recipe, SimpleNamespace(train=data.samples, dataset=data))
    free = data.classes.index("free")
    assert [st for st, s in zip(strata, data.samples) if s.label == free] == [2 * free] * 3    # defect-free
    assert all(st == 2 * s.label + 1 for st, s in zip(strata, data.samples) if s.label != free)


@pytest.fixture(scope="module")
def tiny_segdec(tmp_path_factory) -> Path:
    raw = yaml.safe_load((recipes_dir() / "segdec-net.yaml").read_text())
    raw["preprocess"]["size"] = 64
    raw["model"]["args"]["width"] = 0.25
    raw["train"].update(batch_size=8, epochs=2, warmup_epochs=0)
    raw["quantize"]["calibration"]["per_class"] = 2
    raw["data"]["builtin"] = {"per_class": 4, "free": 24, "seed": 0}
    raw["validate"].update(samples=4, max_drop={"fp32": 0.01, "fp16": 100.0, "int8": 100.0})
    path = tmp_path_factory.mktemp("recipe") / "tiny-segdec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_tiny_build_through_every_stage_and_a_jetson_kit(tiny_segdec, tmp_path) -> None:
    from edgekit.stages.build import BuildOptions, build
    from edgekit.stages.compile import compile_for_target

    recipe = load_recipe(tiny_segdec).with_pixel_labels(2)
    res = build(recipe, load_target("intel-cpu"), tmp_path / "run", BuildOptions(threads=2, epochs=3))
    rows = res["results"]["rows"]
    assert [r["artifact"] for r in rows] == ["fp32-reference", "openvino-fp32", "openvino-fp16", "openvino-int8"]
    assert all(0 <= r["ap"] <= 100 and r["images"] == rows[0]["images"] for r in rows)
    trained = json.loads((tmp_path / "run" / "train" / "manifest.json").read_text())
    sup = trained["results"]["supervision"]
    assert sup["mode"] == "mixed" and sup["pixel_labelled_positives"] == 2 and len(sup["pixel_labelled_indices"]) == 2
    assert sup["decision_gradient"] == 1.0 and sup["theta_last"] == pytest.approx(0.99 ** 2)   # mixed; 3 epochs
    assert sup["epoch_images"] == sup["positives"] + min(sup["positives"], sup["negatives"])
    pipeline = json.loads((tmp_path / "run" / "compile" / "openvino-int8" / "pipeline.json").read_text())
    assert pipeline["outputs"] == ["mask", "decision"] and "defective_if" in pipeline["postprocess"]["decision"]
    report = (tmp_path / "run" / "validate" / "report.md").read_text()
    assert "## Decision and segmentation figures" in report and "F at threshold %" in report
    from edgekit.backends import get_backend
    from edgekit.camera.model import LineModel

    folder = tmp_path / "run" / "compile" / "openvino-int8"
    line = LineModel.for_runner(folder, get_backend("openvino").load(folder / "model.xml", 1))
    answer = line.record(line(np.full((64, 64), 128, np.uint8)), 0.5)
    assert set(answer) == {"defective", "score", "defect_fraction", "defects"} and 0 <= answer["score"] <= 1
    kit = compile_for_target(recipe, tmp_path / "run" / "quantize", load_target("jetson-orin"), tmp_path / "j",
                             ["fp32", "fp16", "int8"])
    assert kit[0]["preflight"]["errors"] == 0
