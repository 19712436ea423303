"""The drift watch on a long line: false alarms on clean frames, frames until each robustness condition is
noticed, what the watch says it resembles, and what watching costs the run loop.

The frames the camera watches must be images the bundle's reference never saw, or the clean part flatters the
watch. ``prepare`` therefore holds ``--per-class`` images of each class out of a NEU-DET-layout folder (none of
the split file's test images): the build trains on the rest but the test split, the bundle's reference is the
test split, and the held-out images are the line::

    python benchmarks/drift_watch.py prepare --data ../shared/datasets/NEU-DET \\
        --split-file benchmarks/splits/neu-det-test.txt --out /tmp/drift
    edgekit build sdc-squeezenet-mrf --target intel-cpu --data /tmp/drift/data \\
        --split-file benchmarks/splits/neu-det-test.txt --robustness --epochs 3 --out /tmp/drift/runs
    python benchmarks/drift_watch.py measure --run /tmp/drift/runs/sdc-squeezenet-mrf--intel-cpu \\
        --frames /tmp/drift/held-out --name drift-watch-sdc

``measure`` installs the run's bundle on a local camera (verified, golden-checked, activated) and, with the
camera's own code (:mod:`edgekit.camera.drift`, the slot's model), takes each held-out frame's features, the
model's score and answer once: as read (the validated images' own encoding), as a video encoder would carry them
(MJPG, decoded), and under each robustness condition at each severity (the generator's own code, each image
drawn anew). The line is then replayed through :class:`DriftWatch` in simulated time at the line rate the recipe
requires, every frame sampled (at that rate the watch's time per frame is far inside its budget):
``--clean-hours`` of clean frames drawn at random, and, harder, in runs of one class (``--run-length`` frames
each), each as read and through MJPG; then, per condition over ``--trials`` lines, clean frames fill the window
and the condition starts: the frames until the first alert, the features that alerted, the condition each
resembled once a whole window had drifted, and the figure validation measured there. The cost: the watch's time per sampled frame beside the run loop's
time per frame, and `edgekit run`'s throughput on a video with the watch and without, alternating for
``--rounds`` rounds (best of each). Table on stdout, JSON and Markdown in ``benchmarks/results/``.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from run_tables import installed_line, make_video, record

from edgekit.camera import slots
from edgekit.camera.drift import DriftOptions, DriftWatch, image_features
from edgekit.camera.model import LineModel
from edgekit.camera.runtime import RunOptions, run
from edgekit.data import robustness
from edgekit.data.recipe_data import read_grey
from edgekit.errors import EdgekitError, run_reporting
from edgekit.report import markdown_table, print_table
from edgekit.stages.bench import machine


def prepare(data: Path, split_file: Path, out: Path, per_class: int, seed: int) -> None:
    """``out/data``: ``data`` without the held-out images (links); ``out/held-out``: those images."""
    test = {line.strip() for line in split_file.read_text().splitlines() if line.strip() and not line.startswith("#")}
    images = sorted((data / "IMAGES").glob("*.jpg"))
    by_class = collections.defaultdict(list)
    for image in images:
        if image.stem not in test:
            by_class[image.stem.rsplit("_", 1)[0]].append(image)
    rng = np.random.default_rng(seed)
    held = {p for group in by_class.values() for p in rng.choice(group, per_class, replace=False)}
    for folder in ("data/IMAGES", "data/ANNOTATIONS", "held-out"):
        (out / folder).mkdir(parents=True, exist_ok=False)
    for image in images:
        note = data / "ANNOTATIONS" / f"{image.stem}.xml"
        if image in held:
            (out / "held-out" / image.name).symlink_to(image.resolve())
        else:
            (out / "data/IMAGES" / image.name).symlink_to(image.resolve())
            (out / "data/ANNOTATIONS" / note.name).symlink_to(note.resolve())
    print(f"{out / 'data'}: {len(images) - len(held)} images; {out / 'held-out'}: {len(held)} held out "
          f"({per_class} per class, seed {seed})")


def as_video_frames(images: list[np.ndarray], root: Path) -> list[np.ndarray]:
    """``images`` as a camera's video carries them: MJPG-encoded and decoded, BGR."""
    video = make_video(images, len(images), root / "frames.avi")
    cap, frames = cv2.VideoCapture(str(video)), []
    ok, frame = cap.read()
    while ok:
        frames.append(frame)
        ok, frame = cap.read()
    cap.release()
    if len(frames) != len(images):
        raise EdgekitError(f"{video}: {len(frames)} frames decoded of {len(images)}")
    return frames


