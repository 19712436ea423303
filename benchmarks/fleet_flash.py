"""Flash a fleet of loopback cameras, some of them broken, and check that every healthy camera switches, every
broken one is named with its cause, and no camera's failure holds another beyond its own time limit.

Each camera is an install folder on a loopback OpenSSH server (``edgekit/deploy/loopback.py``: unprivileged,
high ports). The faults, each on a share of the cameras, are injected where they happen:

- ``hangs``: the camera's interpreter never answers (a script that sleeps): stopped at the command limit;
- ``dies``: the camera's device app is killed (SIGKILL) during the golden check;
- ``host key``: the camera answers on a second server whose host key is not the one the fleet knows;
- ``full disk``: the install folder is a 64 KiB tmpfs (root only; left out, and said, elsewhere);
- ``passphrase``: the fleet's identity file for the camera is passphrase-protected.

Table on stdout, JSON and Markdown in ``benchmarks/results/``::

    python benchmarks/fleet_flash.py --cameras 50 --name fleet-flash
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from run_tables import record

from edgekit.camera import slots
from edgekit.deploy import flash as flash_mod
from edgekit.deploy import keys, loopback
from edgekit.deploy.fleet import load_fleet
from edgekit.report import markdown_table

FAULTS = ("hangs", "dies", "host key", "full disk", "passphrase")
CAUSE = {"hangs": "did not finish within", "dies": "was killed on the camera", "host key": "host key",
         "full disk": "KiB free", "passphrase": "cannot be used"}


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def _full_disk(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)]).returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cameras", type=int, default=50)
    ap.add_argument("--faulty", type=float, default=0.3, help="share of the cameras given a fault")
    ap.add_argument("--command-timeout", type=float, default=20.0, help="each device command's limit, s")
    ap.add_argument("--in-flight", type=int, default=flash_mod.MAX_IN_FLIGHT)
    ap.add_argument("--name", default=None, help="record in benchmarks/results/NAME.{json,md}")
    args = ap.parse_args()
    flash_mod.DEFAULT_COMMAND_TIMEOUT_S = args.command_timeout
    mounts: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        good, other = loopback.start(root / "sshd"), loopback.start(root / "sshd-other")
        try:
            key = keys.load_private(keys.new_key("mill", root / "keys"))
            pub = root / "keys" / "mill.pub"
            hang = _script(root / "hang.sh", "sleep 3600")
            dies = _script(root / "dies.sh", f'case "$*" in *" golden "*) kill -9 $$;; esac\nexec {sys.executable} "$@"')
            locked = root / "locked_ed25519"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(locked)], check=True)
            host_key = Path(f"{good.host_key}.pub").read_text().strip()
            known = root / "known_hosts"          # the second server's port listed with the first's key: changed
            known.write_text(good.known_hosts.read_text() + f"[127.0.0.1]:{other.port} {host_key}\n")
            entries, planned = [], {}
            n_faulty = round(args.faulty * args.cameras)
            for i in range(args.cameras):
                name = f"cam-{i:03d}"
                fault = FAULTS[i % len(FAULTS)] if i < n_faulty else "healthy"
                install = root / "cameras" / name
                if fault == "full disk" and not _full_disk(install):
                    fault = "healthy (tmpfs needs root)"
                elif fault == "full disk":
                    mounts.append(install)
                loopback.prepare_install(install, pub)
                entry = yaml.safe_load(good.fleet_entry(name, install, "intel-cpu", line="hr1"))
                entry.update({"hangs": {"python": str(hang)}, "dies": {"python": str(dies)},
                              "host key": {"port": other.port}, "passphrase": {"identity": str(locked)}}.get(fault, {}))
                entries.append(entry)
                planned[name] = fault
            (root / "cameras.yaml").write_text(yaml.safe_dump({"known_hosts": str(known), "cameras": entries}))
            fleet = load_fleet(root / "cameras.yaml")
            bundle = loopback.rehearsal_bundle(root / "src", key, "v1", 256)
            t0 = time.monotonic()
            results = flash_mod.flash(fleet, list(fleet.cameras), bundle)
            wall = time.monotonic() - t0
            rows = []
            for r in results:
                fault = planned[r["camera"]]
                active = slots.status_links(root / "cameras" / r["camera"])["active"]
                healthy = fault.startswith("healthy")
                ok = (r["status"] == "active" and active is not None) if healthy else (
                    r["status"] == "failed" and CAUSE[fault] in r.get("error", "") and active is None)
                rows.append({"camera": r["camera"], "fault": fault, "status": r["status"],
                             "error": r.get("error", ""), "seconds": r["seconds"],
                             "as_expected": ok})
        finally:
            for folder in mounts:
                subprocess.run(["umount", str(folder)])
            good.stop()
            other.stop()
    kinds = Counter(r["fault"] for r in rows)
    table = markdown_table(["camera kind", "cameras", "switched", "failed", "as expected", "cause, as reported",
                            "longest flash (s)"],
                           [[k, n, sum(r["status"] == "active" for r in rows if r["fault"] == k),
                             sum(r["status"] == "failed" for r in rows if r["fault"] == k),
                             sum(r["as_expected"] for r in rows if r["fault"] == k),
                             next((r["error"].split(": ", 1)[-1][:90] for r in rows if r["fault"] == k and r["error"]),
                                  ""),
                             max(r["seconds"] for r in rows if r["fault"] == k)] for k, n in sorted(kinds.items())])
    good_n = sum(r["as_expected"] for r in rows)
    healthy_last = max((r["seconds"] for r in rows if r["fault"].startswith("healthy")), default=0.0)
    summary = (f"{good_n}/{len(rows)} cameras as expected: every healthy camera switched, every faulty one failed "
               f"alone with its cause named and its active slot untouched. Wall time {wall:.0f} s for "
               f"{len(rows)} cameras, at most {args.in_flight} at once, each device command limited to "
               f"{args.command_timeout:g} s; the longest healthy camera's flash {healthy_last:.0f} s (once in flight).")
    print(table + "\n\n" + summary)
    if args.name:
        record(args.name, "A fleet flash with broken cameras", table + "\n\n" + summary,
               {"cameras": rows, "wall_s": round(wall, 1), "in_flight": args.in_flight,
                "command_timeout_s": args.command_timeout})
    return 0 if good_n == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
