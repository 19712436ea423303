"""edgekit's TensorRT code and its test doubles held to descriptions written by others: the type stubs
generated from NVIDIA's TensorRT 10.13 bindings (``tensorrt-stubs``) for names and signatures, the names
NVIDIA's own bindings wheels of 8.6.1, 10.0.1, 10.3, 11.0 and 11.4 register, and for 8.2 and 8.5 (no wheel)
an allow-list from each release's API reference (tests/data/tensorrt_api.yaml).

Every attribute edgekit reads, sets or calls on TensorRT while building engines (FP32, FP16 on a DLA
with a timing cache, INT8 by Q/DQ or by calibration cache) and running one is recorded under the real
API's class names and must exist there, with arguments that bind to one of its signatures."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgekit.artifacts import write_manifest
from edgekit.backends.tensorrt import calibration_cache as cc
from edgekit.backends.tensorrt.builder import EngineRequest, build_engine, has_calibrators, has_precision_flags
from edgekit.backends.tensorrt.engine import device_facts
from edgekit.backends.tensorrt.runner import TensorRTRunner
from edgekit.backends.tensorrt.version import TrtVersion
from trt_api import Recorder, Release, Stubs, Use, violations
from trt_fakes import FakeCuda, make_trt

STUBS = "10.13.0.35.1"           # tensorrt-stubs: generated from the TensorRT 10.13.0.35 bindings
RELEASES = yaml.safe_load((Path(__file__).parent / "data" / "tensorrt_api.yaml").read_text())
# the doubles' classes -> the real API's (tests/trt_fakes.py)
NAMES = {"Builder": "Builder", "Network": "INetworkDefinition", "Layer": "ILayer", "Parser": "OnnxParser",
         "Config": "IBuilderConfig", "PoolConfig": "IBuilderConfig", "TimingCache": "ITimingCache",
         "TensorEngine": "ICudaEngine", "BindingEngine": "ICudaEngine", "TensorContext": "IExecutionContext",
         "BindingContext": "IExecutionContext", "Runtime": "Runtime", "Logger": "Logger"}
SUBCLASSED = {"IInt8EntropyCalibrator2"}      # edgekit derives its cache calibrator from it: handed over as is


def _download(pytestconfig, spec: str, pattern: str) -> Path:
    """A wheel fetched once into pytest's cache, without its dependencies (TensorRT itself, which no index here
    serves), for CPython 3.11 on x86-64 whatever runs the tests."""
    folder = pytestconfig.cache.mkdir("tensorrt-wheels")
    wheels = sorted(folder.glob(pattern))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.11", "--implementation", "cp", "--abi", "none",
                        "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64",
                        "--dest", str(folder), spec], capture_output=True)
        wheels = sorted(folder.glob(pattern))
    if not wheels:
        if os.environ.get("EDGEKIT_OFFLINE"):
            pytest.skip(f"EDGEKIT_OFFLINE: {spec} cannot be fetched")
        pytest.fail(f"could not download {spec} from the package index")
    return wheels[0]


def release(pytestconfig, version: str) -> Release:
    entry = RELEASES[version]
    absent = frozenset(entry.get("absent", ()))
    if "exists" in entry:
        return Release(version, allowed=frozenset(entry["exists"]), absent=absent)
    name, _, pinned = entry["bindings"].partition("==")
    wheel = _download(pytestconfig, entry["bindings"], f"{name.replace('-', '_')}-{pinned}-*.whl")
    return Release.from_wheel(version, wheel, absent)


@pytest.fixture(scope="session")
def stubs(pytestconfig) -> Stubs:
    """The stubs wheel, fetched once into pytest's cache (it names TensorRT itself as a dependency, which no
    index here serves: hence a download without dependencies rather than a test requirement)."""
    folder = pytestconfig.cache.mkdir("tensorrt-stubs")
    wheels = sorted(folder.glob(f"tensorrt_stubs-{STUBS}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(folder),
                        f"tensorrt-stubs=={STUBS}"], capture_output=True)
        wheels = sorted(folder.glob(f"tensorrt_stubs-{STUBS}-*.whl"))
    if not wheels:
        if os.environ.get("EDGEKIT_OFFLINE"):
            pytest.skip("EDGEKIT_OFFLINE: the tensorrt-stubs wheel cannot be fetched")
        pytest.fail(f"could not download tensorrt-stubs=={STUBS} from the package index")
    with zipfile.ZipFile(wheels[0]) as z:
        read = lambda name: z.read(name).decode()  # noqa: E731
        return Stubs(read("tensorrt_bindings/tensorrt.pyi"), read("tensorrt/__init__.pyi"),
                     read("tensorrt_bindings/__init__.pyi"), STUBS)


def tiny_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    node = helper.make_node("Relu", ["input"], ["output"], name="act")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 8, 8])])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def exercise(version: str, tmp_path: Path, recorder: Recorder) -> None:
    """What edgekit does with TensorRT ``version``: every build route it has there, then a run."""
    raw = make_trt(version, dla_cores=1, cuda=FakeCuda())
    trt = recorder.module(raw)
    onnx = tiny_onnx(tmp_path / "m.onnx")
    device = device_facts(trt, raw._cuda)
    build_engine(trt, EngineRequest(onnx, "fp32", 256))
    build_engine(trt, EngineRequest(onnx, "fp16", 256, dla_core=0, timing_cache=tmp_path / "timing.cache"))
    build_engine(trt, EngineRequest(onnx, "fp16", 256, timing_cache=tmp_path / "timing.cache"))
    build_engine(trt, EngineRequest(onnx, "fp16", 256, sparse_weights=True))
    if has_precision_flags(trt) or version.startswith("11"):
        build_engine(trt, EngineRequest(onnx, "int8", 256))
    if has_calibrators(trt):
        cache = cc.write({"input": 0.01, "output": 0.02}, TrtVersion.parse(version), tmp_path / "calibration.cache")
        build_engine(trt, EngineRequest(onnx, "int8", 256, int8_route="calibration-cache", calibration_cache=cache))
    built = build_engine(trt, EngineRequest(onnx, "fp16", 256))
    folder = tmp_path / "engine"
    folder.mkdir()
    (folder / "model.engine").write_bytes(built.plan)
    keys = {"tensorrt": device.tensorrt, "compute_capability": device.compute_capability, "precision": "fp16",
            "dla_core": 0, "input_shapes": {"input": [1, 1, 8, 8]}, "calibration_sha256": None, "gpu": device.gpu}
    write_manifest(folder, "compile", {}, {"backend": "tensorrt"}, {"file": "model.engine", "engine": keys})
    with TensorRTRunner(folder / "model.engine", trt=trt, cuda=raw._cuda) as runner:
        runner.infer(np.ones((1, 1, 8, 8), np.float32))
        runner.compute_ms()


def recorded(version: str, tmp_path: Path) -> set[Use]:
    recorder = Recorder(NAMES, SUBCLASSED)
    exercise(version, tmp_path, recorder)
    return recorder.uses


def test_edgekits_uses_of_tensorrt_10_exist_in_nvidias_bindings(stubs, tmp_path) -> None:
    uses = recorded("10.13.0.35", tmp_path)
    assert len(uses) > 40 and Use("call", "IBuilderConfig", "set_memory_pool_limit", 2) in uses
    assert violations(uses, stubs) == []


def test_the_cache_calibrator_overrides_what_tensorrt_calls(stubs) -> None:
    """edgekit's calibrator subclass: every method it defines is one TensorRT's base class declares, with
    the same number of parameters."""
    from edgekit.backends.tensorrt.builder import cache_calibrator

    calibrator = cache_calibrator(make_trt("10.3.0.30"), b"")
    own = {n for n, v in vars(type(calibrator)).items() if callable(v) and not n.startswith("_")}
    assert own == {"get_batch_size", "get_batch", "read_calibration_cache", "write_calibration_cache"}
    for name in own:
        kind, signatures = stubs.member("IInt8EntropyCalibrator2", name)
        ours = len([p for p in __import__("inspect").signature(getattr(calibrator, name)).parameters.values()
                    if p.kind is p.POSITIONAL_OR_KEYWORD])
        assert kind == "method" and any(len(s.parameters) == ours for s in signatures), name


@pytest.mark.parametrize("version", list(RELEASES))
def test_each_release_has_what_edgekit_uses_there(stubs, pytestconfig, tmp_path, version) -> None:
    uses = recorded(version, tmp_path)
    assert violations(uses, stubs, release(pytestconfig, version)) == []


@pytest.mark.parametrize("version", list(RELEASES))
def test_each_releases_double_offers_only_what_the_release_has(pytestconfig, version) -> None:
    """The doubles edgekit's device side is tested against (tests/trt_fakes.py) have no name their release
    lacks: a double with 8.6's attributes in its 8.2 cannot stand in for 8.2."""
    trt, real = make_trt(version), release(pytestconfig, version)
    keys = {f"{cls}.{name}" for cls, members in double_surface(trt).items() for name in members}
    keys |= {name for name in vars(trt) if not name.startswith("_") or name == "__version__"}
    keys |= {f"{name}.{m}" for name, value in vars(trt).items() if type(value).__name__ == "_Enum" for m in vars(value)}
    assert sorted(k for k in keys if real.lacks(k)) == []