def observed(model: LineModel, frames: list[np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's features and the model's score, as the camera takes them (frames, 6), and what the model
    answered (its group)."""
    rows, groups = [], []
    for frame in frames:
        score, group = model.frame_summary(model(frame))
        rows.append(image_features(frame, size) + [score])
        groups.append(group)
    return np.array(rows), np.array(groups)


def replay(watch: DriftWatch, line: tuple[np.ndarray, np.ndarray], start: float, fps: float) -> list[tuple[int, dict]]:
    """Feed the line's rows and groups at ``fps`` from ``start`` seconds; (sample, state) each time an alert
    turned on."""
    raised = []
    for k, (row, group) in enumerate(zip(*line)):
        before = dict(watch.raised)
        state = watch.add(row, group, start + k / fps)
        if state is not None and watch.raised != before:
            raised.append((k, state))
    return raised


def drawn(line: tuple[np.ndarray, np.ndarray], picks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return line[0][picks], line[1][picks]


def clean_line(line: tuple[np.ndarray, np.ndarray], labels: np.ndarray, frames: int, run_length: int | None,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` clean frames drawn at random, or in runs of ``run_length`` frames of one class."""
    if not run_length:
        return drawn(line, rng.integers(0, len(labels), frames))
    classes = np.unique(labels)
    picks = []
    while len(picks) < frames:
        members = np.flatnonzero(labels == rng.choice(classes))
        picks.extend(rng.choice(members, run_length))
    return drawn(line, np.array(picks[:frames]))


def measure(args: argparse.Namespace) -> int:
    results_json = json.loads((args.run / "validate" / "results.json").read_text())
    fps = results_json["line_rate_fps"]
    names = sorted(p for p in Path(args.frames).iterdir() if p.suffix.lower() in (".jpg", ".png", ".bmp"))
    if len(names) < 50:
        raise EdgekitError(f"{args.frames}: {len(names)} images; at least 50 held-out frames are needed")
    labels = np.array([p.stem.rsplit("_", 1)[0] for p in names])
    options = DriftOptions(window=args.window, false_alarms_per_day=args.false_alarms)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle, install, test_images, video = installed_line(args.run, root, args.video_frames)
        slot = slots.status_links(install)[slots.ACTIVE]
        model = LineModel.from_slot(install, slot, args.threads)
        reference = model.drift
        if reference is None:
            raise EdgekitError(f"{args.run}: its bundle carries no drift reference (validate it with this edgekit)")
        images = [read_grey(p) for p in names]
        t0 = time.perf_counter()
        clean = {"as read": observed(model, images, reference.size),
                 "through MJPG": observed(model, as_video_frames(images, root), reference.size)}
        tables = {name: observed(model, degraded, reference.size)
                  for name, degraded in robustness.degraded(images, args.seed + 1)}
        print(f"features and scores of {len(images)} held-out frames x {len(tables) + 2} versions: "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
        cost = watch_cost(model, as_video_frames(images, root), reference)
        model.close()
        speed = run_speed(install, video, args.rounds, args.threads)

    rng = np.random.default_rng(args.seed)
    clean_frames = int(args.clean_hours * 3600 * fps)
    lines = {}
    for frames_are, table in clean.items():
        for order, run_length in (("random order", None), (f"runs of {args.run_length} of one class",
                                                           args.run_length)):
            watch = DriftWatch(reference, options)
            raised = replay(watch, clean_line(table, labels, clean_frames, run_length, rng), 0.0, fps)
            lines[f"{frames_are}, {order}"] = {
                "hours": args.clean_hours, "frames": clean_frames, "alerts": len(raised),
                "per_hour": len(raised) / args.clean_hours, "alpha": watch.alpha,
                "features": dict(collections.Counter(f for _, s in raised for f, v in s["features"].items()
                                                     if v["alert"]))}
    conditions = {}
    for name in tables:
        delays, alerted, resembled = [], collections.Counter(), collections.Counter()
        for trial in range(args.trials):
            watch = DriftWatch(reference, options)
            warm = clean_line(clean["as read"], labels, 2 * args.window, None, rng)
            replay(watch, warm, 0.0, fps)
            drifted = drawn(tables[name], rng.integers(0, len(labels), args.max_frames))
            raised = replay(watch, drifted, len(warm[0]) / fps, fps)
            delays.append(raised[0][0] + 1 if raised else None)
            if raised:
                alerted.update(f for f, v in raised[0][1]["features"].items() if v["alert"])
            full = watch.compare() if args.max_frames >= args.window else None       # a whole window drifted
            for f, v in (full or {}).get("features", {}).items():
                if v["alert"] and v.get("resembles"):
                    resembled[v["resembles"]["condition"]] += 1
        found = [d for d in delays if d is not None]
        conditions[name] = {"trials": args.trials, "noticed": len(found),
                            "frames_median": statistics.median(found) if found else None,
                            "frames_max": max(found) if found else None,
                            "seconds_median": round(statistics.median(found) / fps, 1) if found else None,
                            "first_features": dict(alerted), "resembles": dict(resembled),
                            "validated": reference.accuracy.get(name)}

    machine_info = machine()
    headers = ["condition", "noticed", "frames to alert (median, max)", "s at line rate", "first alerts",
               "resembles (features x trials)", f"validated {reference.figure}"]
    table = [[name, f"{c['noticed']}/{c['trials']}", f"{c['frames_median']}, {c['frames_max']}", c["seconds_median"],
              ", ".join(f"{f} {n}" for f, n in c["first_features"].items()) or "-",
              ", ".join(f"{k} {n}" for k, n in sorted(c["resembles"].items(), key=lambda kv: -kv[1])) or "-",
              c["validated"]] for name, c in conditions.items()]
    clean_headers = ["clean line", "hours", "frames", "alerts", "per hour", "alpha per look", "features"]
    clean_table = [[k, v["hours"], v["frames"], v["alerts"], round(v["per_hour"], 3), f"{v['alpha']:.2g}",
                    ", ".join(f"{f} {n}" for f, n in v["features"].items()) or "-"] for k, v in lines.items()]
    cost_headers = ["cost", "value"]
    share = cost["watch_ms"] / speed["frame_ms_without"]
    cost_table = [["run loop frame time without the watch, ms", speed["frame_ms_without"]],
                  ["watch per sampled frame (features, window, comparisons), ms", round(cost["watch_ms"], 4)],
                  ["... as a share of the frame time, every frame sampled", f"{100 * share:.1f} %"],
                  ["budget (share of the loop's time the watch may take)", f"{100 * options.budget:.0f} %"],
                  ["frames sampled by `edgekit run` with the watch", f"{100 * speed['sampled']:.0f} %"],
                  ["watch time per frame of the line (cost x share sampled)",
                   f"{100 * share * speed['sampled']:.2f} %"],
                  ["`edgekit run` fps without / with the watch (best of rounds)",
                   f"{speed['fps_without']} / {speed['fps_with']}"],
                  ["throughput change with the watch",
                   f"{100 * (speed['fps_with'] / speed['fps_without'] - 1):+.1f} %"]]
    title = (f"drift watch: {bundle['recipe']} {bundle['artifact']}, reference {len(reference.values['brightness'])} "
             f"test images, line {fps:.1f} fps, window {options.window}, {options.false_alarms_per_day} false "
             f"alarm/day target, {len(names)} held-out frames")
    print_table(title, headers, table)
    print_table("clean frames", clean_headers, clean_table)
    print_table("cost", cost_headers, cost_table)
    overhead = share * speed["sampled"]          # the watch's time per frame of the line, over the loop's
    verdict = (f"watch overhead {100 * overhead:.2f} % of the frame time (need <= 5 %); clean false alarms "
               f"{lines['as read, random order']['per_hour']:.3f}/h (target {options.false_alarms_per_day / 24:.3f}/h); "
               f"{machine_info['processor']} ({', '.join(machine_info['isa'])})")
    print(verdict)
    if args.name:
        md = "\n\n".join([markdown_table(headers, table), markdown_table(clean_headers, clean_table),
                          markdown_table(cost_headers, cost_table), verdict])
        record(args.name, title, md, {"run": str(args.run), "frames": str(args.frames), "line_fps": fps,
                                      "options": options._asdict(), "conditions": conditions, "clean": lines,
                                      "cost": cost, "speed": speed, "verdict": verdict})
    return 0 if overhead <= 0.05 else 1


def watch_cost(model: LineModel, frames: list[np.ndarray], reference) -> dict:
    """Milliseconds per sampled frame of everything the watch does (features, score, window, comparisons), every
    frame sampled, over the frames cycled to 2000."""
    answers = [model.frame_summary(model(frame)) for frame in frames]
    watch = DriftWatch(reference, DriftOptions(window=500, budget=1.0))
    n = 2000
    t0 = time.perf_counter()
    for k in range(n):
        watch.observe(frames[k % len(frames)], answers[k % len(frames)])
    return {"watch_ms": 1000 * (time.perf_counter() - t0) / n, "sampled": n}


def run_speed(install: Path, video: Path, rounds: int, threads: int | None) -> dict:
    """`edgekit run` over the video with the watch and without, alternating; best round of each."""
    best = {"with": 0.0, "without": 0.0}
    sampled = 0.0
    for _ in range(rounds):
        for label, drift in (("without", None), ("with", DriftOptions())):
            with open("/dev/null", "w") as out:
                summary = run(RunOptions(str(video), install, threads=threads, status_port=None, drift=drift), out,
                              log=lambda line: None)
            best[label] = max(best[label], summary["throughput_fps"])
            if drift is not None:
                sampled = summary["drift"]["samples"] / max(summary["frames"], 1)
    return {"fps_without": best["without"], "fps_with": best["with"],
            "frame_ms_without": round(1000 / best["without"], 4), "sampled": sampled, "rounds": rounds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="hold images out of a NEU-DET-layout folder")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--split-file", type=Path, required=True, help="the build's test split (never held out)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--per-class", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    m = sub.add_parser("measure", help="the watch on a long line of held-out frames")
    m.add_argument("--run", type=Path, required=True,
                   help="a finished `edgekit build` run (validated with this edgekit)")
    m.add_argument("--frames", type=Path, required=True, help="held-out images (from `prepare`)")
    m.add_argument("--window", type=int, default=500)
    m.add_argument("--false-alarms", type=float, default=1.0, help="per day")
    m.add_argument("--clean-hours", type=float, default=24.0)
    m.add_argument("--run-length", type=int, default=200, help="frames per run of one class (the harder clean line)")
    m.add_argument("--trials", type=int, default=20)
    m.add_argument("--max-frames", type=int, default=2000, help="frames of each condition per trial")
    m.add_argument("--video-frames", type=int, default=1500)
    m.add_argument("--rounds", type=int, default=3)
    m.add_argument("--threads", type=int, default=None)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--name", default=None, help="record in benchmarks/results/NAME.{json,md}")
    args = ap.parse_args()
    if args.command == "prepare":
        prepare(args.data, args.split_file, args.out, args.per_class, args.seed)
        return 0
    return measure(args)


if __name__ == "__main__":
    run_reporting(lambda: sys.exit(main()))
