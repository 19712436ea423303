"""The README's main command, run as a new user runs it, recorded per CPU class.

Usage: python benchmarks/main_command.py [--isa-cap avx2|avx512_core_bf16] [--keep DIR]

Runs `edgekit build sdc-squeezenet-mrf --target intel-cpu` in a fresh folder with a fresh HOME (no calibration
cache, no built-in data), times it, and adds a row to results/main-command.json and .md: the CPU's model and its
INT8/bf16 instruction sets, the wall time, each artifact's accuracy, how many test answers INT8 changed against
FP32 (each direction) and every gate's outcome. One row per CPU class and date; a later run of the same class on
the same day replaces its row.

``--isa-cap`` runs the same command with oneDNN (PyTorch's and OpenVINO's CPU kernels) limited to an older
instruction set (ONEDNN_MAX_CPU_ISA), and OpenCV's to AVX2: the kernels a CPU without AMX (or without AVX-512)
would run, emulated on this one. Such a row says so; it stands beside, not for, a run on that CPU.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgekit.artifacts import write_json
from edgekit.report import markdown_table
from edgekit.targets import host_cpu

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "main-command"
COMMAND = ["edgekit", "build", "sdc-squeezenet-mrf", "--target", "intel-cpu"]
WHAT = ("the README's main command as a new user runs it (fresh folder, fresh HOME), a row per CPU class: CPU model and "
        "INT8/bf16 flags, wall time, each artifact's accuracy on the built-in test images, INT8's changed answers and "
        "agreement with FP32, its drop interval, every gate's outcome; rows marked emulated ran with oneDNN capped at an "
        "older instruction set")
CAPS = {"avx2": ("AVX2", "AVX2"), "avx512_core_bf16": ("AVX512_CORE_BF16", "AVX512_SKX")}   # oneDNN, OpenCV


def cpu_class(flags: list[str], cap: str | None) -> str:
    """The class of CPU whose kernels ran: AMX, AVX-512 VNNI (+ bf16) or AVX2 only."""
    if cap == "avx2" or not {"avx512_vnni", "amx_int8"} & set(flags):
        return "AVX2 only"
    if cap == "avx512_core_bf16" or "amx_int8" not in flags:
        return "AVX-512 VNNI" + (" + BF16" if "avx512_bf16" in flags else "") + ", no AMX"
    return "AMX + AVX-512 VNNI/BF16"


def run(cap: str | None, keep: Path | None) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="edgekit-main."))
    env = {**os.environ, "HOME": str(folder / "home"), "EDGEKIT_NO_PROGRESS": "1", "COLUMNS": "160"}
    if cap:
        env["ONEDNN_MAX_CPU_ISA"], opencv_max = CAPS[cap]
        env["ATEN_CPU_CAPABILITY"] = "avx2" if cap == "avx2" else "avx512"
        env["OPENCV_CPU_DISABLE"] = {"AVX2": "AVX512_SKX,AVX512_COMMON,AVX512_ICL",
                                     "AVX512_SKX": "AVX512_ICL"}[opencv_max]
    exe = shutil.which("edgekit") or sys.exit("edgekit is not installed in this environment")
    start = time.perf_counter()
    proc = subprocess.run([exe, *COMMAND[1:]], cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (folder / "output.txt").write_text(proc.stdout + proc.stderr)
    run_dir = folder / "runs" / "sdc-squeezenet-mrf--intel-cpu"
    results = json.loads((run_dir / "validate" / "results.json").read_text())
    name, flags = host_cpu()
    int8 = next(g for g in results["gates"] if g["artifact"].endswith("int8") and "drop vs FP32" in g["gate"])
    ev = int8["evidence"]
    row = {
        "date": datetime.date.today().isoformat(),
        "cpu": name, "isa": flags, "cpu_class": cpu_class(flags, cap),
        "emulated": f"oneDNN capped at {CAPS[cap][0]}, OpenCV at {CAPS[cap][1]}" if cap else None,
        "command": " ".join(COMMAND), "exit": proc.returncode, "wall_s": round(wall, 1),
        "test_images": ev["images"],
        "accuracy": {r["artifact"]: round(r[results["metric"]["key"]], 2) for r in results["rows"]},
        "int8_changed": {"worse": ev["worse"], "better": ev["better"],
                         "wrong_either_way": ev["changed"] - ev["worse"] - ev["better"]},
        "int8_agreement_pct": round(100.0 * (1 - ev["changed"] / ev["images"]), 2),
        "int8_drop": [round(ev["low"], 2), round(ev["high"], 2)],
        "gates": {f"{g['artifact']}: {g['gate']}": g["status"] for g in results["gates"]},
        "passed": results["passed"], "warned": len(results.get("warned", [])),
    }
    if keep:
        shutil.copytree(folder, keep / f"main-{row['cpu_class'].split()[0].lower()}-{int(time.time())}")
    shutil.rmtree(folder, ignore_errors=True)
    return row


def publish(row: dict) -> list[dict]:
    path = RESULTS.with_suffix(".json")
    record = json.loads(path.read_text()) if path.is_file() else {"what": WHAT, "rows": []}
    rows = [r for r in record["rows"]
            if (r["cpu_class"], r["emulated"], r["date"]) != (row["cpu_class"], row["emulated"], row["date"])]
    rows.append(row)
    write_json(path, {**record, "rows": rows})
    write_table(rows)
    return rows


def write_table(rows: list[dict]) -> None:
    """results/main-command.md from the recorded rows."""
    table = [[r["date"], r["cpu"], ", ".join(r["isa"]) or "-", r["cpu_class"] + (f" (emulated: {r['emulated']})"
              if r["emulated"] else ""), f"{r['wall_s'] / 60:.1f} min", r["test_images"],
              " / ".join(f"{v:.2f}" for v in r["accuracy"].values()),
              " / ".join(str(v) for v in r["int8_changed"].values()), f"{r['int8_agreement_pct']:.2f} %",
              f"[{r['int8_drop'][0]:.2f}, {r['int8_drop'][1]:.2f}]",
              ("PASS" if r["passed"] and not r["warned"] else "pass, {} warn".format(r["warned"]) if r["passed"]
               else "FAIL") + f" (exit {r['exit']})"] for r in rows]
    artifacts = " / ".join(rows[-1]["accuracy"])
    text = ["# The README's main command, per CPU class", "",
            f"`{' '.join(COMMAND)}` in a fresh folder with a fresh HOME, recorded by `benchmarks/main_command.py`. "
            f"Accuracy % of {artifacts} on the built-in test split. INT8 changed: test answers the INT8 artifact got "
            "wrong where FP32 was right / right where FP32 was wrong / wrong in another way where FP32 was wrong. "
            "INT8 agrees: the share of test images where it gave FP32's answer. INT8 drop: its 95 % interval "
            "(exact McNemar).", "",
            markdown_table(["date", "CPU", "INT8/bf16 flags", "class", "wall", "test images", "accuracy %",
                            "INT8 changed", "INT8 agrees", "INT8 drop", "gates"], table), ""]
    RESULTS.with_suffix(".md").write_text("\n".join(text))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--isa-cap", choices=sorted(CAPS), help="emulate an older CPU's kernels (see the module doc)")
    p.add_argument("--keep", type=Path, help="copy the run folder (with the command's output) here")
    args = p.parse_args()
    row = run(args.isa_cap, args.keep)
    publish(row)
    print(json.dumps(row, indent=2))
    print(f"table: {RESULTS.with_suffix('.md')}")


if __name__ == "__main__":
    main()
