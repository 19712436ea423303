"""Kill the camera's side of a flash at random instants and check, after each, that the camera can still run
its line: all runs, or this script fails.

A loopback camera (Debian's OpenSSH server on 127.0.0.1, ``edgekit/deploy/loopback.py``) receives a new signed
bundle per run (a small real model with its golden images, ``loopback.rehearsal_bundle``). Each run picks a
camera-side step — the bundle's upload (the camera's ``sftp-server``), ``verify`` (signature, hash, unpacking),
``golden``, ``activate`` — or none, waits until that step's process runs on the camera, sleeps a random
fraction of the step's measured duration and sends SIGKILL to the step's whole process tree there: what a
crash, an OOM kill or a watchdog reset does to the camera, while the workstation carries on as it would
(the flash reports the camera failed). After each run the invariant is the line's, not the file system's:
the active slot loads as ``edgekit run`` loads it (``edgekit.camera.model.LineModel.from_slot``: its runner
and ``pipeline.json``) and answers its golden images within their tolerances; it must be the new bundle
when the flash reported the switch and the one before otherwise, and the workstation's ``incoming/`` holds no
bundle afterwards. Table on stdout, JSON and Markdown in ``benchmarks/results/``::

    python benchmarks/flash_interrupt.py --runs 200 --name flash-interrupt

What it cannot do here: drop the writes not yet flushed at a random point (a power cut). That needs
device-mapper (``dm-flakey`` / ``dm-log-writes`` on a loop device), which this machine's kernel does not
expose to us (no /dev/mapper); the script says so in its output. A TensorRT device kit's engine build is
not exercised either (no TensorRT here): the rehearsal bundles are ONNX Runtime artifacts.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from run_tables import record

from edgekit.camera import slots
from edgekit.camera.model import LineModel
from edgekit.deploy import flash as flash_mod
from edgekit.deploy import keys, loopback
from edgekit.deploy.fleet import load_fleet
from edgekit.report import markdown_table

STEPS = ("upload bundle", "verify", "golden", "activate")
POINTS = STEPS + ("none",)


def _processes() -> dict[int, tuple[int, list[str]]]:
    """Every process: pid -> (parent pid, command line)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        found[int(entry)] = (parent, [c.decode(errors="replace") for c in cmdline if c])
    return found


def camera_tree(sshd_pid: int, step: str, install: Path) -> list[int]:
    """The camera-side processes of ``step`` under the loopback camera's sshd, with their children. The upload
    has no process of its own (the camera's sshd serves SFTP in the session's process): while a ``.part`` file
    is in ``incoming/``, that is every session process under the listening sshd."""
    procs = _processes()

    def under(pid: int, root: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = procs.get(pid, (0, []))[0]
        return False
    if step == "upload bundle":
        if not any(p.suffix == ".part" for p in (install / "incoming").glob("*.part")):
            return []
        heads = [p for p, (parent, _) in procs.items() if parent == sshd_pid]
    else:
        heads = [p for p, (_, cmd) in procs.items() if step in cmd and any(a.endswith(".pyz") for a in cmd)
                 and under(p, sshd_pid)]
    return [p for p in procs if any(under(p, h) for h in heads)]


def step_durations(sshd_pid: int, install: Path, flash) -> dict[str, float]:
    """How long each camera-side step's process lives, from one uninterrupted flash (polled every ms)."""
    seen: dict[str, list[float]] = {}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = time.monotonic()
            for step in STEPS:
                if camera_tree(sshd_pid, step, install):
                    seen.setdefault(step, [now, now])[1] = now
            time.sleep(0.001)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    flash()
    done.set()
    watcher.join()
    return {step: max(0.005, span[1] - span[0]) for step, span in seen.items()}


def kill_at(sshd_pid: int, install: Path, step: str, fraction: float, duration: float,
            timeout: float = 30.0) -> dict:
    """Wait for ``step`` on the camera, then SIGKILL its process tree ``fraction`` of its duration later."""
    start = time.monotonic()
    while not camera_tree(sshd_pid, step, install):
        if time.monotonic() - start > timeout:
            return {"killed": 0, "after_s": None}
        time.sleep(0.0005)
    began = time.monotonic()
    time.sleep(fraction * duration)
    victims = camera_tree(sshd_pid, step, install)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"killed": len(victims), "after_s": round(time.monotonic() - began, 4)}


