"""Benchmark scripts that cannot run here check their plan here: benchmarks/gpu_train.py (a GPU machine's
trainings) writes every job's recipe, which must resolve, and names split files that exist."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from edgekit.recipes import load_recipe

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_gpu_training_plan_resolves_without_a_gpu(tmp_path) -> None:
    plan = yaml.safe_load((BENCH / "gpu_train.yaml").read_text())
    out = subprocess.run([sys.executable, str(BENCH / "gpu_train.py"), "--out", str(tmp_path), "--dry-run",
                          "--epochs-scale", "0.1", "--data", str(tmp_path)], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    assert len(lines) == len(plan["jobs"]) == 6
    for job, line in zip(plan["jobs"], lines):
        recipe = load_recipe(tmp_path / "recipes" / f"{job['name']}.yaml")
        assert f"--epochs {max(1, round(job['epochs'] * 0.1))}" in line and "--target cpu" in line
        assert recipe.preprocess.size == 256                                   # the recipes' own size
        if recipe.task == "segmentation+decision":
            assert recipe.paper["comparable"] is False and recipe.train["gpu"]["momentum"] == 0.0
    modes = {load_recipe(tmp_path / "recipes" / f"{j['name']}.yaml").decision.get("supervision")
             for j in plan["jobs"] if j["recipe"] == "segdec-net"}
    assert modes == {"full", "mixed", "weak"}
    bad = subprocess.run([sys.executable, str(BENCH / "gpu_train.py"), "--out", str(tmp_path), "--dry-run",
                          "--only", "nope", "--data", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "no job named nope" in bad.stderr
