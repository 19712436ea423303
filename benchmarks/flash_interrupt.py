"""Interrupt flashes at random points and count how many left the camera with a valid, verifiable active
bundle: all of them, or this script fails.

A loopback camera (Debian's OpenSSH server on 127.0.0.1, ``edgekit/deploy/loopback.py``) receives a new
signed bundle per run (a small real model with its golden images, ``loopback.rehearsal_bundle``); each run
is cut at a random point (connecting, uploading the app, any byte of the bundle's upload, verifying, the
golden check, activating) or runs through. The workstation's process is what is killed
(KeyboardInterrupt out of the flash): the SSH connection drops with it, taking down whatever the camera was
doing. After each run the camera's active slot must exist, match its manifest file by file, and be the new
bundle when the flash ran through, the previous one otherwise. Table on stdout, JSON and Markdown in
``benchmarks/results/``::

    python benchmarks/flash_interrupt.py --runs 100 --name flash-interrupt
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from edgekit.artifacts import write_json
from edgekit.deploy import flash as flash_mod
from edgekit.deploy import keys, loopback, slots
from edgekit.deploy.fleet import load_fleet
from edgekit.report import markdown_table
from edgekit.stages.bench import machine

RESULTS = Path(__file__).parent / "results"
POINTS = ("connect", "upload app", "mid-transfer", "verify", "golden", "activate", "none")


class Cut(KeyboardInterrupt):
    """The workstation killed at a chosen point."""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights-kib", type=int, default=512, help="size of each bundle's weights file")
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
            expected = "v0"
            for n in range(1, args.runs + 1):
                point, fraction = rng.choice(POINTS), rng.random()

                def step(cam, name: str) -> None:
                    if point == "mid-transfer" and name.startswith("sent "):
                        done, total = (int(v) for v in name[5:].split("/"))
                        if done >= fraction * total and done < total:
                            raise Cut(name)
                    elif name == point:
                        raise Cut(name)
                b = bundle(n)
                try:
                    result = flash_mod.flash(fleet, cams, b, step=step)[0]["status"]
                except Cut:
                    result = "interrupted"
                active = slots.status(install)["active"]
                valid = active is not None and not slots.damaged(install, active["slot"])
                if result == "active":
                    expected = f"v{n}"
                rows.append({"run": n, "point": point, "result": result, "active": active and active["artifact"],
                             "expected": expected, "valid": valid, "as_expected": bool(active) and active["artifact"] == expected})
        finally:
            camera.stop()
    good = sum(r["valid"] and r["as_expected"] for r in rows)
    by_point = Counter(r["point"] for r in rows)
    table = markdown_table(["cut at", "runs", "valid active bundle", "the expected one"],
                           [[p, by_point[p], sum(r["valid"] for r in rows if r["point"] == p),
                             sum(r["as_expected"] for r in rows if r["point"] == p)] for p in POINTS if by_point[p]])
    summary = (f"{good}/{len(rows)} runs left the camera with a valid, verifiable active bundle, the new one when the "
               f"flash ran through and the previous one otherwise ({time.perf_counter() - t0:.0f} s).")
    print(table + "\n\n" + summary)
    if args.name:
        m = machine()
        write_json(RESULTS / f"{args.name}.json", {"runs": rows, "good": good, "machine": m, "seed": args.seed,
                                                   "weights_kib": args.weights_kib})
        (RESULTS / f"{args.name}.md").write_text(
            f"# {args.name}\n\n`python benchmarks/flash_interrupt.py --runs {args.runs} --seed {args.seed} --name "
            f"{args.name}` on {m['processor']}, loopback OpenSSH camera.\n\n{table}\n\n{summary}\n")
    return 0 if good == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
