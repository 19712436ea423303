"""Channel pruning: what it removes, what it keeps, and pruned checkpoints that load as plain ones."""
from __future__ import annotations

import pytest
import torch
import yaml

from edgekit.checkpoint import build_model, load_model, save_checkpoint
from edgekit.errors import EdgekitError
from edgekit.pruning import PruneSpec, count_macs, fit_to_state_dict, prune_channels
from edgekit.recipes import load_recipe, recipes_dir


@pytest.fixture(scope="module")
def pruned(tiny_det_recipe):
    torch.manual_seed(0)
    model = build_model(tiny_det_recipe).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    stats = prune_channels(model, x[:1], PruneSpec(ratio=0.5, round_to=8, ignore=("loc", "conf")))
    return {"model": model.eval(), "x": x, "before": before, "stats": stats}


def test_half_the_channels_leave_about_a_quarter_of_the_macs(pruned) -> None:
    s = pruned["stats"]
    assert 0.2 < s["macs_kept"] < 0.35 and s["macs_after"] < s["macs_before"]
    assert (s["macs_after"], s["params_after"]) == count_macs(pruned["model"], pruned["x"][:1])


def test_widths_are_multiples_of_round_to_and_heads_keep_their_outputs(pruned, tiny_det_recipe) -> None:
    model, full = pruned["model"], build_model(tiny_det_recipe)
    full_widths = {n: m.out_channels for n, m in full.named_modules() if isinstance(m, torch.nn.Conv2d)}
    for name, m in model.named_modules():
        if not isinstance(m, torch.nn.Conv2d):
            continue
        if name.startswith(("loc.", "conf.")):
            assert m.out_channels == full_widths[name], name       # the prior layout is untouched
        elif full_widths[name] % 8 == 0 and full_widths[name] >= 16:
            assert m.out_channels % 8 == 0 and m.out_channels < full_widths[name], name
    with torch.no_grad():
        loc, conf = model(pruned["x"])
    assert loc.shape == pruned["before"][0].shape and conf.shape == pruned["before"][1].shape


def test_a_pruned_checkpoint_loads_into_the_recipe_model_with_the_same_outputs(pruned, tiny_det_recipe, tmp_path) -> None:
    path = tmp_path / "pruned.pt"
    save_checkpoint(path, pruned["model"], tiny_det_recipe, pruning={"ratio": 0.5})
    loaded = load_model(tiny_det_recipe, path)
    with torch.no_grad():
        a, b = pruned["model"](pruned["x"]), loaded(pruned["x"])
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    # the same tensors without the pruning mark are a wrong checkpoint, refused with the file named
    torch.save({"state_dict": pruned["model"].state_dict()}, tmp_path / "plain.pt")
    with pytest.raises(EdgekitError, match="plain.pt: does not fit model raf_ssd_resnet50"):
        load_model(tiny_det_recipe, tmp_path / "plain.pt")


def test_fit_to_state_dict_narrows_convs_transposed_convs_and_norms() -> None:
    full = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.BatchNorm2d(16), torch.nn.ConvTranspose2d(16, 8, 2))
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ConvTranspose2d(8, 8, 2))
    fit_to_state_dict(full, small.state_dict()).load_state_dict(small.state_dict())
    assert (full[0].out_channels, full[1].num_features, full[2].in_channels) == (8, 8, 8)
    x = torch.randn(1, 3, 9, 9)
    assert torch.equal(full.eval()(x), small.eval()(x))


@pytest.mark.parametrize("section, message", [
    ({"ratio": 1.2}, "prune.ratio must be in"),
    ({"ratio": 0.3, "importance": "random"}, "prune.importance 'random' is not one of"),
    ({"ratio": 0.3, "rate": 2}, "prune has unknown keys rate"),
])
def test_a_malformed_prune_section_is_refused_naming_the_recipe(tmp_path, section, message) -> None:
    raw = yaml.safe_load((recipes_dir() / "raf-ssd.yaml").read_text())
    raw["prune"] = section
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(EdgekitError, match=f"{path}: {message}"):
        load_recipe(path)


def test_ignore_must_name_a_module(tiny_det_recipe) -> None:
    model = build_model(tiny_det_recipe)
    with pytest.raises(EdgekitError, match="prune.ignore names no module of the model: heads"):
        prune_channels(model, torch.zeros(1, 3, 64, 64), PruneSpec(ratio=0.5, ignore=("heads",)))


# the layers that make each architecture's outputs keep their channels (a recipe's prune.ignore where it has one);
# lsa-net's location attention too: torch-pruning does not follow channels through its strip-mean outer product
OUTPUT_LAYERS = {"sdc-squeezenet-mrf": ["head"], "unet": ["head"], "lsa-net": ["head", "lam"],
                 "segdec-net": ["seg_head", "fc"]}


@pytest.mark.parametrize("name", ["sdc-squeezenet-mrf", "raf-ssd", "ssd-resnet50", "unet", "lsa-net", "segdec-net"])
def test_every_recipes_architecture_prunes_loads_and_exports_consistently(name, tmp_path) -> None:
    import numpy as np
    import onnxruntime as ort

    from edgekit.stages.export import to_onnx

    raw = load_recipe(name).resolved()
    raw["preprocess"]["size"] = 64
    raw["model"].setdefault("args", {})
    if "image_size" in raw["model"]["args"]:
        raw["model"]["args"]["image_size"] = 64
    raw["model"]["pretrained"] = None
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    recipe = load_recipe(path)
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    x = torch.randn(1, *recipe.preprocess.input_shape)
    with torch.no_grad():
        before = model(x)
    ignore = tuple((recipe.prune or {}).get("ignore", OUTPUT_LAYERS.get(name, [])))
    stats = prune_channels(model, x, PruneSpec(ratio=0.3, round_to=8, ignore=ignore))
    assert stats["macs_kept"] < 0.8 and stats["params_kept"] < 0.8
    model.eval()
    with torch.no_grad():
        after = model(x)
    before, after = (o if isinstance(o, (tuple, list)) else (o,) for o in (before, after))
    assert [tuple(o.shape) for o in after] == [tuple(o.shape) for o in before]
    save_checkpoint(tmp_path / "pruned.pt", model, recipe, pruning={"ratio": 0.3})
    loaded = load_model(recipe, tmp_path / "pruned.pt")
    with torch.no_grad():
        again = loaded(x)
    again = again if isinstance(again, (tuple, list)) else (again,)
    assert all(torch.equal(u, v) for u, v in zip(after, again))
    to_onnx(loaded, tuple(x.shape), tmp_path / "pruned.onnx", recipe)
    session = ort.InferenceSession(str(tmp_path / "pruned.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for want, out in zip(after, got):
        scale = float(np.abs(want.numpy()).max()) + 1e-6
        assert np.abs(out - want.numpy()).max() / scale < 1e-3
