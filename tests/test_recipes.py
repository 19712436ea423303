"""Recipe files: ``extends:`` inheritance, the ``quick:`` profile, and the errors for bad files."""
from __future__ import annotations

import pytest

from edgekit.errors import EdgekitError
from edgekit.recipes import load_recipe


def test_baseline_recipe_extends_raf_ssd_with_only_its_differences() -> None:
    raf, ssd = load_recipe("raf-ssd"), load_recipe("ssd-resnet50")
    assert ssd.model["name"] == "ssd_resnet50" and ssd.model["args"] == raf.model["args"]
    assert ssd.paper["map"] == 69.8 and ssd.paper["dataset"] == raf.paper["dataset"]
    assert (ssd.train, ssd.detection, ssd.preprocess) == (raf.train, raf.detection, raf.preprocess)
    assert load_recipe("ssd-resnet50", quick=True).train["epochs"] == load_recipe("raf-ssd", quick=True).train["epochs"]


def test_user_recipe_extends_a_file_beside_it(tmp_path) -> None:
    (tmp_path / "mine.yaml").write_text("extends: raf-ssd\nname: mine\ntrain: {epochs: 3}\n")
    (tmp_path / "child.yaml").write_text("extends: mine.yaml\nname: child\n")
    child = load_recipe(tmp_path / "child.yaml")
    assert (child.name, child.train["epochs"], child.train["optimizer"]) == ("child", 3, "adamw")


def test_bad_extends_names_the_file(tmp_path) -> None:
    (tmp_path / "a.yaml").write_text("extends: nowhere\nname: a\n")
    with pytest.raises(EdgekitError, match=r"a\.yaml: extends: 'nowhere': no such recipe"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("extends: c.yaml\n")
    (tmp_path / "c.yaml").write_text("extends: b.yaml\n")
    with pytest.raises(EdgekitError, match="leads back to itself"):
        load_recipe(tmp_path / "b.yaml")


def test_builtin_data_takes_the_recipes_demo_schedule():
    recipe = load_recipe("sdc-squeezenet-mrf")
    demo = recipe.on_builtin_data()
    assert (recipe.train["epochs"], recipe.train["step_epochs"]) == (30, 20)
    assert (demo.train["epochs"], demo.train["step_epochs"]) == (7, 5) and demo.train["lr"] == recipe.train["lr"]
    quick = load_recipe("sdc-squeezenet-mrf", quick=True)
    assert quick.train["epochs"] == quick.on_builtin_data().train["epochs"] == 4
    assert load_recipe("raf-ssd").on_builtin_data() == load_recipe("raf-ssd")
