"""SqueezeNet-MRF: shapes, the released head layout, ImageNet trunk loading, ELF learning rates."""
from __future__ import annotations

import pytest
import torch

from edgekit.errors import EdgekitError
from edgekit.models import create_model, list_models
from edgekit.stages.train import param_groups


def test_registry_and_output_shape() -> None:
    assert {"squeezenet1_0_mrf", "squeezenet1_0"} <= set(list_models())
    m = create_model("squeezenet1_0_mrf", num_classes=6).eval()
    assert m(torch.zeros(2, 3, 200, 200)).shape == (2, 6)
    with pytest.raises(EdgekitError, match="unknown model 'nope'"):
        create_model("nope")


def test_mrf_head_matches_the_released_definition() -> None:
    head = create_model("squeezenet1_0_mrf").head
    assert head.conv10a.kernel_size == (3, 3) and head.conv10a.padding == (1, 1) and head.conv10a.out_channels == 6
    assert head.conv10b.kernel_size == (1, 1) and head.conv10b.out_channels == 6
    assert head.conv11.in_channels == 12 and head.conv11.out_channels == 6
    assert head.dropout.p == 0.5


def test_imagenet_trunk_loads_from_torchvision_layout(tmp_path) -> None:
    src = create_model("squeezenet1_0")
    state = {f"features.{k}": v for k, v in src.features.state_dict().items()}
    state["classifier.1.weight"] = torch.zeros(1000, 512, 1, 1)  # the ImageNet head is ignored
    torch.save(state, tmp_path / "sq.pth")
    m = create_model("squeezenet1_0_mrf")
    assert m.load_imagenet_trunk(tmp_path / "sq.pth") == 52 - 2
    assert torch.equal(m.features[0].weight, src.features[0].weight)

    state["features.0.weight"] = torch.zeros(96, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(EdgekitError, match=r"bad\.pth: features\.0\.weight has shape"):
        m.load_imagenet_trunk(tmp_path / "bad.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(EdgekitError, match=r"junk\.pth: not a torch checkpoint \(unreadable pickle\)"):
        m.load_imagenet_trunk(tmp_path / "junk.pth")


def test_elf_multiplies_lr_of_conv1_fire2_fire3_only() -> None:
    m = create_model("squeezenet1_0_mrf")
    groups = param_groups(m, 1e-4, {"conv1": 9, "fire2": 9, "fire3": 9})
    by_mult = {g["lr_mult"]: g for g in groups}
    assert set(by_mult) == {1.0, 9.0}
    boosted = {id(p) for p in by_mult[9.0]["params"]}
    expected = [p for n, p in m.named_parameters() if n.split(".")[:2] in (["features", "0"], ["features", "3"], ["features", "4"])]
    assert boosted == {id(p) for p in expected}
    assert by_mult[9.0]["lr"] == pytest.approx(9e-4)
    with pytest.raises(EdgekitError, match="fire42"):
        param_groups(m, 1e-4, {"fire42": 2})


def test_bundled_imagenet_weights_are_the_recipe_default(tiny_recipe) -> None:
    from edgekit.checkpoint import resolve_pretrained

    path = resolve_pretrained(tiny_recipe, None)
    assert path is not None and path.name == "squeezenet1_0-imagenet.pth.gz"
    m = create_model("squeezenet1_0_mrf")
    assert m.load_imagenet_trunk(path) == 50
    assert resolve_pretrained(tiny_recipe, "none") is None
    with pytest.raises(EdgekitError, match="pretrained weights file not found"):
        resolve_pretrained(tiny_recipe, "/no/such/weights.pth")
