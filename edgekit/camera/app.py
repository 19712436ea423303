"""The camera's program, ``python3 edgekit-device.pyz`` (in every device kit, and uploaded by ``edgekit flash``):

    run --install DIR --source SRC [--out FILE]
                                  run the active slot on frames: one JSON line per frame, /metrics and /healthz,
                                  the model swapped when flash switches the slot, the frames watched for drift
                                  (``edgekit run``, the same code)
    verify BUNDLE --install DIR   check a signed bundle against the trusted keys, unpack it into a new slot
    golden SLOT --install DIR     load the slot as ``run`` will and pass its golden images; fail outside tolerance
    activate SLOT --install DIR   make a verified slot the active one (one atomic rename; the old one kept)
    rollback --install DIR        return to the previous slot
    status --install DIR          the active and previous slots
    info                          this device's TensorRT, CUDA bindings, GPU, DLA cores, and the route per precision
    build [--precision P] [--dla-core N] [--out DIR]
                                  one engine folder per precision from the kit (as ``edgekit compile --kit``)
    bench ENGINE_DIR [--iters N] [--seconds S] [--cuda-graph]
                                  GPU compute alone and copies + inference, with tegrastats power

Runs on the Python each JetPack ships (3.6 on JetPack 4.6, 3.8 on 5.x, 3.10 on 6.x) with numpy and OpenCV;
the slot commands need ``cryptography`` (on Python 3.6: ``cryptography<41``), ``run`` and ``golden`` the slot's
runtime (TensorRT's bindings with pycuda or cuda-python, OpenVINO or ONNX Runtime), ``info``/``build``/``bench``
TensorRT; nothing else, and each command imports only what it needs. Results are printed as a plain table and
written as JSON beside what they describe. Errors are one line and exit code 2.
"""
import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgekit.errors import EdgekitError

PRECISIONS = ("fp32", "fp16", "int8")


