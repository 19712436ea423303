"""Which images are the test split: the user's folder, a split file, the data's own split
(NEU-DET's Validation_* folders, VOC ImageSets), the recipe's seeded split, or all of them."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.data import synth
from edgekit.data.recipe_data import DataSource, load_split
from edgekit.errors import EdgekitError
from edgekit.stages.build import BuildOptions, build
from edgekit.targets import load_target


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("splits")
    train = synth.generate(base / "train", per_class=3, seed=11, size=64, progress=False)
    test = synth.generate(base / "test", per_class=2, seed=12, size=64, progress=False)
    # NEU-DET's public layout: IMAGES/ + ANNOTATIONS/ beside Validation_Images/ + Validation_Annotations/
    neu = base / "NEU-DET"
    shutil.copytree(train / "IMAGES", neu / "IMAGES")
    shutil.copytree(train / "ANNOTATIONS", neu / "ANNOTATIONS")
    shutil.copytree(test / "IMAGES", neu / "Validation_Images")
    shutil.copytree(test / "ANNOTATIONS", neu / "Validation_Annotations")
    # a VOC tree: numbered images, the class only in the boxes, ImageSets/Main/test.txt
    voc = base / "VOC"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "Annotations").mkdir()
    for n, img in enumerate(sorted((train / "IMAGES").iterdir()), 1):
        shutil.copy(img, voc / "JPEGImages" / f"{n:06d}{img.suffix}")
        shutil.copy(train / "ANNOTATIONS" / f"{img.stem}.xml", voc / "Annotations" / f"{n:06d}.xml")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets" / "Main" / "test.txt").write_text("000001\n000004\n000007\n")
    return {"train": train, "test": test, "neu": neu, "voc": voc, "base": base}


def test_recipe_split_by_default(tiny_det_recipe, folders) -> None:
    s = load_split(tiny_det_recipe, folders["train"])
    assert len(s.train) + len(s.test) == 18 and s.split.startswith("recipe split: 20% of each class held out")


def test_test_folder(tiny_det_recipe, folders) -> None:
    s = load_split(tiny_det_recipe, DataSource(folders["train"], test_root=folders["test"]))
    assert (len(s.train), len(s.test)) == (18, 12) and s.split == f"test folder {folders['test']}"
    assert s.describe()["test_root"] == str(folders["test"])
    # a test image that also sits in the training folder leaves training
    both = folders["base"] / "overlap"
    if not both.exists():
        shutil.copytree(folders["train"], both)
        shutil.copy(folders["test"] / "IMAGES" / "crazing_1.png", both / "IMAGES" / "crazing_99.png")
        shutil.copy(folders["test"] / "ANNOTATIONS" / "crazing_1.xml", both / "ANNOTATIONS" / "crazing_99.xml")
    s = load_split(tiny_det_recipe, DataSource(both, test_root=folders["test"]))
    assert len(s.train) == 18 and any("1 training image(s) are byte-identical to test images" in n
                                      for n in s.dataset.notes)


def test_split_file(tiny_recipe, folders, tmp_path) -> None:
    listing = tmp_path / "test.txt"
    listing.write_text("# frozen test images\ncrazing_1\ninclusion_2.png\n\nscratches_3\n")
    s = load_split(tiny_recipe, DataSource(folders["train"], split_file=listing))
    assert sorted(x.name for x in s.test) == ["crazing_1.png", "inclusion_2.png", "scratches_3.png"]
    assert len(s.train) == 15
    listing.write_text("crazing_1\nrust_7\n")
    with pytest.raises(EdgekitError, match=r"test\.txt: entry 2 'rust_7' names no image of the data set"):
        load_split(tiny_recipe, DataSource(folders["train"], split_file=listing))


def test_a_split_file_does_not_leak_through_flipped_copies(tiny_recipe, folders, tmp_path) -> None:
    """A frozen test list keeps what the recipe's own split keeps: a flipped copy of a test image leaves training."""
    import cv2
    from dataclasses import replace

    data = tmp_path / "data"
    shutil.copytree(folders["train"], data)
    image = cv2.imread(str(data / "IMAGES" / "crazing_1.png"), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(data / "IMAGES" / "crazing_99.png"), image[::-1, ::-1])
    shutil.copy(data / "ANNOTATIONS" / "crazing_1.xml", data / "ANNOTATIONS" / "crazing_99.xml")
    listing = tmp_path / "test.txt"
    listing.write_text("crazing_1\n")
    plain = load_split(tiny_recipe, DataSource(data, split_file=listing))
    assert "crazing_99.png" in {x.name for x in plain.train}                # without near_duplicates: kept
    recipe = replace(tiny_recipe, data={**tiny_recipe.data, "split": {"near_duplicates": True}})
    guarded = load_split(recipe, DataSource(data, split_file=listing))
    assert {x.name for x in plain.train} - {x.name for x in guarded.train} == {"crazing_99.png"}
    assert "1 training image(s) that are flipped or repeated copies of test images left out" in guarded.describe()["split"]


