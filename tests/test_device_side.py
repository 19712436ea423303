"""The device side as a Jetson runs it: ``edgekit-device.pyz`` from the kit, on JetPack 4.6's Python 3.6
(vermin), importing nothing but numpy and the standard library, and building a kit's engines with the
calibration cache of the installed TensorRT."""
from __future__ import annotations

import ast
import importlib.machinery
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from trt_fakes import FakeCuda, make_trt

from edgekit.backends.tensorrt import calibration_cache as cc
from edgekit.backends.tensorrt import jetson
from edgekit.backends.tensorrt.kit_build import build_from_kit
from edgekit.camera import app as device_cli
from edgekit.camera import pack

HOST_ONLY = {"torch", "onnx", "onnxruntime", "openvino", "yaml", "typer", "cv2", "PIL", "scipy", "tqdm", "rich",
             "matplotlib", "nncf"}


def vermin(*paths: Path) -> subprocess.CompletedProcess:
    """vermin's verdict for Python 3.6 (annotations evaluated, as 3.6 does without PEP 563)."""
    return subprocess.run([sys.executable, "-c", "import sys; from vermin.main import main; sys.exit(main())", "-t=3.6-", "--violations", "--eval-annotations",
                           "--no-tips", "--no-parse-comments", *map(str, paths)],
                          capture_output=True, text=True)


# methods vermin cannot see on a receiver whose type it does not know (it types literals only)
UNTYPED_NEWER = {"removesuffix": "3.9", "removeprefix": "3.9", "is_relative_to": "3.9", "with_stem": "3.9",
                 "bit_count": "3.10", "readlink": "3.9"}


def newer_methods(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    return [f"{path.name}:{n.lineno} .{n.attr}() needs Python {UNTYPED_NEWER[n.attr]}"
            for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in UNTYPED_NEWER
            and not (isinstance(n.value, ast.Name) and n.value.id == "os")]     # os.readlink is old


def test_device_code_runs_on_the_python_of_jetpack_4_6() -> None:
    files = pack.device_files()
    assert all(f.is_file() for f in files)
    result = vermin(*files)
    assert result.returncode == 0, result.stdout
    assert [hit for f in files for hit in newer_methods(f)] == []


def test_the_minimum_python_check_can_fail(tmp_path) -> None:
    """What the device code once held: subprocess.run(capture_output=...) (3.7), str.removesuffix (3.9)."""
    bad = tmp_path / "jetson.py"
    bad.write_text(Path(jetson.__file__).read_text() + "\n\ndef mode(name: str) -> str:\n"
                   "    out = subprocess.run(['nvpmodel', '-q'], capture_output=True).stdout\n"
                   "    return name.removesuffix('W')\n")
    result = vermin(bad)
    assert result.returncode != 0 and "capture_output" in result.stdout
    assert newer_methods(bad) == [f"jetson.py:{len(bad.read_text().splitlines())} .removesuffix() needs Python 3.9"]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Path:
    return pack.write_app(tmp_path_factory.mktemp("app") / pack.APP)


def test_the_device_app_imports_no_host_dependency(app) -> None:
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "import edgekit, edgekit.camera.app, edgekit.backends.tensorrt.kit_build; "
             "print(edgekit.__file__); print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", probe, str(app)], capture_output=True, text=True, check=True)
    where, modules = out.stdout.splitlines()
    assert where.startswith(str(app)), where          # the zipped copy, not this checkout
    assert not HOST_ONLY & set(modules.split()), HOST_ONLY & set(modules.split())


def test_the_line_starts_without_the_workstations_libraries(app) -> None:
    """The camera's run path (the app, the runtime, a slot's model, frame sources, metrics), from the zipapp,
    imports no torch, onnx, yaml, typer, rich, matplotlib or other workstation library (-X importtime)."""
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "import edgekit.camera.app, edgekit.camera.runtime, edgekit.camera.model, edgekit.camera.sources")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", probe, str(app)], capture_output=True, text=True,
                         check=True)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert {"edgekit", "numpy", "cv2"} <= imported
    assert not (HOST_ONLY - {"cv2", "onnxruntime", "openvino"} | {"prometheus_client", "asyncssh"}) & imported


