"""edgekit's TensorRT code and its test doubles held to a description written by others: the type stubs
generated from NVIDIA's TensorRT 10.13 bindings (``tensorrt-stubs``), and for 8.x and 11 the
differences NVIDIA's release notes state (tests/data/tensorrt_api.yaml).

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
from trt_api import Recorder, Stubs, Use, violations
from trt_fakes import FakeCuda, make_trt

STUBS = "10.13.0.35.1"           # tensorrt-stubs: generated from the TensorRT 10.13.0.35 bindings
RELEASES = yaml.safe_load((Path(__file__).parent / "data" / "tensorrt_api.yaml").read_text())
# the doubles' classes -> the real API's (tests/trt_fakes.py)
NAMES = {"Builder": "Builder", "Network": "INetworkDefinition", "Layer": "ILayer", "Parser": "OnnxParser",
         "Config": "IBuilderConfig", "PoolConfig": "IBuilderConfig", "TimingCache": "ITimingCache",
         "TensorEngine": "ICudaEngine", "BindingEngine": "ICudaEngine", "TensorContext": "IExecutionContext",
         "BindingContext": "IExecutionContext", "Runtime": "Runtime", "Logger": "Logger"}
SUBCLASSED = {"IInt8EntropyCalibrator2"}      # edgekit derives its cache calibrator from it: handed over as is


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


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_other_releases_by_their_release_notes(stubs, tmp_path, version) -> None:
    notes = RELEASES[version]
    absent, present = set(notes["absent"]), set(notes["present"])
    uses = recorded(version, tmp_path)
    assert violations(uses, stubs, absent, present) == []
    # the version's double lacks what the release lacks
    raw = make_trt(version)
    objects = {"IBuilderConfig": raw.Builder(raw.Logger()).create_builder_config()}
    for name in sorted(absent):
        owner, _, member = name.rpartition(".")
        holder = objects.get(owner) or (getattr(raw, owner, None) if owner else raw)
        if holder is not None and owner in ("", *objects, "BuilderFlag", "NetworkDefinitionCreationFlag"):
            assert not hasattr(holder, member or name), f"the {version} double has {name}"


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

    classes = {"Builder": trt_fakes.Builder, "INetworkDefinition": trt_fakes.Network, "ILayer": trt_fakes.Layer,
               "OnnxParser": trt_fakes.Parser, "IBuilderConfig": trt_fakes._config_class(trt),
               "ITimingCache": trt_fakes.TimingCache, "ICudaEngine": trt_fakes.TensorEngine,
               "IExecutionContext": trt_fakes.TensorContext, "Runtime": trt_fakes.Runtime, "Logger": trt.Logger}
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
