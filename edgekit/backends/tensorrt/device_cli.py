"""The device-side program, ``python3 edgekit-device.pyz`` (shipped inside every TensorRT kit):

    info                          this device's TensorRT, CUDA bindings, GPU, DLA cores, and the route per precision
    build [--precision P] [--dla-core N] [--out DIR]
                                  one engine folder per precision from the kit (as ``edgekit compile --kit``)
    bench ENGINE_DIR [--iters N] [--seconds S] [--cuda-graph]
                                  GPU compute alone and copies + inference, with tegrastats power
    verify BUNDLE --install DIR   check a signed bundle against the trusted keys, unpack it into a new slot
    golden SLOT --install DIR     run the slot's golden images through its model; fail outside the tolerance
    activate SLOT --install DIR   make a verified slot the active one (one atomic rename; the old one kept)
    rollback --install DIR        return to the previous slot
    status --install DIR          the active and previous slots

Runs on the Python each JetPack ships (3.6 on JetPack 4.6, 3.8 on 5.x, 3.10 on 6.x) with numpy, TensorRT's
bindings (JetPack's ``python3-libnvinfer``) and pycuda or cuda-python; the slot commands need
``cryptography`` instead of TensorRT (on Python 3.6: ``cryptography<41``); nothing else. Results are printed
as a plain table and written as JSON beside what they describe. Errors are one line and exit code 2.
"""
import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgekit.artifacts import write_json
from edgekit.backends.tensorrt import jetson
from edgekit.backends.tensorrt.bench import bench_runner
from edgekit.backends.tensorrt.builder import has_precision_flags
from edgekit.backends.tensorrt.engine import ENGINE_FILE, device_facts
from edgekit.backends.tensorrt.kit_build import ONNX, build_from_kit, precision_plan, read_kit
from edgekit.backends.tensorrt.version import TrtVersion
from edgekit.errors import EdgekitError


def table(rows: List[Dict[str, Any]], columns: List[str]) -> str:
    """A plain text table of ``columns`` over ``rows``."""
    cells = [[str(c) for c in columns]] + [["" if r.get(c) is None else str(r.get(c)) for c in columns]
                                           for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths)] + lines[1:])


def routes(kit_dir: Path, trt: Any, cuda: Any) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """This device's facts and, per precision of the kit, the route and file its TensorRT would take."""
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
    from edgekit.deploy import slots

    if args.command == "verify":
        return slots.verify(args.install, Path(args.bundle))
    if args.command == "golden":
        from edgekit.line import golden
        from edgekit.line.slot_runner import load_runner, slot_dir

        runner, precision = load_runner(args.install, args.slot)
        where = "slot {}".format(args.slot)
        try:
            return golden.check(runner, slot_dir(args.install, args.slot) / golden.FOLDER, precision, where)
        finally:
            if hasattr(runner, "close"):
                runner.close()
    if args.command == "activate":
        return slots.activate(args.install, args.slot)
    if args.command == "rollback":
        return slots.rollback(args.install)
    return slots.status(args.install)


def _default_kit() -> Path:
    """The kit this program was shipped in (beside the .pyz), else the working folder."""
    here = Path(sys.argv[0]).resolve().parent
    return here if (here / "kit.json").is_file() else Path.cwd()


def main(argv: Optional[List[str]] = None, trt: Any = None, cuda: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="edgekit-device.pyz", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    p_info = sub.add_parser("info", help="this device, and the route per precision of the kit")
    p_info.add_argument("--kit", type=Path, default=None)
    p_build = sub.add_parser("build", help="build the kit's engines on this device")
    p_build.add_argument("--kit", type=Path, default=None)
    p_build.add_argument("--precision", action="append", choices=sorted(ONNX), default=None)
    p_build.add_argument("--dla-core", type=int, default=None)
    p_build.add_argument("--out", type=Path, default=None, help="default: the kit's parent folder")
    p_build.add_argument("--json", action="store_true", help="one JSON line instead of the table (for flash)")
    p_bench = sub.add_parser("bench", help="time a built engine folder")
    p_bench.add_argument("engine_dir", type=Path)
    p_bench.add_argument("--iters", type=int, default=200)
    p_bench.add_argument("--warmup", type=int, default=20)
    p_bench.add_argument("--seconds", type=float, default=20.0)
    p_bench.add_argument("--cuda-graph", action="store_true")
    for name, helptext in (("verify", "check and unpack a signed bundle into a slot"),
                           ("golden", "check a slot's model on its golden images"),
                           ("activate", "make a verified slot the active one"),
                           ("rollback", "return to the previous slot"), ("status", "the active and previous slots")):
        p_slot = sub.add_parser(name, help=helptext)
        if name != "rollback" and name != "status":
            p_slot.add_argument("bundle" if name == "verify" else "slot")
        p_slot.add_argument("--install", type=Path, required=True, help="the camera's install folder")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command in SLOT_COMMANDS:
            print(json.dumps(slot_command(args), default=str))
            return 0
        if args.command != "bench":
            from edgekit.backends.tensorrt.cuda import cuda_api
            from edgekit.backends.tensorrt.runner import import_tensorrt

            trt = trt or import_tensorrt()
            cuda = cuda or cuda_api()
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
        from edgekit.backends.tensorrt.runner import TensorRTRunner

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
    except EdgekitError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    finally:
        if cuda is not None and hasattr(cuda, "close"):
            cuda.close()


if __name__ == "__main__":
    sys.exit(main())
