"""The built-in synthetic NEU-like dataset: determinism, layout, atomic writes, difficulty."""
from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgekit.data import synth
from edgekit.data.classes import NEU_CLASSES
from edgekit.errors import EdgekitError


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("synth")
    return {
        "a3": synth.generate(base / "a3", per_class=3, seed=0, progress=False),
        "b3": synth.generate(base / "b3", per_class=3, seed=0, progress=False),
        "a5": synth.generate(base / "a5", per_class=5, seed=0, progress=False),
        "s1": synth.generate(base / "s1", per_class=3, seed=1, progress=False),
    }


def test_same_seed_gives_identical_bytes(sets):
    a, b = _digests(sets["a3"]), _digests(sets["b3"])
    assert len(a) == 6 * 3 * 3 + 1
    assert a == b


def test_different_seed_gives_different_images(sets):
    a, s = _digests(sets["a3"]), _digests(sets["s1"])
    images = [k for k in a if k.startswith("IMAGES")]
    assert all(a[k] != s[k] for k in images)


def test_prefix_is_stable_when_generating_more(sets):
    a3, a5 = _digests(sets["a3"]), _digests(sets["a5"])
    shared = [k for k in a3 if k != "synth.json"]
    assert all(a3[k] == a5[k] for k in shared)
    assert len(a5) == 6 * 5 * 3 + 1


