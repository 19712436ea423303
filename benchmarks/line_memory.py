"""What running the line costs a camera: peak memory, start to first answer, and throughput of the camera's
program (``python3 edgekit-device.pyz run``) against ``edgekit run`` of this edgekit and, with ``--baseline`` (once
or more), ``edgekit run`` of earlier commits (each checked out into a temporary git worktree), all in one run on one
machine.

The run's bundle is installed into a local camera folder (verified, golden-checked, activated, as flash does
it); a video (MJPG AVI) of the run's test images is cycled to ``--frames`` frames. Each program is started as
its own process, ``--rounds`` times in turn, answering the video with its JSON lines appended to a file:
start to first answer is from the process's start to the first line in that file (imports, loading and
golden-checking the slot, the first frame), peak memory is the process's own high-water mark (``VmHWM`` of
``/proc/PID/status``, read every few milliseconds until it ends: the ``ru_maxrss`` a parent gets from
``wait4`` counts the parent's own pages the child had before ``exec``), beside the largest anonymous memory
seen (``smaps_rollup``: the part that is not shared-library pages), and the modules it imported are read
from a ``-X importtime`` run of the same command. Beside them, the floor: numpy, OpenCV and the slot's runtime
alone (OpenVINO through its C library by edgekit's runner, the same settings, a compiled blob made
beforehand, as the camera's), loading the same model file with the runner's settings, decoding the same video and
answering each frame (resized, no other pre-processing) with one line: what any program running this model on
this video on this machine needs. For an OpenVINO slot a last row starts the camera's program after the
slot's compiled blob was removed (the start that compiles the IR, as after an OpenVINO upgrade). The endpoint
for /metrics and /healthz is on, as ``run`` starts it by default. The camera's program
must stay within ``--max-rss-mb`` (120) and ``--max-start-s`` (1.0), or this script fails. Table on stdout,
JSON and Markdown in ``benchmarks/results/``::

    python benchmarks/line_memory.py --run runs/sdc --baseline 3a766c2 --baseline a218b67 --name line-memory-sdc
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run_tables import installed_line, record

from edgekit.camera import pack
from edgekit.camera.slots import ENGINES
from edgekit.errors import run_reporting
from edgekit.report import markdown_table, print_table
from edgekit.stages.bench import machine

ROOT = Path(__file__).parent.parent
FLOOR = """
import json, os, sys, time
import cv2, numpy
path, backend, video, out, blobs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
threads = os.cpu_count()
if backend == "openvino":           # the C library through edgekit's runner, its blob already made
    from edgekit.backends.openvino import load
    compiled = load(path, threads, cache=blobs)
    shape, infer = compiled.input_shape, compiled.infer
else:
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    shape = tuple(session.get_inputs()[0].shape)
    infer = lambda x: session.run(None, {session.get_inputs()[0].name: x})
capture, frames, started = cv2.VideoCapture(video), 0, time.perf_counter()
with open(out, "a") as f:
    while True:
        ok, image = capture.read()
        if not ok:
            break
        image = cv2.resize(image, (shape[3], shape[2]))
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None] if shape[1] == 1 else image
        x = image.transpose(2, 0, 1)[None].astype(numpy.float32)
        infer(numpy.ascontiguousarray(x))
        f.write('{"frame": %d}\\n' % frames)
        f.flush()
        frames += 1
summary = {"frames": frames, "throughput_fps": round(frames / (time.perf_counter() - started), 2)}
open(out[: -len(".jsonl")] + ".summary.json", "w").write(json.dumps(summary))
"""
HEAVY = ("torch", "onnx", "typer", "yaml", "matplotlib", "rich", "scipy", "sklearn", "nncf", "prometheus_client")


def memory_kib(pid: int) -> tuple[int, int]:
    """(peak resident set so far, anonymous memory now) of the process in kB; (0, 0) once it is gone. The
    resident set counts the pages of the shared libraries it touched (clean, shared with any other process
    using them, reclaimable); anonymous memory is what is the process's own."""
    try:
        with open(f"/proc/{pid}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        with open(f"/proc/{pid}/smaps_rollup") as f:
            anon = next(int(line.split()[1]) for line in f if line.startswith("Anonymous:"))
        return peak, anon
    except (OSError, StopIteration):
        return 0, 0


def measure(command: list[str], env: dict, lines: Path, frames: int) -> dict:
    """Run ``command`` to its end; peak RSS, start to first line in ``lines``, and the run's own summary."""
    lines.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first, peak, anon = None, 0, 0
    while proc.poll() is None:
        now = memory_kib(proc.pid)
        peak, anon = max(peak, now[0]), max(anon, now[1])
        if first is None and lines.is_file() and b"\n" in lines.read_bytes()[:65536]:
            first = time.perf_counter() - started
        time.sleep(0.005)
    stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}: {stderr[-600:]}")
    summary = json.loads(lines.with_suffix(".summary.json").read_text())
    if summary["frames"] != frames:
        raise SystemExit(f"{' '.join(command)} answered {summary['frames']} of {frames} frames")
    return {"peak_rss_mb": round(peak / 1024, 1), "peak_anonymous_mb": round(anon / 1024, 1),
            "first_answer_s": round(first, 3),
            "fps": summary["throughput_fps"], "frames": summary["frames"]}