def test_the_device_probes_82_double_is_82(pytestconfig) -> None:
    """tests/device_probe.py, the one TensorRT that really runs under Python 3.6, offers only what 8.2 has:
    its builder takes 8.2's route (max_workspace_size, not memory pools)."""
    import ast

    tree = ast.parse((Path(__file__).parent / "device_probe.py").read_text())
    real_names = {"Config": "IBuilderConfig", "Builder": "Builder", "Network": "INetworkDefinition",
                  "Parser": "OnnxParser", "Runtime": "Runtime", "Layer": "ILayer"}
    keys = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in real_names:
            for item in node.body:
                names = [item.name] if isinstance(item, ast.FunctionDef) else \
                    [t.id for t in getattr(item, "targets", []) if isinstance(t, ast.Name)]
                keys |= {f"{real_names[node.name]}.{n}" for n in names if not n.startswith("_") and n != "workspaces"}
    real = release(pytestconfig, "8.2.1")
    assert "IBuilderConfig.max_workspace_size" in keys
    assert sorted(k for k in keys if real.lacks(k) and not k.startswith("ILayer.")) == []


def test_an_attribute_of_8_6_planted_in_the_builder_fails_8_2_and_8_5(stubs, pytestconfig, tmp_path,
                                                                       monkeypatch) -> None:
    """``IBuilderConfig.builder_optimization_level`` came with 8.6: the check refuses it for JetPack 4.6's 8.2
    and 5.1's 8.5, and takes it for 8.6.1, whose bindings have it."""
    import trt_fakes
    from edgekit.backends.tensorrt import builder

    monkeypatch.setattr(trt_fakes.Config, "builder_optimization_level", 3, raising=False)   # every release's double
    original = builder.build_engine

    def planted(trt, request, logger=None):
        trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config().builder_optimization_level = 5
        return original(trt, request, logger)

    for version, expect in (("8.2.1", True), ("8.5.2", True), ("8.6.1", False)):
        recorder = Recorder(NAMES, SUBCLASSED)
        trt = recorder.module(make_trt(version))
        planted(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "fp32", 256))
        found = "\n".join(violations(recorder.uses, stubs, release(pytestconfig, version)))
        assert ("builder_optimization_level" in found) == expect, (version, found)