def test_neu_det_validation_folders(tiny_det_recipe, folders) -> None:
    s = load_split(tiny_det_recipe, folders["neu"])
    assert (len(s.train), len(s.test)) == (18, 12) and "Validation_Images" in s.split
    assert all("Validation_Images" in str(x.path) and x.boxes for x in s.test)


def test_voc_imagesets(tiny_det_recipe, folders) -> None:
    s = load_split(tiny_det_recipe, folders["voc"])
    assert [x.path.stem for x in s.test] == ["000001", "000004", "000007"] and len(s.train) == 15
    assert s.split == "the data's own ImageSets/Main/test.txt"
    assert [x.label for x in s.test] == [x.boxes[0].label for x in s.test]   # class from the boxes


def test_split_all(tiny_recipe, folders) -> None:
    s = load_split(tiny_recipe, DataSource(folders["train"], split="all"))
    assert len(s.test) == 18 and not s.train


def test_builds_on_a_test_folder_and_on_validation_folders(tiny_recipe, tiny_stages, folders, tmp_path) -> None:
    onnx = tiny_stages["root"] / "export" / "model.onnx"
    cpu = load_target("intel-cpu")
    planned = []
    res = build(tiny_recipe, cpu, tmp_path / "a", BuildOptions(data=folders["train"], test_data=folders["test"],
                                                              onnx=onnx, threads=2), on_plan=planned.extend)
    assert [p["stage"] for p in planned] == ["calibration set", "quantize", "compile", "validate"]
    d = res["results"]["data"]
    assert d["test"] == 12 and d["split"] == f"test folder {folders['test']}" and d["train"] == 18
    report = (tmp_path / "a" / "validate" / "report.md").read_text()
    assert f"Test split: 12 images, chosen by test folder {folders['test']}" in report
    build_json = json.loads((tmp_path / "a" / "build.json").read_text())
    assert build_json["data"]["test_data"] == str(folders["test"]) and Path(build_json["run_dir"]).is_absolute()
    res = build(tiny_recipe, cpu, tmp_path / "b", BuildOptions(data=folders["neu"], onnx=onnx, threads=2))
    d = res["results"]["data"]
    assert d["test"] == 12 and "Validation_Images" in d["split"]
    # a new batch from the line, scored whole, from another directory than the build's
    proc = subprocess.run([sys.executable, "-m", "edgekit", "validate", str(tiny_recipe.path), str(tmp_path / "a"),
                           "--data", str(folders["test"]), "--split", "all", "--threads", "2"],
                          capture_output=True, text=True, cwd=folders["base"], env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode in (0, 1), proc.stderr      # 1: a gate failed, which a one-epoch model may
    d = json.loads((tmp_path / "a" / "validate" / "results.json").read_text())["data"]
    assert d["test"] == 12 and d["split"] == "all 12 images of the folder"


def test_grouped_split_keeps_copies_together_and_equals_the_plain_split_without_copies() -> None:
    from edgekit.data.splits import grouped_split, stratified_split

    labels = [0] * 10 + [1] * 7
    assert grouped_split(labels, list(range(17)), 0.3, 4) == stratified_split(labels, 0.3, 4)
    clusters = [i // 2 for i in range(17)]          # pairs of copies: (0, 1), (2, 3), ...
    train, test = grouped_split(labels, clusters, 0.3, 4)
    assert sorted(train + test) == list(range(17))
    assert all((i in test) == (j in test) for i in range(17) for j in range(17) if clusters[i] == clusters[j])


def test_flipped_copies_are_found(tmp_path) -> None:
    import cv2
    import numpy as np

    from edgekit.data.near_duplicates import clusters

    rng = np.random.default_rng(0)
    pictures = [cv2.GaussianBlur(rng.integers(0, 255, (48, 64)).astype(np.uint8), (0, 0), 3) for _ in range(3)]
    files = {"a": pictures[0], "a_rot": pictures[0][::-1, ::-1], "b": pictures[1], "b_h": pictures[1][:, ::-1],
             "c": pictures[2]}
    paths = []
    for name, im in files.items():
        cv2.imwrite(str(tmp_path / f"{name}.jpg"), im, [cv2.IMWRITE_JPEG_QUALITY, 80])   # re-encoded: not byte-equal
        paths.append(tmp_path / f"{name}.jpg")
    found = clusters(paths)
    assert found[0] == found[1] and found[2] == found[3] and len(set(found)) == 3


def test_split_id_names_the_test_images_not_the_machine(tiny_recipe, tiny_data):
    from dataclasses import replace

    from edgekit.data.recipe_data import load_split

    a, b = load_split(tiny_recipe, tiny_data), load_split(tiny_recipe, tiny_data)
    assert a.split_id == b.split_id == a.describe()["split_id"] and len(a.split_id) == 12
    other = replace(tiny_recipe, data={**tiny_recipe.data, "split": {"test_fraction": 0.2, "seed": 7}})
    assert load_split(other, tiny_data).split_id != a.split_id
