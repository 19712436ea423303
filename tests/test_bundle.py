"""Signing keys and signed bundles: what a camera accepts, and everything it must refuse (an altered
file or manifest, an unknown key, members that leave the bundle or are not plain files)."""
from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.deploy import keys
from edgekit.deploy.bundle import open_bundle, read_manifest, write_bundle
from edgekit.errors import EdgekitError


@pytest.fixture()
def signer(tmp_path):
    private = keys.new_key("mill", tmp_path / "keys")
    return keys.load_private(private), keys.trusted(tmp_path / "keys")


@pytest.fixture()
def payload(tmp_path) -> dict[str, Path]:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "model.xml").write_text("<net/>")
    (tmp_path / "src" / "sub" / "model.bin").write_bytes(os.urandom(4096))
    return {"model/model.xml": tmp_path / "src" / "model.xml", "model/sub/model.bin": tmp_path / "src" / "sub" / "model.bin"}


def test_keys_are_private_never_overwritten_and_named_by_fingerprint(tmp_path) -> None:
    private = keys.new_key("mill", tmp_path)
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(EdgekitError, match="keys are never overwritten"):
        keys.new_key("mill", tmp_path)
    listed = keys.listing(tmp_path)
    assert listed[0]["name"] == "mill" and len(listed[0]["fingerprint"]) == 16
    private.chmod(0o644)
    with pytest.raises(EdgekitError, match=r"mill\.key: a private key readable by others is refused"):
        keys.load_private(private)


def test_a_signed_bundle_unpacks_whole(signer, payload, tmp_path) -> None:
    key, trusted = signer
    manifest = write_bundle(payload, {"recipe": "r", "target": "intel-cpu"}, key, tmp_path / "b.bundle")
    assert read_manifest(tmp_path / "b.bundle", trusted) == manifest
    got = open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot")
    assert got["recipe"] == "r" and set(got["files"]) == set(payload)
    for name, src in payload.items():
        assert (tmp_path / "slot" / name).read_bytes() == src.read_bytes()
    assert (tmp_path / "slot" / "bundle.json").is_file()
    with pytest.raises(EdgekitError, match="exists; a bundle is unpacked into a new folder"):
        open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot")


def _rewrite(src: Path, dst: Path, change) -> None:
    """Copy a bundle member by member, ``change(name, data) -> data`` on the way."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = change(m.name, tin.extractfile(m).read())
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))


def test_an_altered_file_or_manifest_is_refused_and_nothing_appears(signer, payload, tmp_path) -> None:
    key, trusted = signer
    write_bundle(payload, {"recipe": "r"}, key, tmp_path / "b.bundle")
    flip = lambda name, data: (bytes([data[0] ^ 1]) + data[1:]) if name.endswith("model.bin") else data  # noqa: E731
    _rewrite(tmp_path / "b.bundle", tmp_path / "file.bundle", flip)
    with pytest.raises(EdgekitError, match=r"model/sub/model\.bin does not match its signed hash"):
        open_bundle(tmp_path / "file.bundle", trusted, tmp_path / "slot")
    assert not (tmp_path / "slot").exists() and not list(tmp_path.glob(".slot.*"))
    edit = lambda name, data: data.replace(b'"r"', b'"s"') if name == "bundle.json" else data  # noqa: E731
    _rewrite(tmp_path / "b.bundle", tmp_path / "manifest.bundle", edit)
    with pytest.raises(EdgekitError, match="the signature does not match bundle.json"):
        open_bundle(tmp_path / "manifest.bundle", trusted, tmp_path / "slot")


def test_an_unknown_key_is_refused(signer, payload, tmp_path) -> None:
    key, _ = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")
    other = keys.trusted(Path(keys.new_key("other", tmp_path / "other")).parent)
    with pytest.raises(EdgekitError, match=r"signed by key [0-9a-f]{16}, which is not among the trusted keys"):
        open_bundle(tmp_path / "b.bundle", other, tmp_path / "slot")


@pytest.mark.parametrize("name,kind,why", [
    ("payload/../../evil", tarfile.REGTYPE, "a path that leaves the bundle"),
    ("/etc/evil", tarfile.REGTYPE, "an absolute path"),
    ("payload/model/link", tarfile.SYMTYPE, "a link or special file"),
    ("payload/model/dev", tarfile.CHRTYPE, "a link or special file"),
    ("elsewhere/file", tarfile.REGTYPE, "outside the bundle's layout"),
])
def test_members_that_leave_the_bundle_or_are_not_files_are_refused(signer, payload, tmp_path, name, kind, why):
    key, trusted = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")
    with tarfile.open(tmp_path / "b.bundle", "a") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    with pytest.raises(EdgekitError, match=f"member {name!r} is {why}: refused"):
        open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot")
    assert not (tmp_path / "evil").exists()


def test_oversized_members_and_unlisted_files_are_refused(signer, payload, tmp_path) -> None:
    key, trusted = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")
    with pytest.raises(EdgekitError, match=r"is larger than 100 bytes: refused"):
        open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot", max_member=100)
    with tarfile.open(tmp_path / "b.bundle", "a") as tar:
        info = tarfile.TarInfo("payload/model/extra.py")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"print"))
    with pytest.raises(EdgekitError, match=r"payload differs from the signed list \(extra: model/extra\.py"):
        open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot")


def _run(tmp_path: Path, target: str, gates_pass: dict[str, bool]) -> Path:
    """A finished run's records, as `edgekit build` leaves them (compiled folders, build.json, results)."""
    run = tmp_path / "run"
    for label in ("openvino-fp32", "openvino-fp16", "openvino-int8", "tensorrt-kit"):
        (run / "compile" / label).mkdir(parents=True, exist_ok=True)
        (run / "compile" / label / "model.xml").write_text(label)
    (run / "compile" / "tensorrt-kit" / "manifest.json").write_text('{"settings": {"kind": "device-kit"}}')
    (run / "compile" / "tensorrt-kit" / "kit.json").write_text('{"precisions": ["fp16", "int8"]}')
    (run / "validate").mkdir()
    (run / "validate" / "report.md").write_text("# report\n")
    labels = ["fp32-reference", "openvino-fp32", "openvino-fp16", "openvino-int8"]
    np.savez(run / "validate" / "golden.npz", input=np.zeros((2, 3, 4, 4), np.float32),
             **{f"{a}:logits": np.full((2, 6), 1.0 + 0.01 * i, np.float32) for i, a in enumerate(labels)})
    rows = [{"artifact": "fp32-reference", "backend": "onnxruntime", "precision": "fp32", "accuracy": 99.0}] + [
        {"artifact": f"openvino-{p}", "backend": "openvino", "precision": p, "accuracy": 98.5} for p in ("fp32", "fp16", "int8")]
    gates = [{"artifact": a, "gate": "drop", "value": 0.0, "pass": ok} for a, ok in gates_pass.items()]
    (run / "validate" / "results.json").write_text(json.dumps({"metric": {"key": "accuracy", "column": "accuracy %"},
                                                               "rows": rows, "gates": gates, "passed": all(gates_pass.values())}))
    (run / "build.json").write_text(json.dumps({"recipe": "tiny", "target": target}))
    return run


