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

from edgekit.camera import bundle as bundle_mod
from edgekit.camera.bundle import HEADER_SIZE, open_bundle, read_manifest, unverified_tar
from edgekit.deploy import keys
from edgekit.deploy.bundle import seal, write_bundle
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


def _rewrite(src: Path, dst: Path, change, key=None, add=None) -> None:
    """Copy a bundle's tar member by member, ``change(name, data) -> data`` on the way and ``add(tar)`` at its end;
    sealed anew by ``key`` (a trusted signer's hostile file), else under ``src``'s own header (an alteration)."""
    tar_path = dst.with_suffix(".tar")
    with unverified_tar(src) as tin, tarfile.open(tar_path, "w") as tout:
        for m in tin.getmembers():
            data = change(m.name, tin.extractfile(m).read())
            m.size = len(data)
            tout.addfile(m, io.BytesIO(data))
        if add:
            add(tout)
    if key is not None:
        seal(tar_path, key, dst)
    else:
        dst.write_bytes(src.read_bytes()[:HEADER_SIZE] + tar_path.read_bytes())
    tar_path.unlink()


def test_an_altered_file_or_manifest_is_refused_and_nothing_appears(signer, payload, tmp_path) -> None:
    key, trusted = signer
    write_bundle(payload, {"recipe": "r"}, key, tmp_path / "b.bundle")
    flip = lambda name, data: (bytes([data[0] ^ 1]) + data[1:]) if name.endswith("model.bin") else data  # noqa: E731
    _rewrite(tmp_path / "b.bundle", tmp_path / "file.bundle", flip)
    with pytest.raises(EdgekitError, match=r"does not match the signed SHA-256 \(altered after signing\)"):
        open_bundle(tmp_path / "file.bundle", trusted, tmp_path / "slot")
    assert not (tmp_path / "slot").exists() and not list(tmp_path.glob(".slot.*"))
    edit = lambda name, data: data.replace(b'"r"', b'"s"') if name == "bundle.json" else data  # noqa: E731
    _rewrite(tmp_path / "b.bundle", tmp_path / "manifest.bundle", edit)
    with pytest.raises(EdgekitError, match="altered after signing"):
        open_bundle(tmp_path / "manifest.bundle", trusted, tmp_path / "slot")
    # signed by a trusted key, yet a payload file is not the one its manifest lists: still refused
    _rewrite(tmp_path / "b.bundle", tmp_path / "resigned.bundle", flip, key=key)
    with pytest.raises(EdgekitError, match=r"model/sub/model\.bin does not match its signed hash"):
        open_bundle(tmp_path / "resigned.bundle", trusted, tmp_path / "slot")
    assert not (tmp_path / "slot").exists()


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
    """Even under a trusted signature (a signer's mistake or a stolen key), no member leaves the slot."""
    key, trusted = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")

    def add(tar):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)

    _rewrite(tmp_path / "b.bundle", tmp_path / "evil.bundle", lambda n, d: d, key=key, add=add)
    with pytest.raises(EdgekitError, match=f"member {name!r} is {why}: refused"):
        open_bundle(tmp_path / "evil.bundle", trusted, tmp_path / "slot")
    assert not (tmp_path / "evil").exists()
    _rewrite(tmp_path / "b.bundle", tmp_path / "unsigned.bundle", lambda n, d: d, add=add)   # not re-signed
    with pytest.raises(EdgekitError, match="altered after signing|appended to"):
        open_bundle(tmp_path / "unsigned.bundle", trusted, tmp_path / "slot")


def test_oversized_members_and_unlisted_files_are_refused(signer, payload, tmp_path) -> None:
    key, trusted = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")
    with pytest.raises(EdgekitError, match=r"is larger than 100 bytes: refused"):
        open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot", max_member=100)

    def add(tar):
        info = tarfile.TarInfo("payload/model/extra.py")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"print"))

    _rewrite(tmp_path / "b.bundle", tmp_path / "extra.bundle", lambda n, d: d, key=key, add=add)
    with pytest.raises(EdgekitError, match=r"payload differs from the signed list \(extra: model/extra\.py"):
        open_bundle(tmp_path / "extra.bundle", trusted, tmp_path / "slot")