def line_can_run(install: Path) -> tuple[bool, str, str | None]:
    """Whether the active slot loads as the runtime loads it and answers its golden images."""
    active = slots.status(install)["active"]
    if active is None:
        return False, "no active slot", None
    try:
        LineModel.from_slot(install, active["slot"], threads=1).close()
    except Exception as exc:  # noqa: BLE001 - any failure is the finding
        return False, f"{type(exc).__name__}: {exc}", active["artifact"]
    return True, "", active["artifact"]


def power_cut_available() -> str:
    """Why the power-cut variant cannot run here, or "" where device-mapper is at hand."""
    if not Path("/dev/mapper/control").exists():
        return "no /dev/mapper/control: the kernel's device-mapper (dm-flakey, dm-log-writes) is not exposed here"
    return ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights-kib", type=int, default=2048, help="size of each bundle's weights file")
    ap.add_argument("--name", default=None, help="record in benchmarks/results/NAME.{json,md}")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows, t0 = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        camera = loopback.start(root / "sshd")
        try:
            key = keys.load_private(keys.new_key("mill", root / "keys"))
            install = camera.install("cam", root / "keys" / "mill.pub")
            (root / "cameras.yaml").write_text(f"known_hosts: {camera.known_hosts}\ncameras:\n  - "
                                               + camera.fleet_entry("cam", install, "intel-cpu") + "\n")
            fleet = load_fleet(root / "cameras.yaml")
            cams = fleet.select(every=True)

            def bundle(n: int) -> Path:
                return loopback.rehearsal_bundle(root / "src", key, f"v{n}", args.weights_kib)

            assert flash_mod.flash(fleet, cams, bundle(0))[0]["status"] == "active"
            durations = step_durations(camera.process.pid, install, lambda: flash_mod.flash(fleet, cams, bundle(-1)))
            before = "v-1"
            for n in range(1, args.runs + 1):
                point, fraction = rng.choice(POINTS), rng.random()
                killer: dict = {}
                thread = None
                if point != "none":
                    thread = threading.Thread(target=lambda: killer.update(
                        kill_at(camera.process.pid, install, point, fraction, durations.get(point, 0.05))), daemon=True)
                    thread.start()
                result = flash_mod.flash(fleet, cams, bundle(n))[0]
                if thread is not None:
                    thread.join()
                runs, why, artifact = line_can_run(install)
                # reported active: the new bundle runs; reported failed: the old one, or the new one when the kill
                # came after the switch but before the camera could say so (a re-run then finds it active)
                allowed = {f"v{n}"} if result["status"] == "active" else {before, f"v{n}"}
                rows.append({"run": n, "point": point, "fraction": round(fraction, 3), **killer,
                             "flash": result["status"], "error": result.get("error", ""), "active": artifact,
                             "before": before, "line_runs": runs, "why": why,
                             "switched_unreported": result["status"] != "active" and artifact == f"v{n}",
                             "as_expected": runs and artifact in allowed})
                before = artifact or before
        finally:
            camera.stop()
    good = sum(r["as_expected"] for r in rows)
    by_point = Counter(r["point"] for r in rows)
    table = markdown_table(
        ["killed on the camera during", "runs", "a process was killed", "flash reported failed",
         "switched, reported failed", "active slot loads and passes golden", "the new or the old slot as reported"],
        [[p, by_point[p], sum(bool(r.get("killed")) for r in rows if r["point"] == p),
          sum(r["flash"] == "failed" for r in rows if r["point"] == p),
          sum(r["switched_unreported"] for r in rows if r["point"] == p),
          sum(r["line_runs"] for r in rows if r["point"] == p),
          sum(r["as_expected"] for r in rows if r["point"] == p)] for p in POINTS if by_point[p]])
    cut = power_cut_available()
    summary = (f"{good}/{len(rows)} runs left the camera's active slot loading as `edgekit run` loads it (LineModel.from_slot) "
               f"and answering its golden images: the new bundle when the flash reported the switch, the previous one "
               f"or (killed after the switch, before the camera could answer) the new one when it reported a failure "
               f"({time.perf_counter() - t0:.0f} s). Each step's measured duration on the camera: "
               + ", ".join(f"{s} {1000 * d:.0f} ms" for s, d in durations.items()) + ". Power-cut variant: "
               + (f"not run ({cut})." if cut else "available but not implemented in this script."))
    print(table + "\n\n" + summary)
    if args.name:
        record(args.name, "Flashes killed on the camera's side", table + "\n\n" + summary,
               {"runs": rows, "good": good, "seed": args.seed, "weights_kib": args.weights_kib,
                "durations_s": durations, "power_cut": cut or "available"})
    return 0 if good == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
