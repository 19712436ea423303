"""2:4 sparsity: which layers qualify, masks that hold through training and export, and the TensorRT kit
building such a model with the sparse-weights flag."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

from edgekit.errors import EdgekitError
from edgekit.sparsity import SparsitySpec, apply_masks, fold, is_2_4, layer_table, onnx_sparse_layers, sparse_share
from edgekit.targets import load_target

pytest.importorskip("modelopt.torch.sparsity")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)          # 3 inputs: not a Tensor Core tile
        self.narrow = nn.Conv2d(32, 64, 3, padding=1)       # 32 inputs: too small at min_channels 64
        self.body = nn.Conv2d(64, 64, 3, padding=1)         # qualifies
        self.dw = nn.Conv2d(64, 64, 3, padding=1, groups=64)  # depthwise: no sparse kernel
        self.wide = nn.Conv2d(64, 128, 1)                   # qualifies
        self.head = nn.Linear(128, 16)                      # left dense by the recipe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in (self.stem, self.narrow, self.body, self.dw, self.wide):
            x = torch.relu(conv(x))
        return self.head(x.mean((2, 3)))


SPEC = SparsitySpec(min_channels=64, ignore=("head",))


def test_each_layer_is_marked_sparse_or_dense_with_the_reason() -> None:
    rows = {r["layer"]: r for r in layer_table(Net(), SPEC, torch.zeros(1, 3, 16, 16))}
    assert [k for k, r in rows.items() if r["sparse"]] == ["body", "wide"]
    assert "outputs % 8 and inputs % 16" in rows["stem"]["reason"]
    assert rows["narrow"]["reason"].startswith("too small to gain")
    assert rows["dw"]["reason"].startswith("grouped convolution")
    assert "sparsity.ignore" in rows["head"]["reason"]
    assert rows["body"]["macs"] == 64 * 64 * 9 * 16 * 16
    assert 0 < sparse_share(list(rows.values())) < 1


def test_masks_hold_through_training_and_fold_into_plain_weights(tmp_path) -> None:
    torch.manual_seed(0)
    model = Net()
    rows = layer_table(model, SPEC, torch.zeros(1, 3, 16, 16))
    apply_masks(model, rows)
    opt = torch.optim.AdamW(model.parameters(), 1e-2)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 3, 16, 16)).square().mean().backward()
        opt.step()
    fold(model)
    assert type(model.body) is nn.Conv2d and not any("mask" in k for k in model.state_dict())
    assert is_2_4(model.body.weight.detach().numpy()) and is_2_4(model.wide.weight.detach().numpy())
    assert not is_2_4(model.narrow.weight.detach().numpy())     # untouched layers stay dense
    # the pattern runs along the input channels: each (output, kernel position) keeps 2 of every 4
    w = model.body.weight.detach().numpy()
    assert ((w != 0).reshape(64, 16, 4, 9).sum(axis=2) == 2).all()

    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False)
    found = onnx_sparse_layers(path)
    assert len(found) == 2 and all("body" in n or "wide" in n for n in found)


def test_a_recipe_section_is_checked_when_the_recipe_loads() -> None:
    with pytest.raises(EdgekitError, match="sparsity.pattern"):
        SparsitySpec.from_recipe({"pattern": "4:8"}, "r.yaml")
    with pytest.raises(EdgekitError, match="unknown keys"):
        SparsitySpec.from_recipe({"ratio": 0.5}, "r.yaml")
    with pytest.raises(EdgekitError, match="no layer"):
        apply_masks(Net(), [])


def test_only_ampere_and_newer_gpus_have_sparse_tensor_cores() -> None:
    assert load_target("jetson-orin").sparse_tensor_cores and load_target("desktop-cuda").sparse_tensor_cores
    assert not load_target("jetson-xavier-nx").sparse_tensor_cores
    assert not load_target("jetson-nano").sparse_tensor_cores and not load_target("intel-cpu").sparse_tensor_cores


@pytest.mark.slow
def test_orin_build_sparsifies_exports_the_sparse_model_and_flags_the_kit(tiny_recipe_path, tiny_stages, tiny_data,
                                                                        tmp_path) -> None:
    from edgekit.artifacts import read_manifest
    from edgekit.recipes import load_recipe
    from edgekit.stages.build import BuildOptions, build

    raw = yaml.safe_load(tiny_recipe_path.read_text())
    raw["sparsity"] = {"min_channels": 32, "max_drop": 100.0, "finetune": {"epochs": 1}}
    path = tmp_path / "sparse.yaml"
    path.write_text(yaml.safe_dump(raw))
    recipe = load_recipe(path)
    run = tmp_path / "run"
    res = build(recipe, load_target("jetson-orin"), run,
                BuildOptions(data=tiny_data, checkpoint=tiny_stages["root"] / "train" / "model.pt", threads=2))

    assert [s["stage"] for s in res["stages"]][:2] == ["sparsify", "export"]
    record = read_manifest(run / "sparsify")["results"]
    sparse = [r["layer"] for r in record["sparsity"]["layers"] if r["sparse"]]
    assert sparse and record["decision"]["kept"]
    assert read_manifest(run / "export")["inputs"]["checkpoint"]["path"] == str(run / "sparsify" / "model.pt")
    layers = onnx_sparse_layers(run / "export" / "model.onnx")
    assert len(layers) == len(sparse)

    kit_dir = next(Path(a["path"]) for a in res["artifacts"] if a.get("kind") == "device-kit")
    kit = json.loads((kit_dir / "kit.json").read_text())
    assert kit["sparse_weights"] and len(kit["sparse_layers"]) == len(sparse)
    commands = read_manifest(kit_dir)["results"]["commands"]
    lines = [line for per in commands.values() for line in per.values()]
    assert lines and all("--sparsity=enable" in line for line in lines)
    report = (run / "validate" / "report.md").read_text()
    assert "2:4 sparsity: masks on" in report and "too small to gain" in report
    assert any(g["gate"].startswith("accuracy % drop vs dense (2:4)") for g in res["results"]["gates"])

    # the same recipe for a Xavier (Volta: no Sparse Tensor Cores) skips the stage
    from edgekit.stages import sparsify as sparsify_stage
    assert not sparsify_stage.applies(recipe, load_target("jetson-xavier-nx"))


def test_a_dense_model_gets_no_sparse_flag(orin_kit) -> None:
    kit = json.loads((orin_kit / "kit.json").read_text())
    assert kit["sparse_weights"] is False and kit["sparse_layers"] == []
    assert "--sparsity" not in (orin_kit / "BUILD_ON_DEVICE.md").read_text()


def test_device_build_sets_tensorrts_sparse_weights_flag(orin_kit, tmp_path) -> None:
    import shutil

    from trt_fakes import make_trt

    from edgekit.backends.tensorrt.kit_build import KIT_FILE, build_from_kit

    kit_dir = tmp_path / "kit"
    shutil.copytree(orin_kit, kit_dir)
    kit = json.loads((kit_dir / KIT_FILE).read_text())
    for sparse in (False, True):
        kit["sparse_weights"] = sparse
        (kit_dir / KIT_FILE).write_text(json.dumps(kit))
        trt = make_trt("10.3.0.30")
        done = build_from_kit(kit_dir, tmp_path / f"engines-{sparse}", ["fp16"], trt=trt, cuda=trt._cuda)
        flags = json.loads((tmp_path / done[0]["path"] / "manifest.json").read_text())["results"]["flags"]
        assert ("SPARSE_WEIGHTS" in flags) == sparse


def test_is_2_4_reads_groups_of_four_input_channels() -> None:
    w = np.ones((8, 16, 1, 1), np.float32)
    assert not is_2_4(w)
    w[:, 0::4] = w[:, 1::4] = 0
    assert is_2_4(w)
    w[0, 0, 0, 0] = 1.0
    assert not is_2_4(w)