def test_the_device_app_runs_and_fails_in_one_line_without_tensorrt(app, orin_kit) -> None:
    help_text = subprocess.run([sys.executable, str(app), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "build" in help_text.stdout and "bench" in help_text.stdout
    info = subprocess.run([sys.executable, str(app), "info", "--kit", str(orin_kit)], capture_output=True, text=True)
    assert info.returncode == 2 and info.stderr.count("\n") == 1
    assert info.stderr.startswith("error: TensorRT's Python bindings are not installed here")


def test_every_kit_carries_the_device_app(orin_kit) -> None:
    assert (orin_kit / pack.APP).is_file()
    text = (orin_kit / "BUILD_ON_DEVICE.md").read_text()
    assert f"python3 {pack.APP} build" in text
    assert "| 5.1–5.1.5 | 8.5.2 | 3.8 |" in text and "| 6.1–6.2.1 | 10.3.0 | 3.10 |" in text


def test_device_cli_builds_benches_and_reports_routes(orin_kit, tmp_path, capsys) -> None:
    trt = make_trt("8.5.2.2", cuda=FakeCuda())
    assert device_cli.main(["info", "--kit", str(orin_kit)], trt=trt, cuda=trt._cuda) == 0
    out = capsys.readouterr().out
    assert "tensorrt: 8.5.2.2" in out and "int8       calibration-cache  fp32.onnx" in out
    trt = make_trt("8.5.2.2", cuda=FakeCuda())
    assert device_cli.main(["build", "--kit", str(orin_kit), "--out", str(tmp_path), "--precision", "fp16"],
                           trt=trt, cuda=trt._cuda) == 0
    assert json.loads((tmp_path / "device_build.json").read_text())[0]["precision"] == "fp16"
    assert device_cli.main(["bench", str(tmp_path / "tensorrt-fp16"), "--iters", "5", "--warmup", "1"],
                           trt=trt, cuda=trt._cuda) == 0
    rows = json.loads((tmp_path / "tensorrt-fp16" / "bench.json").read_text())["rows"]
    assert [r["timing"] for r in rows] == ["gpu compute only", "copies + inference"]
    assert device_cli.main(["bench", str(tmp_path)], trt=trt, cuda=trt._cuda) == 2
    assert "no model.engine" in capsys.readouterr().err


@pytest.mark.parametrize("version", ["8.5.2.2", "8.4.1.5"])
def test_the_installed_tensorrt_gets_a_cache_with_its_own_header(orin_kit, tmp_path, version) -> None:
    """The kit's 8.5.2 cache as it is, or its scales under 8.4.1's header: never a header TensorRT skips."""
    trt = make_trt(version, cuda=FakeCuda())
    done = build_from_kit(orin_kit, tmp_path, ["int8"], trt=trt, cuda=trt._cuda)
    header, _, scales = cc.read(Path(done[0]["path"]) / "calibration.cache")
    _, _, kit_scales = cc.read(orin_kit / "calibration.8.5.2.cache")
    assert f"{header}" == ".".join(version.split(".")[:3]) and scales == kit_scales


def test_a_kit_without_caches_says_so_to_a_calibration_cache_tensorrt(orin_kit, tmp_path) -> None:
    from edgekit.errors import EdgekitError

    kit = json.loads((orin_kit / "kit.json").read_text())
    copy = tmp_path / "kit"
    subprocess.run(["cp", "-r", str(orin_kit), str(copy)], check=True)
    (copy / "kit.json").write_text(json.dumps({**kit, "calibration_caches": {}}))
    trt = make_trt("8.5.2.2", cuda=FakeCuda())
    with pytest.raises(EdgekitError, match=r"TensorRT 8\.5\.2 builds INT8 from a calibration cache, and this kit "
                                           r"has none"):
        build_from_kit(copy, tmp_path / "out", ["int8"], trt=trt, cuda=trt._cuda)


def test_each_jetson_target_says_its_device_side() -> None:
    from edgekit.targets import load_target

    from edgekit.backends.tensorrt.kit import device_side

    assert device_side(load_target("jetson-nano")).endswith("TensorRT 8.2.1 on Python 3.6")
    assert "TensorRT 10.3.0 on Python 3.10" in device_side(load_target("jetson-orin"))
    assert device_side(load_target("intel-cpu")) == "-"


def test_type_stubs_alone_are_not_taken_for_tensorrt(monkeypatch) -> None:
    """tensorrt-stubs installs a tensorrt/ folder of .pyi files, which imports as an empty package."""
    import types

    from edgekit.backends.tensorrt.runner import import_tensorrt
    from edgekit.errors import EdgekitError

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(EdgekitError, match="TensorRT's Python bindings are not installed here"):
        import_tensorrt()


# The interpreters JetPack 4.6 and 5.x ship, where this machine has them (pyenv), or EDGEKIT_DEVICE_PYTHONS
# (paths separated by os.pathsep): numpy pinned to a release that supports each, the OpenCV each JetPack ships
# (4.1.1 on 4.6, 4.5.4 on 5.x), and a CPU slot's runtimes: ONNX Runtime (1.10: the last for Python 3.6) and, on
# 3.8, OpenVINO 2024.4 (no release with its C API 2.0 installs on 3.6).
OLD_PYTHONS = {"3.6": ["numpy==1.19.5", "cryptography<41", "opencv-python-headless==4.1.1.26", "onnxruntime==1.10.0"],
               "3.8": ["numpy==1.24.4", "cryptography<45", "opencv-python-headless==4.5.4.60", "onnxruntime==1.19.2",
                       "openvino==2024.4.0"]}
RUNTIMES = {"3.6": ["onnxruntime"], "3.8": ["onnxruntime", "openvino"]}


def old_pythons() -> list[Path]:
    listed = os.environ.get("EDGEKIT_DEVICE_PYTHONS")
    if listed:
        return [Path(p) for p in listed.split(os.pathsep) if p]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    return [p / "bin" / "python" for minor in OLD_PYTHONS for p in sorted(root.glob(f"{minor}.*"))[-1:]
            if (p / "bin" / "python").is_file()]


@pytest.fixture(scope="module", params=old_pythons() or [None], ids=lambda p: p.parent.parent.name if p else "none")
def jetpack_python(request, pytestconfig) -> tuple[str, Path]:
    """(version, interpreter) of a venv on JetPack 4.6's or 5's Python with what the camera needs (kept in
    pytest's cache between runs)."""
    python = request.param
    if python is None:
        pytest.skip("no Python 3.6 or 3.8 here (pyenv, or EDGEKIT_DEVICE_PYTHONS)")
    version = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    venv = pytestconfig.cache.mkdir(f"device-python-{version}")
    if not (venv / "bin" / "python").is_file():
        subprocess.run([str(python), "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    if subprocess.run([str(venv / "bin" / "python"), "-c", "import numpy, cryptography, cv2, "
                       + ", ".join(RUNTIMES[version])], capture_output=True).returncode:
        subprocess.run(pip + ["--upgrade", "pip<22"], check=True, capture_output=True)   # knows manylinux2014 wheels
        subprocess.run(pip + ["--only-binary=:all:"] + OLD_PYTHONS[version], check=True, capture_output=True)
    return version, venv / "bin" / "python"


def test_the_device_app_builds_a_kit_on_jetpacks_own_python(jetpack_python, tiny_recipe, tiny_quantized,
                                                           tmp_path) -> None:
    """Really run on Python 3.6 / 3.8: the app in a Xavier NX kit builds FP16 and INT8 for TensorRT 8.2.1 (a
    minimal TensorRT of the probe's own): opset-13 model, re-headed cache; and a bundle signed here is verified
    and unpacked there, its altered copy refused."""
    from edgekit.backends.tensorrt import kit as kit_mod
    from edgekit.stages.compile import kit_extras
    from edgekit.targets import load_target

    version, python = jetpack_python
    kit = tmp_path / "kit"
    kit_mod.write_kit(tiny_quantized, load_target("jetson-xavier-nx"), kit, ["fp32", "fp16", "int8"],
                      kit_extras(tiny_recipe))
    from edgekit.camera.bundle import HEADER_SIZE, unverified_tar
    from edgekit.deploy import keys
    from edgekit.deploy.bundle import write_bundle

    signing = keys.load_private(keys.new_key("mill", tmp_path / "keys"))
    files = {f"model/{p.name}": p for p in sorted(kit.iterdir()) if p.is_file()}
    write_bundle(files, {"kind": "device-kit"}, signing, tmp_path / "b.bundle")
    altered = tmp_path / "src" / "kit.json"
    altered.parent.mkdir()
    altered.write_text((kit / "kit.json").read_text().replace("jetson-xavier-nx", "jetson-nano"))
    write_bundle({**files, "model/kit.json": altered}, {"kind": "device-kit"}, signing, tmp_path / "x.bundle")
    with unverified_tar(tmp_path / "b.bundle") as good, tarfile.open(tmp_path / "bad.tar", "w") as bad:
        signed = {m.name: good.extractfile(m).read() for m in good.getmembers()}
        with unverified_tar(tmp_path / "x.bundle") as other:     # the altered payload under the good signature
            signed["payload/model/kit.json"] = other.extractfile("payload/model/kit.json").read()
        for m in good.getmembers():
            m.size = len(signed[m.name])
            bad.addfile(m, io.BytesIO(signed[m.name]))
    (tmp_path / "bad.bundle").write_bytes((tmp_path / "b.bundle").read_bytes()[:HEADER_SIZE]
                                          + (tmp_path / "bad.tar").read_bytes())
    probe = Path(__file__).parent / "device_probe.py"
    run = subprocess.run([str(python), "-I", str(probe), str(kit), str(tmp_path / "out"),
                          str(tmp_path / "b.bundle"), str(tmp_path / "keys"), str(tmp_path / "bad.bundle")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1].startswith(f"ok {version}.")


def _cpu_slot_bundle(recipe, export_dir: Path, images: list, key, out: Path, backend: str) -> Path:
    """A signed bundle of the recipe's model for a CPU camera, as ``edgekit bundle`` makes one: for ONNX Runtime
    the export's opset-13 copy (ONNX Runtime 1.10, the last release for Python 3.6, reads opset <= 15), for
    OpenVINO the FP32 IR this machine's OpenVINO writes; its pipeline.json, golden frames with the outputs the
    backend gives for them here, and a drift reference of the frames' image features."""
    import numpy as np

    from edgekit.backends import get_backend
    from edgekit.backends.openvino import compile as compile_ir
    from edgekit.camera import drift, golden
    from edgekit.data import robustness
    from edgekit.drift.reference import Measured
    from edgekit.deploy.bundle import write_bundle
    from edgekit.stages.compile import write_pipeline
    from edgekit.stages.export import copy_name

    art = out.parent / "artifact"
    art.mkdir(parents=True)
    if backend == "openvino":
        model = compile_ir(export_dir / "model.onnx", art, "fp32")
    else:
        model = art / "model.onnx"
        model.write_bytes((export_dir / copy_name(13)).read_bytes())
    write_pipeline(recipe, art)
    (art / "manifest.json").write_text(json.dumps({"stage": "compile", "results": {"file": model.name}}))
    inputs = recipe.preprocess.batch(images)
    runner = get_backend(backend).load(model, threads=1)
    logits = np.concatenate([runner.infer(x[None])[0] for x in inputs])
    files = {f"model/{p.name}": p for p in sorted(art.iterdir()) if p.is_file()}
    for path in golden.write(art / "golden", images, inputs, ["logits"], {"logits": logits},
                             {"fp32": {"artifact": f"{backend}-fp32", "outputs": {"logits": logits}}}):
        files[f"golden/{path.name}"] = path
    measured = Measured(images, recipe.preprocess.size)
    conditions = {name: {"values": measured.condition(name, degraded), "accuracy": None}
                  for name, degraded in robustness.degraded(images, 0)}
    reference = drift.Reference({"format": drift.FORMAT, "size": measured.size, "values": measured.values,
                                 "conditions": conditions})
    files[f"{drift.FOLDER}/{drift.FILE}"] = reference.write(art)
    write_bundle(files, {"recipe": recipe.name, "kind": "artifact", "artifact": f"{backend}-fp32",
                         "backend": backend, "precision": "fp32", "target": "cpu"}, key, out)
    return out


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_the_camera_runs_the_line_on_jetpacks_own_python(jetpack_python, backend, tiny_recipe, tiny_quantized,
                                                         tiny_data, tmp_path) -> None:
    """Issue 29: the whole camera side under real CPython 3.6 / 3.8 with the OpenCV its JetPack ships, from the
    zipapp alone: verify a signed bundle, golden-check its slot, activate it, and ``run`` the line on a video
    through ONNX Runtime, or OpenVINO 2024.4 on 3.8 (an older release than the one that wrote the IR, and the C
    API's element types numbered as before 2026), answering every frame as the workstation's runtime does."""
    import cv2

    from edgekit.camera import drift
    from edgekit.camera.runtime import RunOptions, run
    from edgekit.deploy import keys, loopback

    version, python = jetpack_python
    if backend not in RUNTIMES[version]:
        pytest.skip(f"no {backend} release for Python {version} that edgekit runs")
    images = [cv2.imread(str(p)) for p in sorted((tiny_data / "IMAGES").glob("*.png"))[::7][:8]]
    key_file = keys.new_key("mill", tmp_path / "keys")
    bundle = _cpu_slot_bundle(tiny_recipe, tiny_quantized.parent / "export", images, keys.load_private(key_file),
                              tmp_path / "src" / "line.bundle", backend)
    install = loopback.prepare_install(tmp_path / "camera", key_file.with_suffix(".pub"))
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (200, 200))
    for i in range(24):
        writer.write(cv2.resize(images[i % len(images)], (200, 200)))
    writer.release()
    app = pack.write_app(tmp_path / pack.APP)

    def device(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-I", str(app), *args, "--install", str(install)], capture_output=True,
                              text=True, timeout=300)

    verified = device("verify", str(bundle))
    assert verified.returncode == 0, verified.stderr
    slot = json.loads(verified.stdout)["slot"]
    checked = device("golden", slot)
    assert checked.returncode == 0 and json.loads(checked.stdout)["images"] == len(images), checked.stderr
    assert device("activate", slot).returncode == 0
    ran = device("run", "--source", str(video), "--out", str(tmp_path / "line.jsonl"), "--status-port", "0",
                 "--drift-window", "8", "--drift-state-every", "4", "--drift-budget", "1", "--drift-false-alarms", "1e6")
    assert ran.returncode == 0, ran.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "line.jsonl").read_text().splitlines()]
    states = {line["frame"]: line["drift"] for line in lines if "drift" in line}     # the watch, on 3.6 / 3.8 too
    assert sorted(states) == [8, 12, 16, 20] and set(states[20]["features"]) == set(drift.IMAGE_FEATURES)
    summary = json.loads((tmp_path / "line.summary.json").read_text())
    assert len(lines) == summary["frames"] == 24 and {line["slot"] for line in lines} == {slot}
    assert summary["model"]["backend"] == backend and "status: http://127.0.0.1:" in ran.stderr
    here = io.StringIO()
    run(RunOptions(str(video), install, status_port=None), here, log=lambda line: None)
    ours = [json.loads(line) for line in here.getvalue().splitlines()]
    assert [line["class"] for line in lines] == [line["class"] for line in ours]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(lines, ours)) < 0.01


