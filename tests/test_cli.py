"""The command line: tables, JSON, exit codes, and one clear line for each kind of bad input."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper


def edgekit(*args: str, cwd: Path | None = None, columns: int = 200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={"EDGEKIT_NO_PROGRESS": "1", "COLUMNS": str(columns), "PATH": "/usr/bin:/bin"})


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_recipes_and_targets_tables(tmp_path: Path) -> None:
    proc = edgekit("recipes", "--json", tmp_path / "r.json")
    assert proc.returncode == 0 and "sdc-squeezenet-mrf" in proc.stdout and "classification" in proc.stdout
    listed = {r["name"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert listed["sdc-squeezenet-mrf"]["dataset"] == "NEU-CLS"
    assert listed["raf-ssd"]["task"] == "detection" and "map 75.1" in listed["raf-ssd"]["figures"]
    proc = edgekit("targets", "--json", tmp_path / "t.json")
    names = {t["name"] for t in json.loads((tmp_path / "t.json").read_text())}
    assert proc.returncode == 0 and {"jetson-orin-agx", "jetson-nano", "desktop-cuda", "intel-cpu", "cpu"} <= names


def test_names_are_whole_on_an_80_column_terminal() -> None:
    from edgekit.recipes import list_recipes
    from edgekit.targets import list_targets

    for command, names in (("recipes", [r.name for r in list_recipes()]), ("targets", [t.name for t in list_targets()])):
        proc = edgekit(command, columns=80)
        assert proc.returncode == 0, proc.stderr
        assert max(len(line) for line in proc.stdout.splitlines()) <= 80
        cells = {c.strip() for line in proc.stdout.splitlines() for c in line.split("│")}
        assert set(names) <= cells, set(names) - cells
        assert "…" not in proc.stdout
    proc = edgekit("targets", "jetson-orin", columns=80)
    assert proc.returncode == 0 and "jetson-orin-agx" in proc.stdout and "compute capability" in proc.stdout


def test_unknown_recipe_and_target(tmp_path: Path) -> None:
    assert "unknown recipe 'yolo-x'" in one_error_line(edgekit("build", "yolo-x", "--target", "cpu"))
    line = one_error_line(edgekit("build", "sdc-squeezenet-mrf", "--target", "jetson-tx1", "--out", tmp_path))
    assert "jetson-tx1" in line
    assert not any(tmp_path.iterdir())


def test_missing_and_empty_dataset(tmp_path: Path) -> None:
    line = one_error_line(edgekit("train", "sdc-squeezenet-mrf", "--data", tmp_path / "none", "--out", tmp_path / "t"))
    assert f"{tmp_path / 'none'}: dataset folder not found" in line
    (tmp_path / "empty").mkdir()
    line = one_error_line(edgekit("train", "sdc-squeezenet-mrf", "--data", tmp_path / "empty", "--out", tmp_path / "t"))
    assert "no images found" in line
    assert not (tmp_path / "t").exists()


def test_corrupt_image_stops_training_without_an_artifact(tmp_path: Path, tiny_data: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "IMAGES" / "crazing_4.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    line = one_error_line(edgekit("train", "sdc-squeezenet-mrf", "--data", data, "--out", tmp_path / "t"))
    assert "crazing_4.png: corrupt image (a PNG header, then unreadable data)" in line
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.*"))


def test_bad_onnx_files(tmp_path: Path, tiny_data: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not protobuf")
    line = one_error_line(edgekit("quantize", "sdc-squeezenet-mrf", "--onnx", junk, "--data", tiny_data,
                                  "--calibration", tmp_path / "c.yaml", "--out", tmp_path / "q"))
    assert f"{junk}: not a valid ONNX model" in line
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 224, 224])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 224, 224])
    wrong = tmp_path / "wrong.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["input"], ["y"])], "g", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), str(wrong))
    line = one_error_line(edgekit("quantize", "sdc-squeezenet-mrf", "--onnx", wrong, "--data", tiny_data,
                                  "--calibration", tmp_path / "c.yaml", "--out", tmp_path / "q"))
    assert "input shape (1, 3, 224, 224) does not match recipe sdc-squeezenet-mrf (needs (1, 3, 200, 200))" in line
    assert not (tmp_path / "q").exists()


def test_bad_checkpoint_and_manifest(tmp_path: Path, tiny_data: Path) -> None:
    torch.save({"state_dict": {"nonsense": torch.zeros(1)}}, tmp_path / "x.pt")
    line = one_error_line(edgekit("export", "sdc-squeezenet-mrf", "--checkpoint", tmp_path / "x.pt", "--out", tmp_path / "e"))
    assert "x.pt: does not fit model squeezenet1_0_mrf" in line
    line = one_error_line(edgekit("prune", "sdc-squeezenet-mrf", "--checkpoint", tmp_path / "x.pt", "--data", tiny_data,
                                  "--out", tmp_path / "p"))
    assert "sdc-squeezenet-mrf.yaml: the recipe prunes nothing" in line and not (tmp_path / "p").exists()
    (tmp_path / "m.yaml").write_text("images: [unclosed")
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 200, 200])
    ok = tmp_path / "ok.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["input"], ["y"])], "g", [x],
                                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 200, 200])]),
                                opset_imports=[helper.make_opsetid("", 17)]), str(ok))
    line = one_error_line(edgekit("quantize", "sdc-squeezenet-mrf", "--onnx", ok, "--data", tiny_data,
                                  "--calibration", tmp_path / "m.yaml", "--out", tmp_path / "q"))
    assert "m.yaml: malformed YAML" in line


def test_data_synth_command(tmp_path: Path) -> None:
    proc = edgekit("data", "synth", tmp_path / "d", "--per-class", "2")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "d" / "IMAGES").iterdir())) == 12
    assert str(tmp_path / "d") in one_error_line(edgekit("data", "synth", tmp_path / "d", "--per-class", "2"))


def test_bench_command_on_an_onnx_file(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["y"])], "g", [x], [y])
    model = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=99), str(model))
    line = one_error_line(edgekit("bench", model, "--backend", "onnxruntime"))
    assert f"{model}: ONNX Runtime cannot load it" in line and "IR version" in line
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(model))
    proc = edgekit("bench", model, "--batch", "1", "--batch", "2", "--iters", "3", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "relu.onnx.bench.json").read_text())["rows"]
    assert (tmp_path / "relu.onnx.bench.latency.png").read_bytes().startswith(b"\x89PNG")
    assert all(len(r["samples_ms"]) == r["calls"] for r in rows)
    assert {(r["backend"], r["batch"]) for r in rows} == {(b, n) for b in ("onnxruntime", "openvino") for n in (1, 2)}


def test_build_for_a_jetson_says_what_is_left_on_the_device(tmp_path: Path, tiny_data: Path,
                                                            tiny_recipe_path: Path) -> None:
    proc = edgekit("build", tiny_recipe_path, "--target", "jetson-orin", "--data", tiny_data, "--out", tmp_path,
                   "--epochs", "1", "--pretrained", "none", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Left to do on the device" in proc.stdout and "BUILD_ON_DEVICE.md" in proc.stdout
    run = tmp_path / "sdc-squeezenet-mrf--jetson-orin-agx"
    assert (run / "compile" / "tensorrt-kit" / "int8.onnx").is_file()
    assert json.loads((run / "build.json").read_text())["left_to_do"].startswith("build the TensorRT engines")
    assert "preflight for jetson-orin-agx" in proc.stdout and "fps ESTIMATE, not measured" in proc.stdout
    kit = run / "compile" / "tensorrt-kit"
    assert (kit / "preflight.md").is_file() and (kit / "calibration.8.5.2.cache").read_text().startswith("TRT-8502-")
    if importlib.util.find_spec("tensorrt") is None:   # the device step, here: one clear line, exit 2
        line = one_error_line(edgekit("compile", "--kit", kit))
        assert "TensorRT's Python bindings are not installed" in line
    line = one_error_line(edgekit("bench", kit))
    assert "this is a device kit: build it with `edgekit compile --kit`" in line


def _panel_entries(text: str, panel: str) -> list[tuple[str, list[str], int]]:
    """(name, its help lines, the help column's width) of each row of a rich help panel."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"╭─ {panel}"))
    entries: list[tuple[str, list[str], int]] = []
    for line in lines[start + 1:]:
        if line.startswith("╰"):
            break
        inner = line[1:-1]
        name = inner[:inner.index(" ", 1)].strip() if inner[1:2].strip() else ""
        if name:
            offset = len(inner) - len(inner.lstrip()) + len(name)
            offset += len(inner[offset:]) - len(inner[offset:].lstrip())
            entries.append((name, [], len(inner) - offset - 1))
        entries[-1][1].append(inner[len(inner) - entries[-1][2] - 1:].strip())
    return entries


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_help_texts_read_as_sentences_at_any_width(columns: int) -> None:
    """A command's help wraps only where the terminal ends: every line but an entry's last is full (its next
    word would not fit), and each help ends as a sentence does."""
    text = edgekit("--help", columns=columns).stdout
    entries = _panel_entries(text, "Commands")
    assert {name for name, _, _ in entries} >= {"build", "prune", "compile", "run", "bench", "device"}
    for name, help_lines, width in entries:
        for line, following in zip(help_lines, help_lines[1:]):
            assert len(line) + 1 + len(following.split()[0]) > width, f"{name}: line broken early: {line!r}"
        assert help_lines[-1].endswith((".", ")")), f"{name}: {help_lines[-1]!r}"


def test_the_command_line_starts_without_torch_and_refuses_a_bad_recipe_before_loading_it() -> None:
    """`edgekit recipes`, `--help` and a mistyped recipe or target answer without importing torch (about 2 s of
    every invocation on a 2-core CPU): torch loads only in the commands that train, export or quantize."""
    probe = ("import sys, runpy; sys.argv = ['edgekit'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('edgekit', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
             "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', code)")
    for args, code in ((["recipes"], "0"), (["build", "nope", "--target", "intel-cpu"], "2"),
                       (["train", "nope", "--data", "/nowhere", "--out", "/nowhere"], "2"),
                       (["build", "sdc-squeezenet-mrf", "--target", "no-such-target"], "2")):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True)
        assert done.stdout.strip().splitlines()[-1] == f"NO-TORCH {code}", (args, done.stdout[-500:], done.stderr[-500:])
