"""An engine's identity: the keys it was built for, and the refusal of an engine this device cannot load.

A serialized TensorRT engine only loads on the TensorRT version that built it and runs correctly
only on the GPU architecture it was tuned for. ``manifest.json`` beside ``model.engine`` records
the keys; :func:`check` compares them with the device before TensorRT is asked to deserialize
(TensorRT's own message, "version tag does not match", says neither what differs nor what to do).
"""
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional

from edgekit.artifacts import read_manifest
from edgekit.errors import EdgekitError

ENGINE_FILE = "model.engine"
KEYS = ("tensorrt", "compute_capability", "precision", "dla_core", "input_shapes", "calibration_sha256")


class Device(NamedTuple):
    """What this machine offers an engine."""
    tensorrt: str              # tensorrt.__version__, e.g. "8.5.2.2"
    compute_capability: str    # "8.7"
    gpu: str
    dla_cores: int


def device_facts(trt: Any, cuda: Any) -> Device:
    gpu, cc = cuda.device()
    logger = trt.Logger(trt.Logger.ERROR)
    dla = int(getattr(trt.Runtime(logger), "num_DLA_cores", 0))     # a Runtime is cheap; a Builder is not
    return Device(tensorrt=str(trt.__version__), compute_capability=cc, gpu=gpu, dla_cores=dla)


def engine_keys(device: Device, precision: str, dla_core: Optional[int], input_shapes: Dict[str, List[int]],
                calibration_sha256: Optional[str]) -> Dict[str, Any]:
    return {"tensorrt": device.tensorrt, "compute_capability": device.compute_capability, "precision": precision,
            "dla_core": dla_core, "input_shapes": input_shapes, "calibration_sha256": calibration_sha256,
            "gpu": device.gpu}


def read_keys(folder: Path) -> Dict[str, Any]:
    m = read_manifest(folder)
    keys = m.get("results", {}).get("engine")
    if m.get("stage") != "compile" or not isinstance(keys, dict) or any(k not in keys for k in KEYS):
        raise EdgekitError(f"{folder}: not a TensorRT engine artifact (manifest has no engine keys {', '.join(KEYS)})")
    return keys


def mismatches(keys: Dict[str, Any], device: Device) -> List[str]:
    """What keeps this device from running the engine, one phrase per difference."""
    found = []
    if keys["tensorrt"] != device.tensorrt:
        found.append(f"built with TensorRT {keys['tensorrt']}, this device has {device.tensorrt}")
    if keys["compute_capability"] != device.compute_capability:
        found.append(f"built for compute capability {keys['compute_capability']} ({keys.get('gpu', '?')}), "
                     f"this GPU is {device.compute_capability} ({device.gpu})")
    if keys["dla_core"] is not None and keys["dla_core"] >= device.dla_cores:
        found.append(f"built for DLA core {keys['dla_core']}, this device has {device.dla_cores} DLA core(s)")
    return found


def check(folder: Path, device: Device, kit_hint: str = "the device kit") -> Dict[str, Any]:
    """The engine's keys, or EdgekitError saying what differs and how to rebuild."""
    keys = read_keys(folder)
    found = mismatches(keys, device)
    if found:
        raise EdgekitError(f"{Path(folder) / ENGINE_FILE}: refused: " + "; ".join(found)
                           + f". Rebuild it on this device from {kit_hint}: python3 edgekit-device.pyz build (or edgekit compile --kit)")
    return keys

