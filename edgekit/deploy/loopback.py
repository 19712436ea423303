"""A loopback camera: Debian's OpenSSH server on 127.0.0.1, run by the current user on a free port with
its own host key and an authorized key made for it, install folders trusting a signing key, and small
real bundles to flash onto it. For rehearsing a flash without a camera (``benchmarks/flash_interrupt.py``)
and for the flash tests."""
from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from edgekit.camera import golden, pipeline, slots
from edgekit.errors import EdgekitError

SSHD = Path("/usr/sbin/sshd")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def prepare_install(folder: Path, trusted_pub: Path) -> Path:
    """A camera's install folder that trusts the public key ``trusted_pub`` (what provisioning does by hand)."""
    folder = Path(folder)
    (folder / slots.TRUSTED).mkdir(parents=True, exist_ok=True)
    shutil.copy(trusted_pub, folder / slots.TRUSTED / Path(trusted_pub).name)
    return folder


@dataclass
class LoopbackCamera:
    root: Path
    port: int
    client_key: Path
    known_hosts: Path
    host_key: Path
    process: subprocess.Popen

    def install(self, name: str, trusted_pub: Path) -> Path:
        """An install folder for camera ``name`` that trusts ``trusted_pub``."""
        return prepare_install(self.root / "cameras" / name, trusted_pub)

    def fleet_entry(self, name: str, install: Path, target: str, line: str = "loopback") -> str:
        return (f"{{name: {name}, host: 127.0.0.1, port: {self.port}, user: {getpass.getuser()}, "
                f"identity: {self.client_key}, target: {target}, install: {install}, line: {line}, "
                f"python: {sys.executable}}}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def start(root: Path) -> LoopbackCamera:
    """Start sshd under ``root`` (host key, client key, authorized_keys, known_hosts written there)."""
    if not SSHD.is_file():
        raise EdgekitError(f"{SSHD}: no OpenSSH server (apt-get install openssh-server)")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = keygen(root / "host_ed25519"), keygen(root / "client_ed25519")
    (root / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
    port = _free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}", f"PidFile {root / 'sshd.pid'}",
        f"AuthorizedKeysFile {root / 'authorized_keys'}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
        "MaxStartups 100", "MaxSessions 100", "Subsystem sftp internal-sftp",
        f"SetEnv PATH={Path(sys.executable).parent}:/usr/bin:/bin", ""]))
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)      # the privilege-separation folder sshd wants when root
    with open(root / "sshd.log", "wb") as log:      # a file, not a pipe: a busy fleet's log never blocks sshd
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=log)
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise EdgekitError("sshd did not start in 10 s")
    if proc.poll() is not None:
        raise EdgekitError(f"sshd did not start: {(root / 'sshd.log').read_text()[-300:]}")
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {Path(f'{host_key}.pub').read_text()}")
    return LoopbackCamera(root, port, client_key, known, host_key, proc)


def rehearsal_bundle(folder: Path, key, version: str, weights_kib: int = 16, target: str = "intel-cpu",
                     wrong_golden: bool = False) -> Path:
    """A small, real, signed bundle: a one-layer classifier in ONNX (``weights_kib`` of random weights, so
    that versions differ and uploads take time) run by ONNX Runtime, with its ``pipeline.json``, golden
    frames and the outputs it gives for them (another model's outputs with ``wrong_golden``: a bundle the
    camera must refuse). It loads on the camera through the same path as a built bundle."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.backends.onnxruntime import OrtRunner
    from edgekit.camera.post.classification import config
    from edgekit.camera.preprocess import Preprocess
    from edgekit.deploy.bundle import write_bundle

    src = Path(folder) / version
    src.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(version.encode()))
    columns = max(2, weights_kib * 1024 // (4 * 48))
    weights = rng.normal(0, 0.1, (48, columns)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["logits"])],
        "rehearsal", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, columns])], [numpy_helper.from_array(weights, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(src / "model.onnx"))
    (src / "manifest.json").write_text('{"stage": "compile", "results": {"file": "model.onnx"}}\n')
    pre = Preprocess(size=4, channels=3, scale=1 / 255, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    pipeline.write(src, {"recipe": "rehearsal", "task": "classification", "classes": [f"c{i}" for i in range(columns)],
                         "input": {"name": "input", "shape": [1, *pre.input_shape], "layout": "NCHW",
                                   "preprocess": pre.config()},
                         "outputs": ["logits"], "postprocess": config()})
    runner = OrtRunner(src / "model.onnx", threads=1)
    frames = list(rng.integers(0, 256, (4, 4, 4, 3), dtype=np.uint8))
    images = pre.batch(frames)
    outputs = np.concatenate([runner.infer(x[None])[0] for x in images])
    if wrong_golden:
        outputs = outputs[:, ::-1].copy()
    files = {f"model/{name}": src / name for name in ("model.onnx", "manifest.json", pipeline.FILE)}
    for path in golden.write(src / golden.FOLDER, frames, images, ["logits"], {"logits": outputs},
                             {"fp32": {"artifact": "onnxruntime-fp32", "outputs": {"logits": outputs}}}):
        files[f"{golden.FOLDER}/{path.name}"] = path
    out = Path(folder) / f"{version}-{target}.bundle"
    write_bundle(files, {"recipe": "rehearsal", "kind": "artifact", "artifact": version, "backend": "onnxruntime",
                         "precision": "fp32", "target": target}, key, out)
    return out