def test_layout_annotations_and_masks(sets):
    root = sets["a3"]
    meta = json.loads((root / "synth.json").read_text())
    assert meta["seed"] == 0 and meta["classes"] == list(NEU_CLASSES)
    assert meta["per_class"] == {c: 3 for c in NEU_CLASSES} and meta["image_size"] == [200, 200]
    assert meta["version"] == synth.GENERATOR_VERSION
    for ci, cls in enumerate(NEU_CLASSES):
        for n in range(1, 4):
            stem = f"{cls}_{n}"
            image = cv2.imread(str(root / "IMAGES" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(root / "MASKS" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            assert image.dtype == np.uint8 and image.shape == (200, 200)
            assert mask.dtype == np.uint8 and mask.shape == (200, 200)
            assert set(np.unique(mask)) <= {0, ci + 1}

            ann = ET.parse(root / "ANNOTATIONS" / f"{stem}.xml").getroot()
            assert ann.tag == "annotation"
            assert ann.findtext("filename") == f"{stem}.png"
            assert ann.findtext("source/database") == "edgekit-synth"
            assert [ann.findtext(f"size/{k}") for k in ("width", "height", "depth")] == ["200", "200", "1"]
            assert ann.findtext("segmented") == "0"
            objects = ann.findall("object")
            assert objects
            covered = np.zeros_like(mask, bool)
            for obj in objects:
                assert obj.findtext("name") == cls
                assert obj.findtext("pose") == "Unspecified"
                assert obj.findtext("truncated") == "0" and obj.findtext("difficult") == "0"
                x0, y0, x1, y1 = (int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
                assert 1 <= x0 < x1 <= 200 and 1 <= y0 < y1 <= 200  # VOC 1-based inclusive
                inside = mask[y0 - 1 : y1, x0 - 1 : x1]
                assert inside.any(), f"{stem}: box without defect pixels"
                covered[y0 - 1 : y1, x0 - 1 : x1] = True
            assert mask.any()
            assert not (mask.astype(bool) & ~covered).any(), f"{stem}: mask pixels outside every box"


def test_existing_reader_accepts_the_layout(sets):
    from edgekit.data.neu import load_neu

    ds = load_neu(sets["a3"], with_boxes=True)
    assert ds.counts() == {c: 3 for c in NEU_CLASSES}
    assert all(s.boxes and all(b.label == s.label for b in s.boxes) for s in ds.samples)
    assert not any("degenerate" in n or "another class" in n for n in ds.notes)


def test_render_matches_generate(sets):
    image, boxes, mask = synth.render("scratches", synth.sample_rng(0, 5, 2), 200)
    on_disk = cv2.imread(str(sets["a3"] / "IMAGES" / "scratches_2.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(image, on_disk)
    assert boxes and mask.max() == 6


def test_render_small_size_and_unknown_class():
    image, boxes, mask = synth.render("pitted_surface", np.random.default_rng(3), 64)
    assert image.shape == mask.shape == (64, 64) and boxes
    with pytest.raises(EdgekitError, match="unknown class"):
        synth.render("rust", np.random.default_rng(0), 64)


def test_refuses_non_empty_root(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    with pytest.raises(EdgekitError, match="not empty"):
        synth.generate(root, per_class=1, progress=False)
    assert [p.name for p in root.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary sibling left
    synth.generate(root, per_class=1, size=64, progress=False, overwrite=True)
    assert not (root / "keep.txt").exists() and (root / "synth.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_empty_root_is_accepted(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    synth.generate(root, per_class=1, size=64, progress=False)
    assert len(list((root / "IMAGES").iterdir())) == 6


def test_crash_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = synth.render

    def flaky(cls, rng, size):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")
        return real(cls, rng, size)

    monkeypatch.setattr(synth, "render", flaky)
    with pytest.raises(RuntimeError):
        synth.generate(tmp_path / "data", per_class=2, size=64, progress=False)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- difficulty
def _texture_features(image: np.ndarray, grid: dict) -> np.ndarray:
    """Log FFT magnitude in 8 radial x 6 angular bins, gradient orientation histogram, DoG statistics."""
    g = image.astype(np.float32)
    g = (g - g.mean()) / (g.std() + 1e-6)
    s = g.shape[0]
    if s not in grid:
        yy, xx = np.mgrid[0:s, 0 : s // 2 + 1].astype(np.float64)
        yy = np.where(yy > s // 2, yy - s, yy)
        r, a = np.hypot(xx, yy), np.mod(np.arctan2(yy, xx), np.pi)
        rb = np.minimum((np.log2(np.maximum(r, 1)) / np.log2(s / 2) * 8).astype(int), 7)
        ab = np.minimum((a / np.pi * 6).astype(int), 5)
        ok = (r >= 1) & (r <= s / 2)
        idx = (rb * 6 + ab)[ok]
        grid[s] = (ok, idx, np.maximum(np.bincount(idx, minlength=48), 1))
    ok, idx, cnt = grid[s]
    spectrum = np.bincount(idx, weights=np.log(np.abs(np.fft.rfft2(g))[ok] + 1e-6), minlength=48) / cnt
    mag, ang = cv2.cartToPolar(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    hog = np.bincount(((ang * (8 / np.pi)).astype(np.int32) % 8).ravel(), weights=mag.ravel(), minlength=8)
    dog, prev = [], g
    for sigma in (1, 2, 4, 8):
        blurred = cv2.GaussianBlur(g, (0, 0), sigma)
        d, prev = prev - blurred, blurred
        sd = float(d.std()) + 1e-6
        z = d / sd
        z2 = z * z
        dog += [np.log(sd), float((z2 * z).mean()), np.log(float((z2 * z2).mean())), float((z < -3).mean()), float((z > 3).mean())]
    return np.concatenate([spectrum, hog / hog.sum(), dog])


def test_learnable_by_texture_but_not_by_raw_pixels():
    per_class, seed = 40, 7
    images, labels = [], []
    for ci, cls in enumerate(NEU_CLASSES):
        for n in range(1, per_class + 1):
            images.append(synth.render(cls, synth.sample_rng(seed, ci, n), 200)[0])
            labels.append(ci)
    y = np.array(labels)
    targets = np.eye(6)[y] * 2 - 1
    perm = np.random.default_rng(0).permutation(len(y))
    tr, te = perm[: 2 * len(y) // 3], perm[2 * len(y) // 3 :]

    # raw pixels, ridge in dual form; the best of several penalties on the test set (generous to it)
    raw = np.array(images, np.float64).reshape(len(y), -1)
    raw -= raw[tr].mean(0)
    gram, cross = raw[tr] @ raw[tr].T, raw[te] @ raw[tr].T
    raw_acc = 0.0
    for lam in (1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4):
        scores = cross @ np.linalg.solve(gram + lam * raw.shape[1] * np.eye(len(tr)), targets[tr])
        raw_acc = max(raw_acc, float((scores.argmax(1) == y[te]).mean()))

    # hand-crafted texture features, ridge with one fixed penalty
    grid: dict = {}
    feats = np.array([_texture_features(im, grid) for im in images])
    feats = (feats - feats[tr].mean(0)) / (feats[tr].std(0) + 1e-9)
    feats = np.c_[feats, np.ones(len(y))]
    w = np.linalg.solve(feats[tr].T @ feats[tr] + 1.0 * np.eye(feats.shape[1]), feats[tr].T @ targets[tr])
    tex_acc = float(((feats[te] @ w).argmax(1) == y[te]).mean())

    print(f"raw-pixel linear: {raw_acc:.3f}  texture linear: {tex_acc:.3f}")
    assert raw_acc < 0.5
    assert tex_acc > 0.8
