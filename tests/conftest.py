"""Shared fixtures: a tiny generated dataset and a CI-sized copy of the classification recipe."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")

from edgekit.recipes import load_recipe, recipes_dir  # noqa: E402
from edgekit.targets import load_target  # noqa: E402


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """Built-in generated data: 10 images per class at 200x200 (as the real NEU layout)."""
    from edgekit.data import synth

    return synth.generate(tmp_path_factory.mktemp("data") / "neu", per_class=10, seed=3, progress=False)


@pytest.fixture(scope="session")
def tiny_recipe_path(tmp_path_factory) -> Path:
    """The sdc-squeezenet-mrf recipe at 64x64 input, one short epoch: CI-sized, same code paths."""
    raw = yaml.safe_load((recipes_dir() / "sdc-squeezenet-mrf.yaml").read_text())
    raw["preprocess"]["size"] = 64
    raw["train"].update(batch_size=12, epochs=1)
    raw["train"]["from_scratch"].update(epochs=2)
    raw["quantize"]["calibration"]["per_class"] = 2
    raw["data"]["builtin"]["per_class"] = 6
    raw["data"]["builtin"].pop("train", None)      # the tiny schedule above, on any data
    # A one-epoch model is far from converged: gate only what the pipeline guarantees.
    raw["validate"]["max_drop"] = {"fp32": 0.01, "fp16": 100.0, "int8": 100.0}
    path = tmp_path_factory.mktemp("recipe") / "tiny-sdc.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="session")
def tiny_recipe(tiny_recipe_path):
    return load_recipe(tiny_recipe_path)


@pytest.fixture(scope="session")
def tiny_det_recipe(tmp_path_factory):
    """The raf-ssd recipe at 64x64 input, one short epoch (and one of fine-tuning after pruning)."""
    raw = yaml.safe_load((recipes_dir() / "raf-ssd.yaml").read_text())
    raw["preprocess"]["size"] = raw["model"]["args"]["image_size"] = 64
    raw["train"].update(batch_size=8, epochs=1, warmup_epochs=0)
    raw["quantize"]["calibration"]["per_class"] = 2
    raw["validate"].update(samples=4, max_drop={"fp32": 0.01, "fp16": 100.0, "int8": 100.0})
    raw["prune"].update(max_drop=100.0, finetune={"epochs": 1})
    path = tmp_path_factory.mktemp("recipe") / "tiny-raf-ssd.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path)


@pytest.fixture(scope="session")
def tiny_stages(tmp_path_factory, tiny_recipe, tiny_data) -> dict[str, Path]:
    """train -> export -> calibration -> quantize of the tiny recipe, once per session."""
    from edgekit import calibration
    from edgekit.checkpoint import resolve_pretrained
    from edgekit.data.recipe_data import load_split
    from edgekit.stages.export import export
    from edgekit.stages.quantize import quantize
    from edgekit.stages.train import train

    root = tmp_path_factory.mktemp("run")
    train(tiny_recipe, tiny_data, root / "train", resolve_pretrained(tiny_recipe, None), epochs=1, threads=2)
    export(tiny_recipe, root / "train", root / "export")
    manifest = calibration.write(
        calibration.select(tiny_recipe, load_split(tiny_recipe, tiny_data), "tiny"), root / "calib.yaml"
    )
    quantize(tiny_recipe, root / "export", manifest, tiny_data, root / "quantize", cache_dir=root / "cache")
    return {"root": root, "manifest": manifest}


@pytest.fixture(scope="session")
def tiny_quantized(tiny_stages) -> Path:
    return tiny_stages["root"] / "quantize"


@pytest.fixture(scope="session")
def tiny_seg_recipe(tmp_path_factory):
    """The lsa-net recipe at 64x64 input and a quarter of its width, one short epoch."""
    raw = yaml.safe_load((recipes_dir() / "lsa-net.yaml").read_text())
    raw["preprocess"]["size"] = 64
    raw["model"]["args"]["base"] = 4
    raw["train"].update(batch_size=8, epochs=1, warmup_epochs=0)
    raw["quantize"]["calibration"]["per_class"] = 2
    raw["validate"].update(samples=4, max_drop={"fp32": 0.01, "fp16": 100.0, "int8": 100.0})
    path = tmp_path_factory.mktemp("recipe") / "tiny-lsa-net.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_recipe(path)


@pytest.fixture(scope="session")
def orin_kit(tiny_recipe, tiny_quantized, tmp_path_factory) -> Path:
    """The tiny recipe's TensorRT kit for jetson-orin (TensorRT 8.5.2, 8.6.2, 10.3.0)."""
    from edgekit.stages.compile import device_kit

    out = tmp_path_factory.mktemp("kit") / "tensorrt-kit"
    device_kit(tiny_recipe, tiny_quantized, load_target("jetson-orin"), out, ["fp32", "fp16", "int8"])
    return out
