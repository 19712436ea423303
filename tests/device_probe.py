# Runs under an old Python (3.6: JetPack 4.6; 3.8: JetPack 5) with numpy and cryptography alone: loads the
# device app from the kit given as argv[1], builds the kit's engines with a minimal TensorRT and CUDA of its
# own (written in 3.6's syntax; the full doubles of tests/trt_fakes.py need a newer Python and onnx), then
# verifies and unpacks the signed bundle argv[3] with the trusted keys in argv[4] and refuses its altered
# copy argv[5]. Prints "ok <version>".
import json
import sys
import types
from pathlib import Path

kit = Path(sys.argv[1])
out = Path(sys.argv[2])
sys.path.insert(0, str(kit / "edgekit-device.pyz"))

import edgekit  # noqa: E402
from edgekit.backends.tensorrt import calibration_cache  # noqa: E402
from edgekit.camera import app as device_cli  # noqa: E402

assert edgekit.__file__.startswith(str(kit / "edgekit-device.pyz")), edgekit.__file__


class Flag(int):
    pass


def enum(**members):
    return types.SimpleNamespace(**{k: Flag(v) for k, v in members.items()})


class Layer:
    name, type = "conv", "LayerType.CONVOLUTION"


class Network:
    num_layers = 1

    def get_layer(self, index):
        return Layer()


class Parser:
    num_errors = 0

    def __init__(self, network, logger):
        pass

    def parse(self, model):
        return len(model) > 0


class Config:   # TensorRT 8.2's: a workspace size, no memory pools (8.4+)
    int8_calibrator = None
    DLA_core = -1
    workspaces = []

    def __init__(self):
        self.flags = []

    def set_flag(self, flag):
        self.flags.append(int(flag))

    @property
    def max_workspace_size(self):
        return self.workspaces[-1] if self.workspaces else 0

    @max_workspace_size.setter
    def max_workspace_size(self, size):
        self.workspaces.append(size)

    def create_timing_cache(self, serialized_timing_cache):
        return types.SimpleNamespace(serialize=lambda: b"timing")

    def set_timing_cache(self, cache, ignore_mismatch):
        return True

    def get_timing_cache(self):
        return types.SimpleNamespace(serialize=lambda: b"timing")


class Builder:
    num_DLA_cores = 0

    def __init__(self, logger):
        pass

    def create_network(self, flags=0):
        return Network()

    def create_builder_config(self):
        return Config()

    def build_serialized_network(self, network, config):
        return b"plan"


class Runtime:
    num_DLA_cores = 0

    def __init__(self, logger):
        pass


class Calibrator:
    def __init__(self):
        pass


trt = types.ModuleType("tensorrt")
trt.__version__ = "8.2.1.8"
trt.Logger = type("Logger", (), {"WARNING": 2, "ERROR": 1, "__init__": lambda self, min_severity=2: None,
                                 "log": lambda self, severity, msg: None})
trt.Builder, trt.Runtime, trt.OnnxParser, trt.IInt8EntropyCalibrator2 = Builder, Runtime, Parser, Calibrator
trt.BuilderFlag = enum(FP16=0, INT8=1, GPU_FALLBACK=3)
trt.NetworkDefinitionCreationFlag = enum(EXPLICIT_BATCH=0)
trt.DeviceType = enum(GPU=0, DLA=1)
trt.ProfilingVerbosity = enum(DETAILED=2)
cuda = types.SimpleNamespace(device=lambda: ("Fake Nano", "5.3"), name="fake-cuda", close=lambda: None)

assert device_cli.main(["info", "--kit", str(kit)], trt=trt, cuda=cuda) == 0
assert device_cli.main(["build", "--kit", str(kit), "--out", str(out), "--precision", "fp16", "--precision", "int8"],
                       trt=trt, cuda=cuda) == 0
built = json.loads((out / "device_build.json").read_text())
assert [b["precision"] for b in built] == ["fp16", "int8"], built
assert Config.workspaces and min(Config.workspaces) > 0, Config.workspaces   # 8.2's route: max_workspace_size
version, _, scales = calibration_cache.read(out / "tensorrt-int8" / "calibration.cache")
assert str(version) == "8.2.1" and scales
manifest = json.loads((out / "tensorrt-int8" / "manifest.json").read_text())
assert manifest["settings"]["int8_route"] == "calibration-cache"
expected = json.loads((kit / "kit.json").read_text())["opset_copies"].get("13", "fp32.onnx")   # TensorRT 8.2 parses <= 13
assert manifest["inputs"]["onnx"]["path"].endswith(expected), manifest["inputs"]
from edgekit.camera import trust  # noqa: E402
from edgekit.camera.bundle import open_bundle  # noqa: E402
from edgekit.errors import EdgekitError  # noqa: E402

trusted = trust.trusted(Path(sys.argv[4]))
unpacked = open_bundle(Path(sys.argv[3]), trusted, out / "slot-a")
assert (out / "slot-a" / "model" / "kit.json").is_file() and unpacked["kind"] == "device-kit"
try:
    open_bundle(Path(sys.argv[5]), trusted, out / "slot-b")
    raise AssertionError("an altered bundle was accepted")
except EdgekitError as exc:
    assert "altered after signing" in str(exc), exc
assert not (out / "slot-b").exists()

from edgekit.camera import slots  # noqa: E402

install = out / "camera"
(install / slots.TRUSTED).mkdir(parents=True)
for pub in Path(sys.argv[4]).glob("*.pub"):
    (install / slots.TRUSTED / pub.name).write_bytes(pub.read_bytes())
slot = slots.verify(install, Path(sys.argv[3]))["slot"]
assert slots.activate(install, slot) == {"active": slot, "previous": None}
assert (install / "active" / "model" / "kit.json").is_file()
print("ok", sys.version.split()[0])
