"""`edgekit run`'s throughput on a video against `edgekit bench`'s end-to-end figure for the same artifact.

The run's bundle is installed into a local camera folder (verified, golden-checked, activated, as flash
does it over SSH); a video (MJPG AVI) is made from the run's own test images, cycled to ``--frames``
frames; then, in one process and alternating for ``--rounds`` rounds, `edgekit bench`'s end-to-end timing
(pre-processing, inference, post-processing of the video's frames, already decoded, one at a time) and
`edgekit run` over the video (decoding on its reader thread, one JSON line per frame written to a file, the status endpoint up).
The best round of each is compared; the run must reach ``--min-ratio`` (0.90) of bench, or this script
fails. Table on stdout, JSON and Markdown in ``benchmarks/results/``::

    python benchmarks/line_throughput.py --run runs/sdc-squeezenet-mrf--intel-cpu --name line-throughput-sdc
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from run_tables import installed_line, provenance

from edgekit.artifacts import write_json
from edgekit.camera.runtime import RunOptions, run
from edgekit.errors import run_reporting
from edgekit.report import markdown_table, print_table
from edgekit.stages.bench import bench, read_frames

RESULTS = Path(__file__).parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished `edgekit build` run folder")
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--min-ratio", type=float, default=0.90)
    ap.add_argument("--name", default=None, help="record in benchmarks/results/NAME.{json,md}")
    args = ap.parse_args()
    built = json.loads((args.run / "build.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        m, install, images, video = installed_line(args.run, root, args.frames)
        frames = read_frames(str(video))           # bench times the same decoded frames, without decoding
        artifact = args.run / "compile" / m["artifact"]
        rows = []
        for r in range(args.rounds):
            e2e = next(row for row in bench(artifact, None, [1], args.threads, iters=args.frames, warmup=20,
                                            max_seconds=30.0, json_path=root / "bench.json", frames=frames)["rows"]
                       if row.get("timing") == "end to end")
            with open(root / "run.jsonl", "w") as out:
                summary = run(RunOptions(str(video), install, threads=args.threads, status_port=0), out,
                              log=lambda line: None)
            lines = (root / "run.jsonl").read_text().splitlines()
            assert len(lines) == args.frames and all(json.loads(l)["frame"] == i for i, l in enumerate(lines))
            rows.append({"round": r + 1, "bench_e2e_fps": e2e["throughput_fps"], "bench_e2e_p50_ms": e2e["p50_ms"],
                         "run_fps": summary["throughput_fps"], "run_p50_ms": summary["p50_ms"],
                         "frames": summary["frames"]})
    best_bench, best_run = max(r["bench_e2e_fps"] for r in rows), max(r["run_fps"] for r in rows)
    ratio = best_run / best_bench
    stamp = provenance(f"{built['recipe']} {m['artifact']}: edgekit run against edgekit bench's end-to-end figure")
    cpu = stamp["machine"]
    headers = ["round", "bench e2e fps", "bench p50 ms", "run fps", "run p50 ms", "frames"]
    table = [[r["round"], r["bench_e2e_fps"], r["bench_e2e_p50_ms"], r["run_fps"], r["run_p50_ms"], r["frames"]]
             for r in rows]
    print_table(f"{built['recipe']} {m['artifact']}: edgekit run vs edgekit bench (end to end)", headers, table)
    summary_line = (f"best run {best_run:.1f} fps / best bench end to end {best_bench:.1f} fps = {ratio:.1%} "
                    f"(need {args.min_ratio:.0%}) on {cpu['processor']} ({', '.join(cpu['isa'])}), "
                    f"{args.threads or cpu['cpus']} threads")
    print(summary_line)
    if args.name:
        write_json(RESULTS / f"{args.name}.json", {**stamp, "run": str(args.run), "recipe": built["recipe"],
                                                   "artifact": m["artifact"], "rounds": rows, "ratio": ratio,
                                                   "frames": args.frames})
        (RESULTS / f"{args.name}.md").write_text(
            f"# {args.name}\n\n`python benchmarks/line_throughput.py --run {args.run} --frames {args.frames} "
            f"--name {args.name}`\n\nThe bundle of {built['recipe']} built for {built['target']} on "
            f"{json.dumps(built['data'])} ({m['artifact']}, validated {m['validation']['figure']} "
            f"{m['validation']['value']:.2f}); video of its {len(images)} test images cycled, MJPG.\n\n"
            f"{markdown_table(headers, table)}\n\n{summary_line}\n")
    return 0 if ratio >= args.min_ratio else 1


if __name__ == "__main__":
    run_reporting(lambda: sys.exit(main()))
