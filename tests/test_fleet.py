"""The fleet inventory is read strictly: every mistake is one line naming the file and the camera."""
from __future__ import annotations

import pytest

from edgekit.deploy.fleet import load_fleet
from edgekit.errors import EdgekitError

GOOD = "{name: a, host: 10.0.0.1, user: e, identity: id, target: jetson-orin, install: /opt/edgekit, line: hr1}"


def write(tmp_path, text: str):
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    return path


def test_a_good_inventory_resolves_targets_and_paths(tmp_path) -> None:
    fleet = load_fleet(write(tmp_path, f"known_hosts: kh\ncameras:\n  - {GOOD}\n"))
    (cam,) = fleet.cameras
    assert cam.target == "jetson-orin-agx" and cam.port == 22 and cam.identity == tmp_path / "id"
    assert fleet.known_hosts == tmp_path / "kh" and fleet.select(line="hr1") == [cam]
    with pytest.raises(EdgekitError, match="no camera named 'b'"):
        fleet.select(names=["b"])
    with pytest.raises(EdgekitError, match="name the cameras"):
        fleet.select()


@pytest.mark.parametrize("text,message", [
    ("cameras: []\n", "known_hosts: missing"),
    (f"known_hosts: kh\ncameras:\n  - {GOOD}\n  - {GOOD}\n", "camera name\\(s\\) a appear twice"),
    ("known_hosts: kh\ncameras:\n  - {name: a, host: h, user: u, identity: i, target: intel-cpu, install: opt}\n",
     "camera 1: install must be an absolute path"),
    ("known_hosts: kh\ncameras:\n  - {name: a, host: h, user: u, identity: i, target: intel-cpu, install: /o, prot: 2}\n",
     "camera 1: unknown key\\(s\\) prot"),
    ("known_hosts: kh\ncameras:\n  - {name: a, host: h, identity: i, target: intel-cpu, install: /o}\n",
     "camera 1: missing user"),
    ("known_hosts: kh\ncameras:\n  - {name: a, host: h, user: u, identity: i, target: intel-cpu, install: /o, port: 0}\n",
     "port must be a number"),
    ("known_hosts: kh\ncameras:\n  - {name: a, host: h, user: u, identity: i, target: nope, install: /o}\n",
     "nope"),
])
def test_mistakes_are_named(tmp_path, text, message) -> None:
    with pytest.raises(EdgekitError, match=message):
        load_fleet(write(tmp_path, text))