def test_a_device_kit_slot_runs_the_line_through_tensorrt_8_2(tiny_recipe, tiny_quantized, tiny_data, tmp_path,
                                                               monkeypatch) -> None:
    """The TensorRT route of the camera, end to end, against a TensorRT 8.2.1 double that offers nothing 8.2
    lacks (tests/test_trt_api_conformance.py): a Xavier NX kit bundled, verified, its engines built on the
    camera, golden-checked and activated by the device app, then `run` on a video through the engine (binding
    API, execute_async_v2) and the kit's pipeline.json; everything it asked of TensorRT is in 8.2's API
    reference. The double computes (k + 1) * sum(input) per output, so the golden outputs are that."""
    import cv2
    import numpy as np
    import yaml
    from trt_api import Recorder, Release, violations
    from trt_fakes import expected_outputs

    from edgekit.backends.tensorrt import kit as kit_mod
    from edgekit.backends.tensorrt import runner as runner_mod
    from edgekit.camera import golden, slots
    from edgekit.camera.runtime import RunOptions, run
    from edgekit.deploy import keys, loopback
    from edgekit.deploy.bundle import write_bundle
    from edgekit.stages.compile import kit_extras
    from edgekit.targets import load_target

    kit = tmp_path / "kit"
    kit_mod.write_kit(tiny_quantized, load_target("jetson-xavier-nx"), kit, ["fp16", "int8"], kit_extras(tiny_recipe))
    images = [cv2.imread(str(p)) for p in sorted((tiny_data / "IMAGES").glob("*.png"))[::9][:6]]
    inputs = tiny_recipe.preprocess.batch(images)
    outputs = np.concatenate([expected_outputs(x[None], [[1, len(tiny_recipe.classes)]])[0] for x in inputs])
    files = {f"model/{p.name}": p for p in sorted(kit.iterdir()) if p.is_file()}
    for path in golden.write(tmp_path / "golden", images, inputs, ["logits"], {"logits": outputs},
                             {p: {"artifact": f"openvino-{p}", "outputs": {"logits": outputs}} for p in ("fp16", "int8")}):
        files[f"golden/{path.name}"] = path
    key = keys.new_key("mill", tmp_path / "keys")
    write_bundle(files, {"recipe": tiny_recipe.name, "kind": "device-kit", "artifact": "tensorrt-kit",
                         "backend": "tensorrt", "precision": None, "target": "jetson-xavier-nx"},
                 keys.load_private(key), tmp_path / "kit.bundle")
    install = loopback.prepare_install(tmp_path / "camera", key.with_suffix(".pub"))

    recorder = Recorder({"Builder": "Builder", "Network": "INetworkDefinition", "Layer": "ILayer",
                         "Parser": "OnnxParser", "Config": "IBuilderConfig", "PoolConfig": "IBuilderConfig",
                         "TimingCache": "ITimingCache", "BindingEngine": "ICudaEngine",
                         "BindingContext": "IExecutionContext", "Runtime": "Runtime", "Logger": "Logger"},
                        {"IInt8EntropyCalibrator2"})
    raw = make_trt("8.2.1.8")
    raw.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)     # importable, as JetPack installs it
    trt = recorder.module(raw)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(runner_mod, "cuda_api", lambda: raw._cuda)      # the double computes in its own memory
    slot = slots.verify(install, tmp_path / "kit.bundle")["slot"]
    assert device_cli.main(["build", "--kit", str(install / slots.SLOTS / slot / "model"), "--out",
                            str(install / slots.ENGINES / slot), "--json"], trt=trt, cuda=raw._cuda) == 0
    assert device_cli.main(["golden", slot, "--install", str(install)]) == 0
    slots.activate(install, slot)
    video = tmp_path / "line.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (200, 200))
    for i in range(12):
        writer.write(images[i % len(images)])
    writer.release()
    out = io.StringIO()
    summary = run(RunOptions(str(video), install, status_port=None), out, log=lambda line: None)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 12 and summary["model"]["backend"] == "tensorrt" and summary["model"]["precision"] == "int8"
    assert all(line["class"] == tiny_recipe.classes[0] for line in lines)      # equal logits: the first class
    allowed = yaml.safe_load((Path(__file__).parent / "data" / "tensorrt_api.yaml").read_text())["8.2.1"]["exists"]
    uses = {u for u in recorder.uses if not (u.name.startswith("__") and u.name != "__version__")}
    assert any(u.name == "execute_async_v2" for u in uses)
    assert [v for v in violations(uses, None, Release("8.2.1", allowed=frozenset(allowed)))] == []
