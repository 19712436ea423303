"""NEU readers on hand-made folders with the real data's quirks, and their errors."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.data.images import read_grey
from edgekit.data.neu import load_neu
from edgekit.data.splits import stratified_sample, stratified_split
from edgekit.data.voc import read_voc
from edgekit.errors import EdgekitError

VOC = """<annotation><folder>x</folder><filename>{fname}</filename>
<size><width>200</width><height>200</height><depth>1</depth></size>
{objects}</annotation>"""
OBJ = "<object><name>{name}</name><bndbox><xmin>{x0}</xmin><ymin>10</ymin><xmax>{x1}</xmax><ymax>50</ymax></bndbox></object>"


def _img(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = np.full((200, 200, 3), value, np.uint8)  # 3-channel JPEG of grey content, as NEU-DET stores it
    im[value % 150 : value % 150 + 20, :, :] = 255 - value
    cv2.imwrite(str(path), im)


def _voc(path: Path, fname: str, objects: list[tuple[str, int, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(VOC.format(fname=fname, objects="".join(OBJ.format(name=n, x0=a, x1=b) for n, a, b in objects)))


@pytest.fixture()
def neu_det(tmp_path: Path) -> Path:
    root = tmp_path / "NEU-DET"
    for i in range(1, 4):
        for k, cls in enumerate(["crazing", "scratches"]):
            _img(root / "IMAGES" / f"{cls}_{i}.jpg", 40 * i + k)
            _voc(root / "ANNOTATIONS" / f"{cls}_{i}.xml", f"{cls}_{i}", [(cls, 10, 60)])  # no .jpg suffix
    # quirk: a box of another class than the file name says
    _voc(root / "ANNOTATIONS" / "crazing_3.xml", "crazing_3.jpg", [("scratches", 5, 30), ("crazing", 40, 41)])
    # quirk: the same image stored under two names
    (root / "IMAGES" / "scratches_10.jpg").write_bytes((root / "IMAGES" / "scratches_2.jpg").read_bytes())
    _voc(root / "ANNOTATIONS" / "scratches_10.xml", "scratches_10.jpg", [("scratches", 1, 9)])
    return root


def test_neu_det_layout_with_quirks(neu_det: Path) -> None:
    ds = load_neu(neu_det, with_boxes=True)
    names = [s.name for s in ds.samples]
    assert names == ["crazing_1.jpg", "crazing_2.jpg", "crazing_3.jpg", "scratches_1.jpg", "scratches_2.jpg",
                     "scratches_3.jpg"]  # natural order; duplicate scratches_10 kept once
    assert any("duplicate image scratches_10.jpg = scratches_2.jpg" in n for n in ds.notes)
    assert any("1 annotation file(s) hold boxes of another class" in n for n in ds.notes)
    crazing3 = ds.samples[2]
    assert crazing3.label == 0 and [b.label for b in crazing3.boxes] == [5, 0]
    assert ds.counts()["crazing"] == 3 and ds.counts()["scratches"] == 3


def test_neu_cls_short_prefixes_and_class_folders(tmp_path: Path) -> None:
    flat = tmp_path / "NEU-CLS"
    for i, p in enumerate(["Cr_1.bmp", "In_1.bmp", "Pa_2.bmp", "PS_1.bmp", "RS_1.bmp", "Sc_1.bmp"]):
        _img(flat / p, 10 + 30 * i)
    assert load_neu(flat).labels() == [0, 1, 2, 3, 4, 5]
    folders = tmp_path / "own"
    _img(folders / "patches" / "a.png", 7)
    _img(folders / "scratches" / "b.png", 9)
    assert load_neu(folders).labels() == [2, 5]


def test_reader_errors_name_the_file(tmp_path: Path, neu_det: Path) -> None:
    with pytest.raises(EdgekitError, match="dataset folder not found"):
        load_neu(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgekitError, match="no images found"):
        load_neu(tmp_path / "empty")
    _img(tmp_path / "odd" / "rust_1.jpg", 5)
    with pytest.raises(EdgekitError, match=r"rust_1\.jpg: unknown class 'rust'"):
        load_neu(tmp_path / "odd")
    bad = neu_det / "ANNOTATIONS" / "crazing_1.xml"
    bad.write_text("<annotation><object><name>crazing</name>")
    with pytest.raises(EdgekitError, match=r"crazing_1\.xml: malformed XML"):
        load_neu(neu_det)
    _voc(bad, "crazing_1.jpg", [("rust", 1, 5)])
    with pytest.raises(EdgekitError, match=r"crazing_1\.xml: object 1 has unknown class 'rust'"):
        load_neu(neu_det)


def test_corrupt_and_empty_images(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(EdgekitError, match=r"bad\.jpg: corrupt or unsupported image"):
        read_grey(tmp_path / "bad.jpg")
    (tmp_path / "zero.jpg").write_bytes(b"")
    with pytest.raises(EdgekitError, match=r"zero\.jpg: empty image file"):
        read_grey(tmp_path / "zero.jpg")


def test_voc_follows_the_devkit_conventions(tmp_path: Path) -> None:
    """One-pixel boxes (xmax == xmin, inclusive pixels) are kept; difficult flags are read."""
    _voc(tmp_path / "a.xml", "a", [("crazing", 10, 10), ("inclusion", 3, 9)])
    text = (tmp_path / "a.xml").read_text().replace("<bndbox><xmin>3<", "<difficult>1</difficult><bndbox><xmin>3<")
    (tmp_path / "a.xml").write_text(text)
    boxes = read_voc(tmp_path / "a.xml", ("crazing", "inclusion"), (200, 200))
    assert [(b.label, b.xmin, b.xmax, b.difficult) for b in boxes] == [(0, 10.0, 10.0, False), (1, 3.0, 9.0, True)]


@pytest.mark.parametrize("objects, size, problem", [
    ([("crazing", 60, 10)], (200, 200), "box is inverted"),
    ([("crazing", 10, 201)], (200, 200), "lies outside the 200x200 image"),
    ([("crazing", 10, 60)], (50, 200), "lies outside the 50x200 image"),
])
def test_voc_refuses_inverted_and_outside_boxes(tmp_path: Path, objects, size, problem) -> None:
    _voc(tmp_path / "a.xml", "a", objects)
    with pytest.raises(EdgekitError, match=rf"a\.xml: object 1 .*{problem}"):
        read_voc(tmp_path / "a.xml", ("crazing",), size)


def test_images_are_checked_when_indexed(neu_det: Path) -> None:
    jpeg = (neu_det / "IMAGES" / "crazing_2.jpg").read_bytes()
    (neu_det / "IMAGES" / "crazing_2.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    with pytest.raises(EdgekitError, match=r"crazing_2\.jpg: corrupt image \(image file is truncated"):
        load_neu(neu_det)
    (neu_det / "IMAGES" / "crazing_2.jpg").write_bytes(b"GIF? no: plain text")
    with pytest.raises(EdgekitError, match=r"crazing_2\.jpg: not an image"):
        load_neu(neu_det)


def test_orphans_are_reported(neu_det: Path) -> None:
    _voc(neu_det / "ANNOTATIONS" / "patches_9.xml", "patches_9.jpg", [("patches", 1, 9)])
    ds = load_neu(neu_det, with_boxes=True)
    assert any("1 annotation file(s) in ANNOTATIONS/ without an image, ignored: patches_9.xml" in n for n in ds.notes)
    (neu_det / "ANNOTATIONS" / "crazing_1.xml").unlink()
    with pytest.raises(EdgekitError, match=r"crazing_1\.xml: annotation missing for image crazing_1\.jpg"):
        load_neu(neu_det, with_boxes=True)


def test_stratified_split_and_sample_are_seeded_and_balanced() -> None:
    labels = [c for c in range(6) for _ in range(10)]
    train, test = stratified_split(labels, 0.2, seed=0)
    assert len(test) == 12 and sorted(train + test) == list(range(60))
    assert all(sum(labels[i] == c for i in test) == 2 for c in range(6))
    assert stratified_split(labels, 0.2, seed=0) == (train, test)
    assert stratified_split(labels, 0.2, seed=1) != (train, test)
    pick = stratified_sample([labels[i] for i in train], 3, seed=0)
    assert len(pick) == 18
