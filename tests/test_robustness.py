"""The paper's diversity-enhanced conditions (seeds/002 Sec. 3.2)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.data import robustness as rb
from edgekit.data.synth import render
from edgekit.errors import EdgekitError


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return render("inclusion", np.random.default_rng(0), 96)[0]


def test_condition_names():
    assert list(rb.CONDITIONS) == [
        "clean", "illum_a0.4", "illum_a1", "noise_snr20", "noise_snr35", "blur_l2", "blur_l5",
    ]
    assert all(f.__doc__ and "aper" in f.__doc__ for f in rb.CONDITIONS.values())


@pytest.mark.parametrize("name", list(rb.CONDITIONS))
def test_conditions_keep_dtype_shape_and_are_deterministic(name, image):
    for img in (image, np.dstack([image, image[::-1], image.T])):
        a = rb.apply(name, img, np.random.default_rng(5))
        b = rb.apply(name, img, np.random.default_rng(5))
        assert a.dtype == np.uint8 and a.shape == img.shape
        assert np.array_equal(a, b)
        if name == "clean":
            assert np.array_equal(a, img)
        else:
            assert not np.array_equal(a, img)


def test_unknown_condition_and_bad_input(image):
    with pytest.raises(EdgekitError, match="unknown condition 'fog'.*clean.*blur_l5"):
        rb.apply("fog", image, np.random.default_rng(0))
    with pytest.raises(EdgekitError, match="uint8"):
        rb.apply("noise_snr20", image.astype(np.float32), np.random.default_rng(0))


# --------------------------------------------------------------------------- noise
@pytest.mark.parametrize("snr", [20.0, 35.0])
def test_noise_realises_the_requested_snr(snr, image):
    # the noise itself (before rounding/clipping) has exactly the requested eq.-5 SNR
    noise = rb.noise_for_snr(image, snr, np.random.default_rng(1))
    assert abs(rb.snr_db(image, noise) - snr) < 1e-9
    colour = np.dstack([image, image, image])
    assert abs(rb.snr_db(colour, rb.noise_for_snr(colour, snr, np.random.default_rng(1))) - snr) < 1e-9

    # on the uint8 output: a mid-grey image (96..208) so clipping at 0/255 never bites
    # (>5 sigma away at 20 dB); what is left is uint8 rounding, ~1/12 grey level^2 per pixel,
    # which costs <= 0.05 dB at 35 dB and ~0.002 dB at 20 dB
    grey = (96 + image.astype(np.float64) * (112 / 255)).round().astype(np.uint8)
    out = rb.add_noise(grey, snr, np.random.default_rng(2))
    assert 0 < out.min() and out.max() < 255
    assert abs(rb.snr_db(grey, out.astype(np.float64) - grey) - snr) < 0.1


# --------------------------------------------------------------------------- illumination
@pytest.mark.parametrize("alpha", [0.4, -0.4, 1.0, -1.0])
def test_bias_field_is_a_cubic_gain_spanning_one_plus_minus_alpha(alpha):
    field = rb.bias_field((90, 120), alpha, np.random.default_rng(3))
    assert field.shape == (90, 120)
    # the luminance range bounds the gain: exactly 1 - |alpha| .. 1 + |alpha|
    assert math.isclose(field.min(), 1 - abs(alpha), abs_tol=1e-12)
    assert math.isclose(field.max(), 1 + abs(alpha), abs_tol=1e-12)
    # slow-varying: exactly a 3rd-order 2-D polynomial
    y, x = np.meshgrid(np.linspace(-1, 1, 90), np.linspace(-1, 1, 120), indexing="ij")
    basis = np.stack([(x**i * y**j).ravel() for i in range(4) for j in range(4 - i)], 1)
    coef, *_ = np.linalg.lstsq(basis, field.ravel(), rcond=None)
    assert np.abs(basis @ coef - field.ravel()).max() < 1e-6


def test_illumination_multiplies_by_the_field_and_clips(image):
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    out = rb.illuminate(image, 1.0, rng_a)
    gain = rb.bias_field(image.shape, 1.0, rng_b)
    expected = np.clip(np.rint(image * gain), 0, 255)
    assert np.array_equal(out, expected.astype(np.uint8))
    # a multiplicative field keeps black black, and darkens and brightens different regions
    assert not rb.illuminate(np.zeros_like(image), 1.0, np.random.default_rng(4)).any()
    assert (out[gain < 0.9] <= image[gain < 0.9]).all() and (out[gain > 1.1] >= image[gain > 1.1]).all()


def test_mild_illumination_keeps_the_image_within_its_gain(image):
    """At +-0.4 (the paper's mild setting, where it keeps 99.9 %) every pixel stays within 40 % of
    itself: the texture a classifier needs survives."""
    out = rb.CONDITIONS["illum_a0.4"](image, np.random.default_rng(6)).astype(float)
    lit = image > 0
    ratio = out[lit] / image[lit]
    assert ratio.min() >= 0.6 - 0.5 / image[lit].min() and ratio.max() <= 1.4 + 0.5 / image[lit].min()
    assert ratio.min() < 0.8 and ratio.max() > 1.2   # and it does vary: both darker and brighter regions


# --------------------------------------------------------------------------- motion blur
def test_motion_kernel_axis_aligned_matches_fspecial():
    assert np.allclose(rb.motion_kernel(5, 0), np.full((1, 5), 0.2))
    assert np.allclose(rb.motion_kernel(2, 0), [[0.25, 0.5, 0.25]])
    assert np.allclose(rb.motion_kernel(2, 90), [[0.25], [0.5], [0.25]])
    assert np.allclose(rb.motion_kernel(5, 180), rb.motion_kernel(5, 0))


@pytest.mark.parametrize("length", [2, 5])
def test_motion_kernel_sums_to_one_and_has_the_length(length):
    for angle in np.random.default_rng(length).uniform(0, 360, 40):
        k = rb.motion_kernel(length, angle).astype(np.float64)
        assert abs(k.sum() - 1) < 1e-6 and (k >= 0).all()
        assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
        h, w = k.shape[0] // 2, k.shape[1] // 2
        yy, xx = np.mgrid[-h : h + 1, -w : w + 1]
        t = math.radians(angle)
        along = xx * math.cos(t) - yy * math.sin(t)  # image y points down
        across = xx * math.sin(t) + yy * math.cos(t)
        assert abs((k * xx).sum()) < 1e-6 and abs((k * yy).sum()) < 1e-6  # centred
        # a bar of length L, 1 px wide, sampled on pixels: variance along = (L^2 + 1)/12
        # up to sampling (<= 1/6), i.e. the realised length sqrt(12 var - 1) is L within ~0.3 px
        assert abs((k * along**2).sum() - (length**2 + 1) / 12) <= 1 / 6 + 1e-6
        assert (k * across**2).sum() < 0.35
        assert np.abs(along[k > 0]).max() <= length / 2 + 1.0


def test_motion_blur_preserves_flat_images_and_uses_the_kernel(image):
    flat = np.full((40, 50), 137, np.uint8)
    assert np.array_equal(rb.motion_blur(flat, 5, 33.0), flat)
    out = rb.motion_blur(image, 5, 0.0)
    row = image[50].astype(np.float64)
    assert np.allclose(out[50, 10:-10], np.rint(np.convolve(row, np.full(5, 0.2), "same"))[10:-10], atol=1)
    with pytest.raises(EdgekitError, match="length"):
        rb.motion_kernel(0, 10)


def test_robustness_augmentation_is_reproducible_and_wider_than_the_test_conditions(image):
    from edgekit.data.augment import RobustConfig, degrade

    cfg = RobustConfig.from_config(True)
    assert cfg.illumination > 1.0 and cfg.snr_db[0] < 20 and cfg.snr_db[1] > 35 and cfg.blur > 5
    a = degrade(image, np.random.default_rng([0, 1, 2]), cfg)
    b = degrade(image, np.random.default_rng([0, 1, 2]), cfg)
    assert a.dtype == np.uint8 and a.shape == image.shape and np.array_equal(a, b)
    changed = [not np.array_equal(degrade(image, np.random.default_rng(i), cfg), image) for i in range(16)]
    assert 8 <= sum(changed) < 16        # 1 - 0.5**3 of the draws degrade; some stay clean
    with pytest.raises(ValueError, match="unknown"):
        RobustConfig.from_config({"gamma": 2})
    with pytest.raises(ValueError, match="out of range"):
        RobustConfig.from_config({"snr_db": [40, 20]})


def test_classifier_trains_on_degraded_batches_when_the_recipe_asks(tiny_recipe, tiny_data):
    from dataclasses import replace

    from edgekit.data.recipe_data import load_split
    from edgekit.tasks.classification.train import ClassificationTraining

    split = load_split(tiny_recipe, tiny_data)
    plain = ClassificationTraining(tiny_recipe, split, seed=0)
    robust = ClassificationTraining(replace(tiny_recipe, train={**tiny_recipe.train, "robust_augment": True}),
                                    split, seed=0)
    (xp, yp), (xr, yr) = next(plain.batches(0, 8)), next(robust.batches(0, 8))
    assert np.array_equal(yp, yr) and xp.shape == xr.shape and not np.allclose(xp, xr)
    again = next(robust.batches(0, 8))[0]
    assert np.array_equal(xr, again) and not np.array_equal(xr, next(robust.batches(1, 8))[0])
    with pytest.raises(EdgekitError, match="robust_augment"):
        ClassificationTraining(replace(tiny_recipe, train={**tiny_recipe.train, "robust_augment": {"p": 2}}),
                               split, seed=0)