def test_a_misspelled_call_or_a_wrong_signature_is_caught(stubs, tmp_path, monkeypatch) -> None:
    """A double that offers a name TensorRT does not have (and edgekit calling it) fails the check."""
    import trt_fakes
    from edgekit.backends.tensorrt import builder

    monkeypatch.setattr(trt_fakes.Config, "set_flags", lambda self, flag: None, raising=False)
    real_flag = builder.build_engine

    def misspelled(trt, request, logger=None):
        config = trt.Builder(trt.Logger(trt.Logger.WARNING)).create_builder_config()
        config.set_flags(trt.BuilderFlag.FP16)                      # TensorRT's is set_flag
        with contextlib.suppress(TypeError):                        # the double's own signature refuses it too
            config.set_timing_cache(config.create_timing_cache(b""))    # ignore_mismatch is required
        with contextlib.suppress(AttributeError):
            config.DLA_cores = 1                                    # TensorRT's is DLA_core
        return real_flag(trt, request, logger)

    recorder = Recorder(NAMES, SUBCLASSED)
    trt = recorder.module(make_trt("10.13.0.35"))
    misspelled(trt, EngineRequest(tiny_onnx(tmp_path / "m.onnx"), "fp32", 256))
    found = "\n".join(violations(recorder.uses, stubs))
    assert "IBuilderConfig has no set_flags" in found
    assert "call IBuilderConfig.set_timing_cache(1 positional): matches no signature" in found
    assert "IBuilderConfig has no DLA_cores" in found