def _negative_size_tar() -> bytes:
    """A tar header whose size field is a negative base-256 number: CPython's tarfile before the fix of
    CVE-2025-8194 loops for ever on it (the cameras' Python 3.6 and 3.8 keep that bug)."""
    header = bytearray(tarfile.TarInfo("bundle.json").tobuf(format=tarfile.GNU_FORMAT))
    header[124:136] = b"\xff" * 12                           # size: -1 in base-256
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)                 # the header's checksum, as tar writes it
    return bytes(header) + bytes(2048)


def test_a_hostile_file_is_refused_before_any_of_it_is_parsed(signer, payload, tmp_path, monkeypatch) -> None:
    """Unsigned files of the kinds that hang or exhaust a camera's Python in ``tarfile``: a raw tar with a
    negative size, the same behind a signed header taken from a real bundle, a sparse-member tar, a real
    header over a larger payload. Each is refused by the header check alone, nothing parsed, nothing written."""
    key, trusted = signer
    real = tmp_path / "real.bundle"
    write_bundle(payload, {}, key, real)

    def refuse(*args, **kwargs):
        raise AssertionError("tarfile was asked to parse an unauthenticated file")

    header = real.read_bytes()[:HEADER_SIZE]
    sparse = io.BytesIO()
    info = tarfile.TarInfo("bundle.json")
    info.type = tarfile.GNUTYPE_SPARSE
    sparse.write(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1024))
    cases = {
        "raw.bundle": (_negative_size_tar(), "a format-1 bundle"),
        "junk.bundle": (bytes(HEADER_SIZE + 10), "not an edgekit bundle"),
        "reused-header.bundle": (header + _negative_size_tar(), "cut short or appended to"),
        "sparse.bundle": (header + sparse.getvalue(), "cut short or appended to"),
        "same-size.bundle": (header + bytes(real.stat().st_size - HEADER_SIZE), "does not match the signed SHA-256"),
        "larger.bundle": (real.read_bytes() + bytes(1 << 20), "cut short or appended to"),
        "short.bundle": (real.read_bytes()[:-1], "cut short or appended to"),
        "garbled-header.bundle": (header[:17] + b"x" + header[18:] + real.read_bytes()[HEADER_SIZE:],
                                  "unreadable signed header"),
    }
    monkeypatch.setattr(tarfile, "open", refuse)
    for name, (data, why) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(EdgekitError, match=why):
            open_bundle(tmp_path / name, trusted, tmp_path / "slot")
        assert not (tmp_path / "slot").exists() and not list(tmp_path.glob(".slot.*")), name


def test_a_sparse_member_is_refused_even_when_signed(signer, payload, tmp_path) -> None:
    key, trusted = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")

    def add(tar):
        info = tarfile.TarInfo("payload/model/big")
        info.type = tarfile.GNUTYPE_SPARSE
        tar.addfile(info)

    _rewrite(tmp_path / "b.bundle", tmp_path / "sparse.bundle", lambda n, d: d, key=key, add=add)
    with pytest.raises(EdgekitError, match="is a sparse file: refused"):
        open_bundle(tmp_path / "sparse.bundle", trusted, tmp_path / "slot")


def test_an_unpacked_slot_is_on_disk_before_it_is_renamed_into_place(signer, payload, tmp_path, monkeypatch) -> None:
    """Write, fsync every file and folder, rename, fsync the parent: the order file systems need for a slot to
    survive a power cut (dropped writes need device-mapper, which benchmarks/flash_interrupt.py reports absent here)."""
    key, trusted = signer
    write_bundle(payload, {}, key, tmp_path / "b.bundle")
    events = []
    real_fsync, real_rename = os.fsync, os.rename
    monkeypatch.setattr(bundle_mod.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
                        or real_fsync(fd))
    monkeypatch.setattr(bundle_mod.os, "rename", lambda a, b: events.append(("rename", b)) or real_rename(a, b))
    open_bundle(tmp_path / "b.bundle", trusted, tmp_path / "slot")
    renamed = events.index(("rename", str(tmp_path / "slot")))
    synced = {Path(p).name for kind, p in events[:renamed] if kind == "fsync"}
    assert {"model.xml", "model.bin", "bundle.json", "sub", "model"} <= synced
    assert ("fsync", str(tmp_path)) in events[renamed:]


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
             **{f"frame:{i}": np.zeros((4, 4), np.uint8) for i in range(2)},
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
