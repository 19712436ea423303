"""A camera's slots: a verified bundle becomes active by one rename, the one before stays for rollback, a
refused bundle or an interrupted switch leaves the active slot as it was."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgekit.camera import app as device_cli
from edgekit.camera import slots
from edgekit.camera.bundle import unverified_tar
from edgekit.deploy import keys, loopback
from edgekit.deploy.bundle import write_bundle
from edgekit.errors import EdgekitError


@pytest.fixture()
def camera(tmp_path):
    """A workstation key, a camera trusting it, and a maker of bundles."""
    key = keys.load_private(keys.new_key("mill", tmp_path / "ws"))
    install = loopback.prepare_install(tmp_path / "camera", tmp_path / "ws" / "mill.pub")

    def make(version: str) -> Path:
        src = tmp_path / "src" / version
        src.mkdir(parents=True)
        (src / "model.xml").write_text(version)
        write_bundle({"model/model.xml": src / "model.xml"}, {"recipe": "r", "artifact": version}, key,
                     tmp_path / f"{version}.bundle")
        return tmp_path / f"{version}.bundle"
    return install, make


def active_model(install: Path) -> str:
    return (install / slots.ACTIVE / "model" / "model.xml").read_text()


def test_activate_keeps_the_previous_and_rollback_returns_to_it(camera) -> None:
    install, make = camera
    a = slots.verify(install, make("v1"))["slot"]
    slots.activate(install, a)
    assert active_model(install) == "v1" and slots.status_links(install) == {"active": a, "previous": None}
    b = slots.verify(install, make("v2"))["slot"]
    assert active_model(install) == "v1"                    # verifying touches nothing active
    slots.activate(install, b)
    assert active_model(install) == "v2" and slots.status(install)["previous"]["artifact"] == "v1"
    slots.rollback(install)
    assert active_model(install) == "v1" and slots.status_links(install) == {"active": a, "previous": b}
    c = slots.verify(install, make("v3"))["slot"]
    slots.activate(install, c)
    assert sorted(p.name for p in (install / slots.SLOTS).iterdir()) == sorted([a, c])   # b pruned


def test_a_refused_bundle_leaves_the_camera_as_it_was(camera, tmp_path) -> None:
    install, make = camera
    slots.activate(install, slots.verify(install, make("v1"))["slot"])
    bad = tmp_path / "bad.bundle"
    good = make("v2")
    with unverified_tar(good) as tar:
        offset = tar.getmember("payload/model/model.xml").offset_data
    data = bytearray(good.read_bytes())
    data[offset] ^= 1                                       # one payload byte
    bad.write_bytes(bytes(data))
    with pytest.raises(EdgekitError, match="altered after signing"):
        slots.verify(install, bad)
    assert active_model(install) == "v1" and len(list((install / slots.SLOTS).iterdir())) == 1
    with pytest.raises(EdgekitError, match="no verified slot"):
        slots.activate(install, "0123456789abcdef")


def test_a_switch_killed_before_its_rename_leaves_the_old_slot_active(camera, monkeypatch) -> None:
    install, make = camera
    slots.activate(install, slots.verify(install, make("v1"))["slot"])
    b = slots.verify(install, make("v2"))["slot"]

    def killed(src, dst):
        raise KeyboardInterrupt("killed")
    monkeypatch.setattr(slots.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        slots.activate(install, b)
    assert active_model(install) == "v1"
    monkeypatch.undo()
    slots.activate(install, b)                               # the leftover temporary link is replaced
    assert active_model(install) == "v2"
    assert not [p for p in install.iterdir() if p.name.startswith(".")]


def test_a_camera_without_trusted_keys_accepts_nothing(camera, tmp_path) -> None:
    install, make = camera
    with pytest.raises(EdgekitError, match="no trusted public keys"):
        slots.verify(tmp_path / "bare", make("v1"))


def test_the_device_app_answers_flash_in_json_lines(camera, capsys) -> None:
    install, make = camera
    assert device_cli.main(["verify", str(make("v1")), "--install", str(install)]) == 0
    slot = json.loads(capsys.readouterr().out)["slot"]
    assert device_cli.main(["activate", slot, "--install", str(install)]) == 0
    assert json.loads(capsys.readouterr().out) == {"active": slot, "previous": None}
    assert device_cli.main(["status", "--install", str(install)]) == 0
    assert json.loads(capsys.readouterr().out)["active"]["artifact"] == "v1"
    assert device_cli.main(["rollback", "--install", str(install)]) == 2
    assert capsys.readouterr().err.startswith("error: ") and os.readlink(install / "active").endswith(slot)


def test_a_withdrawn_key_withdraws_the_slots_it_signed(camera, tmp_path) -> None:
    """Removing the mill's key from ``trusted/`` (a key thought stolen): no slot it signed is re-verified,
    activated or rolled back to; a slot signed by a key still trusted is."""
    install, make = camera
    first = make("v1")
    a = slots.verify(install, first)["slot"]
    slots.activate(install, a)
    b = slots.verify(install, make("v2"))["slot"]
    slots.activate(install, b)
    other = keys.load_private(keys.new_key("spare", tmp_path / "spare"))
    (install / slots.TRUSTED / "spare.pub").write_bytes((tmp_path / "spare" / "spare.pub").read_bytes())
    (install / slots.TRUSTED / "mill.pub").unlink()
    with pytest.raises(EdgekitError, match="no longer among the trusted keys"):
        slots.rollback(install)
    with pytest.raises(EdgekitError, match="no longer among the trusted keys"):
        slots.verify(install, first)
    with pytest.raises(EdgekitError, match="no longer among the trusted keys"):
        slots.activate(install, a)
    assert slots.status_links(install) == {"active": b, "previous": a}       # nothing moved
    src = tmp_path / "src" / "v3"
    src.mkdir(parents=True)
    (src / "model.xml").write_text("v3")
    write_bundle({"model/model.xml": src / "model.xml"}, {"recipe": "r", "artifact": "v3"}, other,
                 tmp_path / "v3.bundle")
    c = slots.verify(install, tmp_path / "v3.bundle")["slot"]
    slots.activate(install, c)
    assert active_model(install) == "v3" and slots.damaged(install, c) == []


def test_the_slot_a_running_line_holds_is_never_removed(camera) -> None:
    """Two flashes while `edgekit run` still runs the first slot: active and previous move on, the held slot
    stays on disk until its process lets go (or is gone)."""
    install, make = camera
    a = slots.verify(install, make("v1"))["slot"]
    slots.activate(install, a)
    record = slots.hold(install, a)                        # edgekit run loaded it
    for version in ("v2", "v3"):
        slots.activate(install, slots.verify(install, make(version))["slot"])
    assert a not in slots.status_links(install).values() and (install / slots.SLOTS / a / "bundle.json").is_file()
    (install / slots.HELD / "999999999").write_text(a)      # a process that is gone holds nothing
    record.unlink()
    (install / slots.ENGINES / a / "tensorrt-fp16").mkdir(parents=True)      # the engines built for it
    slots.activate(install, slots.verify(install, make("v4"))["slot"])
    assert not (install / slots.SLOTS / a).exists() and not (install / slots.HELD / "999999999").exists()
    assert not (install / slots.ENGINES / a).exists()
