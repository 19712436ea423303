"""Training on several processes (issue 32): two gloo processes on this CPU under torchrun train as one process
does at the same global batch (the same split, the same steps, the same model within a stated tolerance), a
process killed mid-run resumes from the last checkpoint, and the run folder is a single process's."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from edgekit.distributed import Layout, World, rank_batches
from edgekit.errors import EdgekitError
from edgekit.recipes import recipes_dir


def test_each_process_takes_its_share_of_every_batch() -> None:
    order = np.random.default_rng(0).permutation(50).tolist()
    one = rank_batches(order, 12, False, World())
    two = [rank_batches(order, 12, False, World(r, r, 2)) for r in range(2)]
    assert len(one) == len(two[0]) == len(two[1]) == 5                 # the same steps on every process
    for k, batch in enumerate(one):
        assert sorted(two[0][k] + two[1][k]) == sorted(batch)           # together, each batch once
        assert abs(len(two[0][k]) - len(two[1][k])) <= 1
    three = [rank_batches(order[:25], 12, False, World(r, r, 3)) for r in range(3)]
    assert [len(b) for b in three] == [2, 2, 2]                         # a last batch of 1 image: left out
    assert len(rank_batches(order, 12, True, World(1, 1, 2))) == 4      # drop_last as a single process drops


def test_the_layout_follows_the_recipe() -> None:
    bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    two = World(0, 0, 2)
    plain = Layout.of({"batch_size": 12}, two, "cpu", bn)
    assert (plain.batch, plain.per_process, plain.lr_factor, plain.sync_batchnorm) == (12, 6, 1.0, False)
    assert Layout.of({"batch_size": 12}, two, "cuda", bn).sync_batchnorm            # 6 per GPU: synchronised
    assert not Layout.of({"batch_size": 64}, two, "cuda", bn).sync_batchnorm        # 32 per GPU: its own
    grown = Layout.of({"batch_size": 12, "distributed": {"batch": "per_process"}}, two, "cpu", bn)
    assert (grown.batch, grown.per_process, grown.lr_factor) == (24, 12, 2.0)
    root = Layout.of({"batch_size": 12, "distributed": {"batch": "per_process", "lr_scale": "sqrt"}},
                     World(0, 0, 4), "cpu", bn)
    assert root.lr_factor == pytest.approx(2.0)
    with pytest.raises(EdgekitError, match="train.distributed"):
        Layout.of({"batch_size": 12, "distributed": {"lr_scale": "cubic"}}, two, "cpu", bn)
    with pytest.raises(EdgekitError, match="smaller than the 4 processes"):
        Layout.of({"batch_size": 3}, World(0, 0, 4), "cpu", bn)


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    """The sdc-squeezenet-mrf recipe at 64x64 without dropout (whose masks differ with the batch's shape), 3
    epochs of 12-image batches, calibrated on 2 images a class (the tiny data's)."""
    raw = yaml.safe_load((recipes_dir() / "sdc-squeezenet-mrf.yaml").read_text())
    raw["preprocess"]["size"] = 64
    raw["model"].setdefault("args", {})["dropout"] = 0.0
    raw["train"].update(batch_size=12, epochs=3)
    raw["data"]["builtin"].pop("train", None)
    raw["quantize"]["calibration"]["per_class"] = 2
    raw["validate"]["max_drop"] = {"fp32": 0.01, "fp16": 100.0, "int8": 100.0}   # gate only what a build guarantees
    path = tmp_path_factory.mktemp("recipe") / "ddp-sdc.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _edgekit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "EDGEKIT_NO_PROGRESS": "1", "COLUMNS": "200"})


def _run(folder: Path) -> tuple[dict, list[dict], dict]:
    manifest = json.loads((folder / "manifest.json").read_text())
    history = json.loads((folder / "history.json").read_text())
    return manifest, history, torch.load(folder / "model.pt", weights_only=False)["state_dict"]


def test_two_processes_train_as_one_at_the_same_global_batch(recipe_file, tiny_data, tmp_path) -> None:
    """`edgekit train --nproc 2` (torchrun, gloo) against one process: the same split, the same optimizer steps
    each epoch, the same files. The model: the first epoch's loss within 1 % (both start from the same weights),
    the final weights within 1 % of their largest magnitude, the test accuracy within one image; the difference
    is the order in which the two halves' gradients are summed. Measured (AVX2-only EPYC): epoch losses 0.1 %,
    1.2 %, 5.7 % apart (Adam on 12-image batches amplifies it into the later epochs' mean loss), weights
    0.17 %, accuracy one image; on a Xeon with AMX every epoch's loss was within 1 %."""
    one = _edgekit("train", str(recipe_file), "--data", str(tiny_data), "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    two = _edgekit("train", str(recipe_file), "--data", str(tiny_data), "--out", str(tmp_path / "two"), "--nproc", "2")
    assert two.returncode == 0, two.stderr[-3000:]
    assert "torch.distributed.run --nnodes=1" in two.stderr and "--nproc-per-node=2" in two.stderr
    (m1, h1, w1), (m2, h2, w2) = _run(tmp_path / "one"), _run(tmp_path / "two")
    assert m1["results"]["data"]["split_id"] == m2["results"]["data"]["split_id"]
    assert [h["steps"] for h in h1] == [h["steps"] for h in h2] == [h1[0]["steps"]] * 3
    assert m2["results"]["distributed"] == {"processes": 2, "global_batch": 12, "per_process_batch": 6,
                                            "lr_factor": 1.0, "sync_batchnorm": False}
    assert h2[0]["loss"] == pytest.approx(h1[0]["loss"], rel=0.01)
    scale = max(float(t.abs().max()) for t in w1.values())
    assert max(float((w1[k] - w2[k]).abs().max()) for k in w1) < 0.01 * scale
    one_image = 100.0 / m1["results"]["data"]["test"]
    assert abs(h1[-1]["test"]["accuracy"] - h2[-1]["test"]["accuracy"]) <= one_image + 1e-9
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert not (tmp_path / "two.ckpt").exists()
    assert two.stdout.count("┃ artifact") == 1 and two.stdout.count("epoch 3/3") == 1     # process 0 reports


def _worker(rank: int, out: Path) -> int | None:
    """The pid of the torchrun worker of ``rank`` training into ``out``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            cmd = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if f"LOCAL_RANK={rank}".encode() in env and str(out).encode() in cmd and b"torch.distributed.run" not in cmd:
            return int(proc.name)
    return None


def test_a_killed_process_fails_the_job_and_the_same_command_resumes_it(recipe_file, tiny_data, tmp_path) -> None:
    """`edgekit train --nproc 2`: process 1 is killed once epoch 2's checkpoint is written; the other fails in its
    next collective and the job exits non-zero, leaving the checkpoint; the same command again resumes after the
    checkpointed epoch and ends with every epoch trained once."""
    raw = yaml.safe_load(recipe_file.read_text())
    raw["train"]["epochs"] = 5
    recipe = tmp_path / "ddp-sdc-5.yaml"
    recipe.write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "edgekit", "train", str(recipe), "--data", str(tiny_data), "--out", str(out),
               "--nproc", "2"]
    env = {**os.environ, "EDGEKIT_NO_PROGRESS": "1"}
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    last, killed, deadline = Path(f"{out}.ckpt") / "last.pt", None, time.monotonic() + 300
    try:
        while killed is None and time.monotonic() < deadline and job.poll() is None:
            try:
                if torch.load(last, weights_only=False)["epoch"] >= 2:
                    killed = _worker(1, out)
                    os.kill(killed, signal.SIGKILL)
            except (OSError, RuntimeError, EOFError, KeyError, TypeError):
                pass
            time.sleep(0.02)
        _, stderr = job.communicate(timeout=300)
    finally:
        job.kill()
    assert killed is not None, "the job ended before its checkpoint could be watched"
    assert job.returncode != 0 and "exitcode: -9" in stderr
    kept = torch.load(last, weights_only=False)["epoch"]
    assert 2 <= kept < 5 and not (out / "manifest.json").exists()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"train: resumed from {last} after epoch {kept}" in again.stderr
    manifest, history, _ = _run(out)
    assert [h["epoch"] for h in history] == list(range(1, 6)) and manifest["results"]["epochs"] == 5
    assert not last.exists()


def test_a_build_on_two_processes_leaves_a_single_process_run_folder(recipe_file, tiny_data, tmp_path) -> None:
    """`edgekit build --nproc 2`: both processes train, process 0 alone runs every later stage and reports; the
    run folder holds the same files as a single process's build of the same recipe."""
    folders = {}
    for label, extra in (("one", []), ("two", ["--nproc", "2"])):
        done = _edgekit("build", str(recipe_file), "--target", "cpu", "--data", str(tiny_data), "--epochs", "1",
                        "--no-prune", "--out", str(tmp_path / label), *extra)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("build summary:") == 1
        folders[label] = next((tmp_path / label).iterdir())
    files = {k: sorted(str(p.relative_to(v)) for p in v.rglob("*")) for k, v in folders.items()}
    assert files["one"] == files["two"]
    built = json.loads((folders["two"] / "train" / "manifest.json").read_text())["results"]
    assert built["distributed"]["processes"] == 2
