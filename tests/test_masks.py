"""Mask readers on small hand-made folders in each public layout, and Severstal's run-length code."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.data.masks import load_masks, read_mask, rle_decode, rle_encode
from edgekit.errors import EdgekitError


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _image(h: int = 40, w: int = 60, value: int = 100) -> np.ndarray:
    im = np.full((h, w), value, np.uint8)
    im[5:15, 10:30] = 200
    return im


def test_rle_decodes_as_the_competition_defines_it() -> None:
    """Severstal's own example: '1 3 10 5' is pixels 1, 2, 3, 10..14, numbered top to bottom, then left to right."""
    mask = rle_decode("1 3 10 5", 4, 4)
    expected = np.zeros((4, 4), bool)
    expected[0:3, 0] = True                          # pixels 1-3: column 1, rows 1-3
    expected[1:4, 2] = True                          # pixels 10-12: column 3, rows 2-4
    expected[0:2, 3] = True                          # pixels 13-14: column 4, rows 1-2
    assert np.array_equal(mask, expected)
    assert rle_encode(mask) == "1 3 10 5"


def test_rle_round_trip_and_errors() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((256, 160)) > 0.7
    assert np.array_equal(rle_decode(rle_encode(mask), 256, 160), mask)
    assert rle_encode(np.zeros((3, 3), bool)) == ""
    with pytest.raises(EdgekitError, match="odd number"):
        rle_decode("1 2 3", 4, 4)
    with pytest.raises(EdgekitError, match="outside a 4x4 image"):
        rle_decode("15 5", 4, 4)


def test_neu_seg_layout(tmp_path: Path) -> None:
    for stem, cls in (("000001", 1), ("000002", 3)):
        _write(tmp_path / "images" / "training" / f"{stem}.jpg", _image(200, 200, 50 * cls))
        m = np.zeros((200, 200), np.uint8)
        m[20:40, 20:60] = cls
        _write(tmp_path / "annotations" / "training" / f"{stem}.png", m)
    ds = load_masks(tmp_path)
    assert ds.layout == "neu-seg" and ds.mask_classes == 3 and [ds.classes[s.label] for s in ds.samples] == ["class 1", "class 3"]
    mask, cut = read_mask(ds.samples[1], (200, 200))
    assert set(np.unique(mask)) == {0, 3} and not cut


def test_magnetic_tile_layout_cuts_grey_levels_and_knows_free_tiles(tmp_path: Path) -> None:
    _write(tmp_path / "MT_Crack" / "Imgs" / "exp1_num_1.jpg", _image(37, 52))
    soft = np.zeros((37, 52), np.uint8)
    soft[10:20, 10:20] = 255
    soft[10:20, 20] = 140                            # an anti-aliased edge
    soft[10:20, 21] = 60
    _write(tmp_path / "MT_Crack" / "Imgs" / "exp1_num_1.png", soft)
    _write(tmp_path / "MT_Free" / "Imgs" / "exp0_num_5.jpg", _image(30, 30, 90))
    _write(tmp_path / "MT_Free" / "Imgs" / "exp0_num_5.png", np.zeros((30, 30), np.uint8))
    ds = load_masks(tmp_path)
    assert ds.layout == "magnetic-tile" and [ds.classes[s.label] for s in ds.samples] == ["Crack", "Free"]
    mask, cut = read_mask(ds.samples[0], (37, 52))
    assert cut and mask.sum() == 10 * 11 and set(np.unique(mask)) == {0, 1}
    assert read_mask(ds.samples[1], (30, 30))[0].sum() == 0


def test_kolektor_layout_and_size_policy(tmp_path: Path) -> None:
    _write(tmp_path / "kos01" / "Part0.jpg", _image(50, 20))
    _write(tmp_path / "kos01" / "Part0_label.bmp", np.zeros((25, 10), np.uint8))
    _write(tmp_path / "kos01" / "Part1.jpg", _image(50, 20, 120))
    ds = load_masks(tmp_path)
    assert ds.layout == "kolektor" and [s.mask is None for s in ds.samples] == [False, True]
    with pytest.raises(EdgekitError, match=r"Part0_label\.bmp: mask is 10x25, its image 20x50"):
        read_mask(ds.samples[0], (50, 20))
    assert read_mask(ds.samples[0], (50, 20), on_size="resize")[0].shape == (50, 20)
    assert read_mask(ds.samples[1], (50, 20))[0].sum() == 0       # no mask: defect-free
    with pytest.raises(EdgekitError, match=r"Part1\.jpg: no mask for this image"):
        read_mask(ds.samples[1], (50, 20), on_missing="error")
    assert any("1 image(s) without a mask file" in n for n in ds.notes)


@pytest.mark.parametrize("form", ["old", "new"])
def test_severstal_both_csv_forms(tmp_path: Path, form: str) -> None:
    for value, name in enumerate(("a.jpg", "b.jpg")):
        _write(tmp_path / "train_images" / name, _image(8, 16, 60 + 60 * value))
    truth = np.zeros((8, 16), bool)
    truth[2:5, 3:9] = True
    code = rle_encode(truth)
    if form == "old":
        rows = ["ImageId_ClassId,EncodedPixels", f"a.jpg_3,{code}", "a.jpg_1,", "b.jpg_1,"]
    else:
        rows = ["ImageId,ClassId,EncodedPixels", f"a.jpg,3,{code}"]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    ds = load_masks(tmp_path)
    assert ds.layout == "severstal" and [ds.classes[s.label] for s in ds.samples] == ["defect", "free"]
    mask, _ = read_mask(ds.samples[0], (8, 16))
    assert np.array_equal(mask == 3, truth) and set(np.unique(mask)) == {0, 3}
    (tmp_path / "train.csv").write_text("Image,Pixels\na.jpg,1 2\n")
    with pytest.raises(EdgekitError, match=r"train\.csv: header Image,Pixels is neither Severstal form"):
        load_masks(tmp_path)


def test_images_masks_layout_and_broken_files(tmp_path: Path) -> None:
    _write(tmp_path / "images" / "a.png", _image())
    _write(tmp_path / "masks" / "a.png", (_image() > 150).astype(np.uint8) * 255)
    ds = load_masks(tmp_path)
    assert ds.layout == "images-masks" and read_mask(ds.samples[0], (40, 60))[0].sum() == 200
    (tmp_path / "images" / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(EdgekitError, match=r"b\.png: corrupt image"):
        load_masks(tmp_path)
    with pytest.raises(EdgekitError, match="no mask data layout found"):
        load_masks(tmp_path / "images")


def test_groups_of_the_data_are_selected(tmp_path: Path) -> None:
    from edgekit.data.masks import select_groups

    for cls in ("Crack", "Free"):
        _write(tmp_path / f"MT_{cls}" / "Imgs" / f"{cls}_1.jpg", _image(20, 20, 40 if cls == "Free" else 90))
        _write(tmp_path / f"MT_{cls}" / "Imgs" / f"{cls}_1.png", np.zeros((20, 20), np.uint8))
    ds = select_groups(load_masks(tmp_path), ["Crack"], "mine.yaml")
    assert ds.classes == ("Crack",) and [s.label for s in ds.samples] == [0] and ds.layout == "magnetic-tile"
    with pytest.raises(EdgekitError, match=r"mine\.yaml: data\.groups names 'Blowhole', not a group of .*"
                                           r"\(groups: Crack, Free\)"):
        select_groups(load_masks(tmp_path), ["Blowhole"], "mine.yaml")