def double_surface(trt) -> dict[str, dict[str, list[str] | None]]:
    """Per real class name: the public methods (their parameter names) and attributes the double of ``trt``
    offers (the Config's own notes, ``Config.RECORDS``, left out)."""
    import dataclasses
    import inspect

    import trt_fakes

    tensors = trt._tensor_api              # 8.5+: name-based I/O tensors; 8.2: binding indices
    classes = {"Builder": trt_fakes.Builder, "INetworkDefinition": trt_fakes.Network, "ILayer": trt_fakes.Layer,
               "OnnxParser": trt_fakes.Parser, "IBuilderConfig": trt_fakes._config_class(trt),
               "ITimingCache": trt_fakes.TimingCache,
               "ICudaEngine": trt_fakes.TensorEngine if tensors else trt_fakes.BindingEngine,
               "IExecutionContext": trt_fakes.TensorContext if tensors else trt_fakes.BindingContext,
               "Runtime": trt_fakes.Runtime, "Logger": trt.Logger}
    out = {}
    for real, cls in classes.items():
        members: dict[str, list[str] | None] = {}
        for klass in cls.__mro__:
            if klass.__module__ not in ("trt_fakes", "tensorrt"):
                continue
            for name, value in vars(klass).items():
                # constructors: edgekit reaches them through the module (trt.Builder(logger)), checked by the uses
                if name.startswith("_") and not (name == "__init__" and real in ("Logger", "OnnxParser")) \
                        or name in getattr(cls, "RECORDS", ()):
                    continue
                if inspect.isfunction(value):
                    members.setdefault(name, list(inspect.signature(value).parameters)[1:])
                elif not callable(value) and name not in ("RECORDS",):
                    members.setdefault(name, None)
        if dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                if f.name not in getattr(cls, "RECORDS", ()):
                    members.setdefault(f.name, None)
        out[real] = members
    return out


def test_the_tensorrt_10_double_offers_only_what_nvidias_bindings_have(stubs) -> None:
    """Every class member, enum member and module name of the 10.x double exists in the stubs, and every
    method's parameters are named as TensorRT names them (edgekit may pass them by keyword)."""
    trt = make_trt("10.13.0.35")
    wrong = []
    for real, members in double_surface(trt).items():
        for name, params in members.items():
            found = stubs.member(real, name)
            if found is None:
                wrong.append(f"{real}.{name}: not in TensorRT {STUBS}")
            elif params is not None and not any(
                    list(sig.parameters)[: len(params)] == params
                    and all(p.default is not p.empty for p in list(sig.parameters.values())[len(params):])
                    for sig in (found[1] if found[0] == "method" else [])):
                wrong.append(f"{real}.{name}({', '.join(params)}): no such signature")
    for name, value in vars(trt).items():
        if name.startswith("_"):
            continue
        if name not in stubs.module_names:
            wrong.append(f"tensorrt.{name}: not in TensorRT {STUBS}")
        elif type(value).__name__ == "_Enum":
            wrong += [f"tensorrt.{name}.{m}: no such member" for m in vars(value) if stubs.member(name, m) is None]
    assert wrong == []