def table(rows: List[Dict[str, Any]], columns: List[str]) -> str:
    """A plain text table of ``columns`` over ``rows``."""
    cells = [[str(c) for c in columns]] + [["" if r.get(c) is None else str(r.get(c)) for c in columns]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def routes(kit_dir: Path, trt: Any, cuda: Any) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """This device's facts and, per precision of the kit, the route and file its TensorRT would take."""
    from edgekit.backends.tensorrt import jetson
    from edgekit.backends.tensorrt.builder import has_precision_flags
    from edgekit.backends.tensorrt.engine import device_facts
    from edgekit.backends.tensorrt.kit_build import precision_plan, read_kit
    from edgekit.backends.tensorrt.version import TrtVersion

    kit = read_kit(kit_dir)
    device = device_facts(trt, cuda)
    version = TrtVersion.parse(device.tensorrt)
    flags = "flags" if has_precision_flags(trt) else "strongly typed"
    rows = []
    for precision in kit["precisions"]:
        route, source = precision_plan(precision, version, trt, kit)
        rows.append({"precision": precision, "route": route or flags, "parses": source})
    facts = dict(device._asdict(), cuda_bindings=getattr(cuda, "name", "?"), python=sys.version.split()[0],
                 power_mode=jetson.power_mode(), kit_target=kit["target"])
    return facts, rows


SLOT_COMMANDS = ("verify", "golden", "activate", "rollback", "status")


def slot_command(args: argparse.Namespace) -> Any:
    """What ``edgekit flash`` calls on a camera: one JSON line out (no TensorRT needed)."""
    from edgekit.camera import slots

    if args.command == "verify":
        return slots.verify(args.install, Path(args.bundle))
    if args.command == "golden":
        from edgekit.camera.model import LineModel

        model = LineModel.from_slot(args.install, args.slot)       # loaded as `run` loads it, golden-checked
        model.close()
        return model.golden
    if args.command == "activate":
        links = slots.activate(args.install, args.slot)
        app = slots.link_app(args.install, Path(sys.argv[0]))     # the program a service restarts into
        return dict(links, app=app) if app else links
    if args.command == "rollback":
        return slots.rollback(args.install)
    return slots.status(args.install)


def _default_kit() -> Path:
    """The kit this program was shipped in (beside the .pyz), else the working folder."""
    here = Path(sys.argv[0]).resolve().parent
    return here if (here / "kit.json").is_file() else Path.cwd()


def tensorrt_command(args: argparse.Namespace, trt: Any, cuda: Any) -> int:
    """``info``, ``build`` and ``bench``: TensorRT on this device."""
    from edgekit.artifacts import write_json
    from edgekit.backends.tensorrt.bench import bench_runner
    from edgekit.backends.tensorrt.engine import ENGINE_FILE
    from edgekit.backends.tensorrt.kit_build import build_from_kit
    from edgekit.backends.tensorrt.runner import TensorRTRunner

    if args.command != "bench":
        kit_dir = (args.kit or _default_kit()).resolve()
    if args.command == "info":
        facts, rows = routes(kit_dir, trt, cuda)
        print("\n".join("{}: {}".format(k, v) for k, v in facts.items()))
        print(table(rows, ["precision", "route", "parses"]))
        return 0
    if args.command == "build":
        out = (args.out or kit_dir.parent).resolve()
        done = build_from_kit(kit_dir, out, args.precision, args.dla_core, trt=trt, cuda=cuda)
        print(json.dumps(done) if args.json else table(done, ["precision", "path", "status"]))
        write_json(out / "device_build.json", done)
        return 0
    engine = args.engine_dir / ENGINE_FILE
    if not engine.is_file():
        raise EdgekitError("{}: no {} (an engine folder from `build`)".format(args.engine_dir, ENGINE_FILE))
    with TensorRTRunner(engine, cuda_graph=args.cuda_graph, trt=trt, cuda=cuda) as runner:
        rows, device, _ = bench_runner(runner, args.warmup, args.iters, args.seconds)
    for r in rows:
        r.pop("samples_ms", None)
    print(table(rows, ["timing", "batch", "calls", "p50_ms", "p99_ms", "throughput_fps", "power_mw"]))
    write_json(args.engine_dir / "bench.json", {"device": device, "rows": rows})
    return 0


def run_command(args: argparse.Namespace) -> int:
    """``run``: the line, until the source ends; the summary table on stderr (or standard output when the
    lines go to ``--out``)."""
    from edgekit.camera.drift import DriftOptions
    from edgekit.camera.runtime import RunOptions, run_to, summary_row

    given = {"window": args.drift_window, "false_alarms_per_day": args.drift_false_alarms,
             "budget": args.drift_budget, "state_every": args.drift_state_every}
    drift = None if args.no_drift else DriftOptions(**{k: v for k, v in given.items() if v is not None})
    opts = RunOptions(args.source, args.install, args.min_score, args.threads, args.annotate, args.status_host,
                      None if args.status_port < 0 else args.status_port, max_frames=args.max_frames, drift=drift)
    summary = run_to(opts, args.out)
    row = summary_row(summary)
    print(table([row], list(row)), file=sys.stderr if args.out is None else sys.stdout)
    return 0


def parser(prog: str = "edgekit-device.pyz") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command")
    p_run = sub.add_parser("run", help="run the active slot on frames, one JSON line each")
    p_run.add_argument("--install", type=Path, default=Path(os.environ.get("EDGEKIT_INSTALL", "/opt/edgekit")),
                       help="the camera's install folder (default: $EDGEKIT_INSTALL, else /opt/edgekit)")
    p_run.add_argument("--source", required=True, help="camera index, video file, image folder, rtsp:// URL or "
                                                        "GStreamer pipeline")
    p_run.add_argument("--out", type=Path, default=None, help="JSON lines appended here (default: standard "
                                                              "output); the summary beside it")
    p_run.add_argument("--annotate", type=Path, default=None, help="write each frame with its answer drawn, here")
    p_run.add_argument("--status-port", type=int, default=9108, help="/metrics and /healthz port; -1: none")
    p_run.add_argument("--status-host", default="127.0.0.1", help="status address (0.0.0.0 exposes it)")
    p_run.add_argument("--min-score", type=float, default=0.5, help="detections below it are not reported")
    p_run.add_argument("--max-frames", type=int, default=None)
    p_run.add_argument("--threads", type=int, default=None)
    watch = p_run.add_argument_group("drift watch", "whether the frames still look like the validated images, "
                                     "where the bundle carries a drift reference (defaults: 500 frames, 1 false "
                                     "alarm a day, 2 % of the loop's time, state every 100 frames)")
    watch.add_argument("--no-drift", action="store_true", help="do not watch")
    watch.add_argument("--drift-window", type=int, help="sampled frames compared with the reference")
    watch.add_argument("--drift-false-alarms", type=float, metavar="PER_DAY",
                       help="alerts a day on frames like the validated ones (all features together)")
    watch.add_argument("--drift-budget", type=float, help="share of the loop's time the watch may take")
    watch.add_argument("--drift-state-every", type=int, metavar="FRAMES",
                       help="a JSON line carries the watch's state every this many frames; 0: never")
    for name, helptext in (("verify", "check and unpack a signed bundle into a slot"),
                           ("golden", "load a slot as run will and check it on its golden images"),
                           ("activate", "make a verified slot the active one"),
                           ("rollback", "return to the previous slot"), ("status", "the active and previous slots")):
        p_slot = sub.add_parser(name, help=helptext)
        if name != "rollback" and name != "status":
            p_slot.add_argument("bundle" if name == "verify" else "slot")
        p_slot.add_argument("--install", type=Path, required=True, help="the camera's install folder")
    p_info = sub.add_parser("info", help="this device, and the route per precision of the kit")
    p_info.add_argument("--kit", type=Path, default=None)
    p_build = sub.add_parser("build", help="build the kit's engines on this device")
    p_build.add_argument("--kit", type=Path, default=None)
    p_build.add_argument("--precision", action="append", choices=PRECISIONS, default=None)
    p_build.add_argument("--dla-core", type=int, default=None)
    p_build.add_argument("--out", type=Path, default=None, help="default: the kit's parent folder")
    p_build.add_argument("--json", action="store_true", help="one JSON line instead of the table (for flash)")
    p_bench = sub.add_parser("bench", help="time a built engine folder")
    p_bench.add_argument("engine_dir", type=Path)
    p_bench.add_argument("--iters", type=int, default=200)
    p_bench.add_argument("--warmup", type=int, default=20)
    p_bench.add_argument("--seconds", type=float, default=20.0)
    p_bench.add_argument("--cuda-graph", action="store_true")
    return p


def commands(prog: str = "edgekit-device.pyz") -> Dict[str, argparse.ArgumentParser]:
    """Each command's own parser, by name (its help as the camera prints it: the CLI reference is made of them)."""
    return {name: sub for action in parser(prog)._actions if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()}


def main(argv: Optional[List[str]] = None, trt: Any = None, cuda: Any = None, prog: str = "edgekit-device.pyz") -> int:
    commands = parser(prog)
    args = commands.parse_args(argv)
    if args.command is None:
        commands.print_help()
        return 2
    try:
        if args.command == "run":
            return run_command(args)
        if args.command in SLOT_COMMANDS:
            print(json.dumps(slot_command(args), default=str))
            return 0
        from edgekit.backends.tensorrt.cuda import cuda_api
        from edgekit.backends.tensorrt.runner import import_tensorrt

        if args.command != "bench":
            trt = trt or import_tensorrt()
            cuda = cuda or cuda_api()
        return tensorrt_command(args, trt, cuda)
    except EdgekitError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    finally:
        if cuda is not None and hasattr(cuda, "close"):
            cuda.close()


if __name__ == "__main__":
    sys.exit(main())