def test_bundle_takes_the_fastest_artifact_that_passed_or_the_kit(tmp_path) -> None:
    from edgekit.stages.bundle import bundle

    private = keys.new_key("mill", tmp_path / "keys")
    run = _run(tmp_path, "intel-cpu", {"openvino-fp32": True, "openvino-fp16": True, "openvino-int8": False})
    m = bundle(run, "intel-cpu", private)
    assert m["artifact"] == "openvino-fp16" and set(m["files"]) == {"model/model.xml", "validation/report.md",
                                                                     "golden/golden.npz", "golden/golden.json"}
    assert m["validation"] == {"figure": "accuracy %", "value": 98.5, "reference": 99.0, "passed": False}
    assert open_bundle(Path(m["path"]), keys.trusted(tmp_path / "keys"), tmp_path / "slot")["target"] == "intel-cpu"
    with pytest.raises(EdgekitError, match="built for intel-cpu, not jetson-orin-agx"):
        bundle(run, "jetson-orin", private)
    slot = tmp_path / "slot"
    spec = json.loads((slot / "golden" / "golden.json").read_text())
    assert spec["precisions"] == {"fp16": {"artifact": "openvino-fp16", "tolerance": {"logits": pytest.approx(0.04)}}}
    kit_run = _run(tmp_path / "k", "jetson-orin-agx", {})
    kit = bundle(kit_run, "jetson-orin", private)
    assert kit["kind"] == "device-kit"
    kit_slot = tmp_path / "kit-slot"
    open_bundle(Path(kit["path"]), keys.trusted(tmp_path / "keys"), kit_slot)
    spec = json.loads((kit_slot / "golden" / "golden.json").read_text())
    assert {p: e["artifact"] for p, e in spec["precisions"].items()} == {"fp16": "openvino-fp16", "int8": "openvino-int8"}
    assert spec["precisions"]["int8"]["tolerance"]["logits"] == pytest.approx(2 * 0.03, rel=1e-5)
    failing = _run(tmp_path / "f", "intel-cpu", {"openvino-fp32": False, "openvino-fp16": False, "openvino-int8": False})
    with pytest.raises(EdgekitError, match="no compiled artifact passed its validation gates"):
        bundle(failing, "intel-cpu", private)