def heavy_imports(command: list[str], env: dict, lines: Path) -> list[str]:
    """The heavy modules the command imports (from ``python -X importtime``)."""
    lines.unlink(missing_ok=True)
    out = subprocess.run([command[0], "-X", "importtime", *command[1:]], env=env, capture_output=True, text=True)
    found = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()
             if line.startswith("import time:") and "|" in line}
    return sorted(found & set(HEAVY))


def with_out(command: list[str], lines: Path) -> list[str]:
    """The command writing its lines to ``lines`` (the floor names its file in place of OUT)."""
    return [str(lines) if part == "OUT" else part for part in command] + ([] if "OUT" in command else [str(lines)])


def floor_blob(model: Path, folder: Path) -> None:
    """The floor's compiled blob of an OpenVINO model, made before it is measured (as flash makes the camera's)."""
    from edgekit.backends.openvino import load

    load(model, os.cpu_count(), cache=folder).close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished `edgekit build` run folder")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", action="append", default=[],
                    help="a commit whose `edgekit run` is measured beside (git worktree); repeat for several")
    ap.add_argument("--max-rss-mb", type=float, default=120.0)
    ap.add_argument("--max-start-s", type=float, default=1.0)
    ap.add_argument("--name", default=None, help="record in benchmarks/results/NAME.{json,md}")
    args = ap.parse_args()
    built = json.loads((args.run / "build.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        m, install, _, video = installed_line(args.run, root, args.frames)
        app = pack.write_app(root / pack.APP)
        run_args = ["run", "--install", str(install), "--source", str(video), "--status-port", "0", "--out"]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        model = args.run / "compile" / m["artifact"]
        model = model / json.loads((model / "manifest.json").read_text())["results"]["file"]
        camera = [sys.executable, "-I", str(app), *run_args]
        programs = {"edgekit-device.pyz run": (camera, env),
                    "edgekit run": ([sys.executable, "-m", "edgekit", *run_args], env),
                    f"floor: numpy, OpenCV, {m['backend']} alone": (
                        [sys.executable, "-I", "-c", FLOOR, str(model), m["backend"], str(video), "OUT",
                         str(root / "floor-blobs")], env)}
        if m["backend"] == "openvino":      # the start after the slot's compiled blob was lost (or never made)
            floor_blob(model, root / "floor-blobs")
            programs["edgekit-device.pyz run, compiling the slot (no blob)"] = (camera, env)
        worktrees = []
        for commit in args.baseline:
            worktrees.append(root / f"baseline-{commit}")
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(worktrees[-1]), commit],
                           check=True)
            programs[f"edgekit run at {commit}"] = ([sys.executable, "-m", "edgekit", *run_args],
                                                    {**env, "PYTHONPATH": str(worktrees[-1])})
        try:
            rounds = {name: [] for name in programs}
            for _ in range(args.rounds):
                for name, (command, environment) in programs.items():
                    if "no blob" in name:
                        shutil.rmtree(install / ENGINES, ignore_errors=True)
                    lines = root / "lines.jsonl"
                    rounds[name].append(measure(with_out(command, lines), environment, lines, args.frames))
            imported = {name: heavy_imports(with_out(command, root / "lines.jsonl"), environment, root / "lines.jsonl")
                        for name, (command, environment) in programs.items()}
        finally:
            for worktree in worktrees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)])
    rows = [{"program": name, "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
             "peak_anonymous_mb": max(r["peak_anonymous_mb"] for r in rs),
             "first_answer_s": min(r["first_answer_s"] for r in rs), "fps": max(r["fps"] for r in rs),
             "heavy_imports": imported[name]} for name, rs in rounds.items()]
    cpu = machine()
    headers = ["program", "peak RSS MB", "of it anonymous MB", "start to first answer s", "fps",
               "heavy modules imported"]
    table = [[r["program"], r["peak_rss_mb"], r["peak_anonymous_mb"], r["first_answer_s"], r["fps"],
              ", ".join(r["heavy_imports"]) or "none"] for r in rows]
    title = f"{built['recipe']} {m['artifact']}: what the line costs ({args.frames} frames, best of {args.rounds})"
    print_table(title, headers, table)
    camera, floor = rows[0], next(r for r in rows if r["program"].startswith("floor"))
    ok = camera["peak_rss_mb"] <= args.max_rss_mb and camera["first_answer_s"] <= args.max_start_s and \
        not camera["heavy_imports"]
    verdict = (f"camera program: {camera['peak_rss_mb']} MB peak (need <= {args.max_rss_mb:g}; the libraries alone "
               f"{floor['peak_rss_mb']} MB, edgekit's own share {camera['peak_rss_mb'] - floor['peak_rss_mb']:.1f} MB), "
               f"first answer after {camera['first_answer_s']} s (need <= {args.max_start_s:g}): "
               f"{'pass' if ok else 'FAIL'}; {cpu['processor']} ({', '.join(cpu['isa'])})")
    print(verdict)
    if args.name:
        record(args.name, title, markdown_table(headers, table) + f"\n\n{verdict}\n",
               {"run": str(args.run), "recipe": built["recipe"], "artifact": m["artifact"], "frames": args.frames,
                "rows": rows, "rounds": rounds, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    run_reporting(lambda: sys.exit(main()))
