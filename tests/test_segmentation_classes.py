"""Per-class segmentation: the recipe's class mapping (mask values or the data's groups), the figures
and the post-processing on hand-made class maps, the CE + Dice loss, and a per-class build on the
built-in data through every stage."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import yaml

from edgekit.camera.post.segmentation import PostprocessSpec, postprocess
from edgekit.data.masks import load_masks
from edgekit.errors import EdgekitError
from edgekit.models import create_model
from edgekit.recipes import load_recipe, recipes_dir
from edgekit.stages.build import BuildOptions, build
from edgekit.targets import load_target
from edgekit.tasks.segmentation.data import read_masked
from edgekit.tasks.segmentation.metrics import confusion, figures, split_figures, trivial_figures
from edgekit.tasks.segmentation.spec import SegmentationSpec
from edgekit.tasks.segmentation.train import ce_dice, segmentation_loss

NEU = ["crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches"]


def _recipe(tmp_path, name: str, **sections) -> object:
    """lsa-net with the given sections merged over its own (one level deep)."""
    raw = yaml.safe_load((recipes_dir() / "lsa-net.yaml").read_text())
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path)


def test_class_values_map_mask_values_to_classes(tmp_path) -> None:
    recipe = _recipe(tmp_path, "three", data={"classes": ["inclusion", "patches", "scratches"]},
                     model={"args": {"in_channels": 1, "base": 4, "num_classes": 3}},
                     segmentation={"class_values": {"inclusion": [1], "patches": 2, "scratches": [3, 4]}})
    spec = SegmentationSpec.from_recipe(recipe)
    assert not spec.binary and spec.channels == 4
    values = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    assert spec.target(values, "any").tolist() == [[0, 1, 2], [3, 3, 0]]      # 5 is nobody's: background
    default = SegmentationSpec.from_recipe(_recipe(tmp_path, "default", data={"classes": ["a", "b"]},
                                                   model={"args": {"num_classes": 2}}))
    assert default.target(values, "any").tolist() == [[0, 1, 2], [0, 0, 0]]  # class i <- value i + 1
    binary = SegmentationSpec.from_recipe(_recipe(tmp_path, "binary", segmentation={"defect_values": [2, 3]}))
    assert binary.binary and binary.target(values, "any").tolist() == [[0, 0, 1], [1, 0, 0]]


def test_classes_from_the_data_groups(tmp_path) -> None:
    """Magnetic-Tile's 0/255 masks: the class is the image's folder."""
    for n, (folder, value) in enumerate((("MT_Blowhole", 255), ("MT_Crack", 255), ("MT_Free", 0))):
        imgs = tmp_path / "mt" / folder / "Imgs"
        imgs.mkdir(parents=True)
        cv2.imwrite(str(imgs / "a.jpg"), np.full((20, 30), 90 + 40 * n, np.uint8))
        mask = np.zeros((20, 30), np.uint8)
        mask[5:10, 5:15] = value
        cv2.imwrite(str(imgs / "a.png"), mask)
    recipe = _recipe(tmp_path, "mt", data={"classes": ["Blowhole", "Crack"]},
                     model={"args": {"num_classes": 2}}, segmentation={"class_source": "groups"})
    spec = SegmentationSpec.from_recipe(recipe)
    ds = load_masks(tmp_path / "mt")
    read = read_masked(ds.samples, ds.classes, 16, spec, "test")
    by_group = {ds.classes[g]: m for g, m in zip(read.groups, read.masks)}
    assert set(np.unique(by_group["Blowhole"])) == {0, 1} and set(np.unique(by_group["Crack"])) == {0, 2}
    assert not by_group["Free"].any()
    wrong = SegmentationSpec.from_recipe(_recipe(tmp_path, "wrong", data={"classes": ["Blowhole", "Fray"]},
                                                 model={"args": {"num_classes": 2}},
                                                 segmentation={"class_source": "groups"}))
    with pytest.raises(EdgekitError, match=r"wrong\.yaml: segmentation: data\.classes 'Fray' are not groups"):
        read_masked(ds.samples, ds.classes, 16, wrong, "test")


@pytest.mark.parametrize("sections,message", [
    ({"data": {"classes": ["a", "b"]}}, r"model\.args\.num_classes \(1\) must equal the number of data\.classes \(2\)"),
    ({"data": {"classes": ["a", "b"]}, "model": {"args": {"num_classes": 2}},
      "segmentation": {"class_values": {"a": [1]}}}, r"class_values must map each of data\.classes"),
    ({"data": {"classes": ["a", "b"]}, "model": {"args": {"num_classes": 2}},
      "segmentation": {"class_values": {"a": [1], "b": [1]}}}, r"gives a mask value to two classes"),
    ({"data": {"classes": ["a", "b"]}, "model": {"args": {"num_classes": 2}},
      "segmentation": {"defect_values": [1]}}, r"defect_values is for a binary recipe"),
    ({"segmentation": {"class_source": "groups"}}, r"class_values and class_source are for several data\.classes"),
    ({"data": {"classes": ["a", "b"]}, "model": {"args": {"num_classes": 2}},
      "segmentation": {"class_source": "folders"}}, r"class_source must be one of values, groups"),
])
def test_class_mapping_errors_name_the_recipe(tmp_path, sections, message) -> None:
    with pytest.raises(EdgekitError, match=r"bad\.yaml.*" + message):
        SegmentationSpec.from_recipe(_recipe(tmp_path, "bad", **sections))


def test_per_class_figures_on_hand_made_maps() -> None:
    truth = np.zeros((10, 10), np.uint8)
    truth[0:2, 0:5] = 1                          # 10 px of class 1
    truth[5:7, 0:5] = 2                          # 10 px of class 2
    pred = np.zeros((10, 10), np.uint8)
    pred[0:2, 0:5] = 1                           # class 1 right
    pred[5:7, 0:5] = 1                           # class 2 found as defect, wrong class
    pred[9, 0:5] = 2                             # 5 false alarms of class 2
    m = confusion(pred, truth, 2)
    assert m.tolist() == [[75, 0, 5], [0, 10, 0], [0, 10, 0]]
    f = figures(m, ("a", "b"))
    assert f["pixel_accuracy"] == pytest.approx(85.0)
    assert f["defect_iou"] == pytest.approx(100 * 20 / 25) and f["dice"] == pytest.approx(100 * 40 / 45)
    assert f["per_class"]["a"]["iou"] == pytest.approx(50.0) and f["per_class"]["b"]["iou"] == pytest.approx(0.0)
    assert f["per_class"]["a"]["dice"] == pytest.approx(100 * 20 / 30) and f["per_class"]["b"]["pixels"] == 10
    assert f["mean_iou"] == pytest.approx((100 * 75 / 80 + 50.0 + 0.0) / 3)
    split = split_figures([pred], [truth], [0], ("g",), ("a", "b"))
    assert split["confusion"] == m.tolist() and split["per_class"]["a"]["iou"] == pytest.approx(50.0)
    trivial = trivial_figures([truth], ("a", "b"))
    assert set(trivial) == {"all background", "all a"} and trivial["all a"]["pixel_accuracy"] == pytest.approx(10.0)
    # binary figures are the per-class ones with one class
    assert figures(confusion(pred > 0, truth > 0))["defect_iou"] == pytest.approx(f["defect_iou"])


def test_per_class_components_threshold_on_the_defect_probability() -> None:
    logits = np.zeros((1, 3, 20, 40), np.float32)
    logits[0, 0] = 4.0                           # background everywhere ...
    logits[0, 1, 2:6, 10:20] = 8.0               # ... but a class-1 block (40 px)
    logits[0, 2, 10:14, 25:30] = 8.0             # a class-2 block (20 px)
    logits[0, 1, 10:14, 30:35] = 8.0             # touching it, a class-1 block (20 px): its own component
    logits[0, 1, 17, 2] = logits[0, 2, 17, 2] = 3.8   # neither class alone beats background, together they do
    (seg,) = postprocess(logits, PostprocessSpec(threshold=0.5, min_area=2))
    assert [(d.label, d.area) for d in seg.defects] == [(0, 40), (0, 20), (1, 20)]
    assert seg.classes[3, 12] == 1 and seg.classes[11, 26] == 2 and seg.classes[11, 31] == 1
    assert seg.classes[17, 2] == 0                      # a 1 px component, under min_area
    (low,) = postprocess(logits, PostprocessSpec(threshold=0.5, min_area=1))
    assert low.classes[17, 2] in (1, 2) and len(low.defects) == 4
    expect = np.exp(8.0) / (np.exp(8.0) + np.exp(4.0) + 1.0)
    assert seg.defects[0].score == pytest.approx(expect, rel=1e-5)
    assert seg.defects[0].box == (10 / 40, 2 / 20, 20 / 40, 6 / 20)


def test_ce_dice_is_low_for_the_truth_and_high_for_a_wrong_class() -> None:
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:5, 2:5] = 1
    target[1, 6:8, 0:3] = 2
    right = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 20 - 10
    wrong = right[:, [0, 2, 1]]
    assert ce_dice(right, target, 0.5).item() < 0.01 < 1.0 < ce_dice(wrong, target, 0.5).item()
    model = create_model("lsa_net", in_channels=1, base=4, num_classes=3).train()
    out = model(torch.randn(2, 1, 32, 32))
    assert out[0].shape == (2, 4, 32, 32)
    loss, parts = segmentation_loss(out, torch.zeros(2, 1, 32, 32, dtype=torch.long), torch.zeros(2, 1, 32, 32),
                                    SegmentationSpec().loss)
    loss.backward()
    assert set(parts) == {"seg", "loc", "diff"}


@pytest.fixture(scope="module")
def per_class_run(tmp_path_factory, tiny_data) -> dict:
    """unet on the built-in data's six classes (mask value = class index + 1), CI-sized."""
    raw = yaml.safe_load((recipes_dir() / "unet.yaml").read_text())
    root = tmp_path_factory.mktemp("per-class")
    raw.update(name="tiny-unet-classes", data={"classes": NEU}, model={"args": {"base": 4, "num_classes": 6}},
               preprocess={"size": 64}, train={"epochs": 1, "batch_size": 8, "warmup_epochs": 0},
               quantize={"precisions": ["fp32", "int8"], "calibration": {"per_class": 2}},
               validate={"samples": 3, "max_drop": {"fp32": 0.01, "int8": 100.0}})
    (root / "recipe.yaml").write_text(yaml.safe_dump(raw))
    recipe = load_recipe(root / "recipe.yaml")
    res = build(recipe, load_target("intel-cpu"), root / "run", BuildOptions(data=tiny_data, threads=2))
    return {"dir": root / "run", "res": res}


def test_per_class_build_reports_each_class(per_class_run) -> None:
    rows = per_class_run["res"]["results"]["rows"]
    assert [r["artifact"] for r in rows] == ["fp32-reference", "openvino-fp32", "openvino-int8"]
    for r in rows:
        assert set(r["per_class"]) == set(NEU) and len(r["confusion"]) == 7
        assert 0.0 <= r["mean_iou"] <= 100.0
    report = (per_class_run["dir"] / "validate" / "report.md").read_text()
    assert "## IoU % per class" in report and "Colours in the pictures: crazing red" in report
    pipeline = (per_class_run["dir"] / "compile" / "openvino-int8" / "pipeline.json").read_text()
    assert '"output": "mask logits (N, 7, H, W): background, crazing' in pipeline
