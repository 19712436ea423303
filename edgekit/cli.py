"""The ``edgekit`` command line. Every command ends with a plain table and writes JSON beside it."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from edgekit.artifacts import write_json
from edgekit.errors import EdgekitError, run_reporting
from edgekit.recipes import list_recipes, load_recipe
from edgekit.report import gate_rows, print_table, summary_rows
from edgekit.targets import list_targets, load_target

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="markdown",
                  help="Steel-surface-defect models from papers to line-side cameras.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: the built-in generator.")
calib_app = typer.Typer(no_args_is_help=True, help="Calibration-set manifests.")
app.add_typer(data_app, name="data")
app.add_typer(calib_app, name="calibration")
keys_app = typer.Typer(no_args_is_help=True, help="Ed25519 keys that sign bundles (cameras trust the public halves).")
app.add_typer(keys_app, name="keys")
KEYS_DIR = Path(os.environ.get("EDGEKIT_KEYS", Path.home() / ".config" / "edgekit" / "keys"))
KeysDir = Annotated[Path, typer.Option("--dir", help="Key folder (EDGEKIT_KEYS, default ~/.config/edgekit/keys)")]
out = Console()

Data = Annotated[Path, typer.Option("--data", help="Dataset folder (NEU-CLS / NEU-DET layout)")]
Pretrained = Annotated[Optional[str], typer.Option(
    help="ImageNet weights: a torchvision-layout state dict, or 'none' to train from scratch "
         "(default: the recipe's bundled weights)")]
Threads = Annotated[Optional[int], typer.Option(help="CPU threads (default: all cores)")]
TestData = Annotated[Optional[Path], typer.Option(help="A folder of test images, read like --data (all of --data "
                                                       "then trains)")]
SplitFile = Annotated[Optional[Path], typer.Option(help="Text file naming the test images of --data, one file "
                                                        "stem per line")]
Wide = Annotated[bool, typer.Option("--wide", help="Every column (the default fits an 80-column terminal)")]
PixelLabels = Annotated[Optional[float], typer.Option(
    help="Segmentation+decision: mixed supervision with this many pixel-labelled positives (or, below 1, this "
         "fraction of them), chosen seeded and recorded")]


def _mixed(recipe, pixel_labels: Optional[float]):
    """The recipe in mixed supervision when ``--pixel-labels`` asks (a recipe with a decision section only)."""
    if pixel_labels is None:
        return recipe
    if recipe.task != "segmentation+decision":
        raise EdgekitError(f"{recipe.path}: --pixel-labels is for segmentation+decision recipes, not {recipe.task}")
    return recipe.with_pixel_labels(pixel_labels)


def _source(data: Path, test_data: Optional[Path], split_file: Optional[Path], split: str = "test"):
    """The data folder and its test split, checked before any work (missing folders name themselves)."""
    from edgekit.data.recipe_data import DataSource

    src = DataSource(data, test_data, split_file, split)
    src.check()
    return src


Nproc = Annotated[Optional[int], typer.Option("--nproc", help="Train on N processes of this machine (torchrun; "
                                                                "one per GPU, or gloo on CPUs)")]


def _relaunch(nproc: Optional[int]) -> None:
    """With --nproc N > 1 outside torchrun: this command again under torchrun, and its exit code."""
    import sys

    if nproc is not None and nproc < 1:
        raise EdgekitError(f"--nproc {nproc}: at least 1")
    if nproc and nproc > 1:
        from edgekit import distributed

        if distributed.world().size == 1:
            raise typer.Exit(distributed.relaunch(sys.argv[1:], nproc))


def _json(path: Optional[Path], obj) -> None:
    if path is not None:
        write_json(path, obj)
        out.print(f"JSON: {path}")


@app.command()
def recipes(json_out: Annotated[Optional[Path], typer.Option("--json")] = None, wide: Wide = False) -> None:
    """List the recipes and the paper figures they are validated against."""
    rows = []
    for r in list_recipes():
        p = r.paper
        fig = ", ".join(f"{k} {p[k]}" for k in ("accuracy", "map", "miou", "fps", "latency_ms") if p.get(k) is not None)
        rows.append([r.name, r.task, p.get("dataset", ""), fig, p.get("ref", "")])
    headers = ["name", "task", "dataset", "paper figures", "source"]
    shown = len(headers) if wide else 4
    print_table("recipes", headers[:shown], [r[:shown] for r in rows], out)
    _json(json_out, [dict(zip(["name", "task", "dataset", "figures", "source"], r)) for r in rows])


TARGET_COLUMNS = ("name", "kind", "backend", "tensorrt", "precisions")   # what fits 80 columns


@app.command()
def targets(
    name: Annotated[Optional[str], typer.Argument(help="One target (name, alias or YAML): all its details")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json")] = None,
    wide: Wide = False,
) -> None:
    """List the deployment targets (`edgekit targets NAME` for one target's details)."""
    if name is not None:
        t = load_target(name)
        from edgekit.backends.tensorrt.kit import device_side

        details = {**t.details(), "device side": device_side(t)}
        print_table(f"target {t.name}", ["field", "value"], list(details.items()), out)
        _json(json_out, details)
        return
    rows = [t.summary_row() for t in list_targets()]
    headers = list(rows[0]) if wide else list(TARGET_COLUMNS)
    print_table("targets", headers, [[r[h] for h in headers] for r in rows], out)
    if not wide:
        out.print("`edgekit targets NAME` or `--wide` for every field")
    _json(json_out, rows)


@data_app.command("synth")
def data_synth(
    dest: Annotated[Path, typer.Argument(help="Folder to create")],
    per_class: Annotated[int, typer.Option(help="Images per class")] = 120,
    seed: int = 0,
    size: int = 200,
    free: Annotated[int, typer.Option(help="Defect-free images besides (free_<n>.png, empty masks)")] = 0,
    overwrite: bool = False,
) -> None:
    """Generate the built-in NEU-like dataset (IMAGES/, ANNOTATIONS/ VOC XML, MASKS/)."""
    from edgekit.data import synth

    root = synth.generate(dest, per_class=per_class, seed=seed, size=size, overwrite=overwrite, free=free)
    meta = json.loads((root / "synth.json").read_text())
    print_table("built-in data", ["folder", "images", "per class", "defect-free", "seed", "size"],
                [[str(root), per_class * len(meta.get("classes", [])) + free, per_class, free, seed, size]], out)


@calib_app.command("select")
def calibration_select(
    recipe: str,
    data: Data,
    dest: Annotated[Path, typer.Option("--out", help="Manifest to write, e.g. calibration/<recipe>/<name>.yaml")],
    test_data: TestData = None,
    split_file: SplitFile = None,
    per_class: Annotated[Optional[int], typer.Option(help="Images per class (recipe default)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Selection seed (recipe default)")] = None,
    name: Annotated[Optional[str], typer.Option(help="Manifest name (default: file stem)")] = None,
) -> None:
    """Choose a class-stratified, seeded calibration set from the training split."""
    from edgekit import calibration
    from edgekit.data.recipe_data import load_split

    r = load_recipe(recipe)
    m = calibration.select(r, load_split(r, _source(data, test_data, split_file)), name or dest.stem, per_class, seed)
    calibration.write(m, dest)
    print_table("calibration set", ["manifest", "images", "per class", "seed", "sha256"],
                [[str(dest), m["count"], m["selection"]["per_class"], m["selection"]["seed"], m["sha256"][:16]]], out)


@app.command()
def train(
    recipe: str,
    data: Data,
    dest: Annotated[Path, typer.Option("--out", help="Artifact folder to write")],
    test_data: TestData = None,
    split_file: SplitFile = None,
    pretrained: Pretrained = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the recipe's epochs")] = None,
    pixel_labels: PixelLabels = None,
    seed: int = 0,
    threads: Threads = None,
    nproc: Nproc = None,
) -> None:
    """Train the recipe's model (resumes from OUT.ckpt/ after an interruption); under torchrun, or with
    --nproc, on several processes together."""
    _relaunch(nproc)
    r = _mixed(load_recipe(recipe), pixel_labels)          # a bad recipe is refused before torch loads
    from edgekit.checkpoint import resolve_pretrained
    from edgekit.stages.train import train as run

    m = run(r, _source(data, test_data, split_file), dest, resolve_pretrained(r, pretrained), epochs, seed, threads)
    if m is None:               # a torchrun process other than the first: process 0 reports
        return
    res = m["results"]
    print_table("train", ["artifact", "epochs", res["headline"]["metric"], "seconds"],
                [[str(dest), res["epochs"], res["headline"]["value"], res["train_seconds_this_run"]]], out)


@app.command()
def prune(
    recipe: str,
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint file or train artifact folder")],
    data: Data,
    dest: Annotated[Path, typer.Option("--out", help="Artifact folder to write")],
    test_data: TestData = None,
    split_file: SplitFile = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the fine-tuning epochs")] = None,
    seed: int = 0,
    threads: Threads = None,
    target: Annotated[Optional[str], typer.Option(help="Target whose backend times the pruned model "
                                                       "(default: ONNX Runtime here)")] = None,
) -> None:
    """Remove channels by the recipe's prune section, fine-tune (resumes like train), and measure whether
    it pays."""
    r, t = load_recipe(recipe), load_target(target) if target else None
    from edgekit.report import prune_table
    from edgekit.stages.prune import prune as run

    m = run(r, checkpoint, _source(data, test_data, split_file), dest, seed, epochs, threads, target=t)
    p, d = m["results"]["pruning"], m["results"]["decision"]
    print_table("prune", *prune_table(d["table"], p["metric"]), out)
    print(d["reason"])


@app.command()
def export(
    recipe: str,
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint file or train artifact folder")],
    dest: Annotated[Path, typer.Option("--out", help="Artifact folder to write")],
) -> None:
    """Export to ONNX (static shape), check it and compare it with PyTorch."""
    r = load_recipe(recipe)
    from edgekit.stages.export import export as run

    res = run(r, checkpoint, dest)
    print_table("export", ["artifact", "opset", "input", "max |ONNX-PyTorch|"],
                [[str(dest), res["opset"], res["input_shape"], f"{res['max_abs_diff_vs_pytorch']:.2e}"]], out)


@app.command()
def quantize(
    recipe: str,
    onnx: Annotated[Path, typer.Option(help="FP32 ONNX file or export artifact folder")],
    data: Data,
    calibration: Annotated[Path, typer.Option(help="Calibration manifest (edgekit calibration select)")],
    dest: Annotated[Path, typer.Option("--out", help="Artifact folder to write")],
    method: Annotated[Optional[str], typer.Option(help="minmax | entropy | percentile (recipe default)")] = None,
    percentile: Annotated[Optional[float], typer.Option(help="For --method percentile (default 99.999)")] = None,
    per_channel: Annotated[Optional[bool], typer.Option("--per-channel/--per-tensor")] = None,
    target: Annotated[Optional[str], typer.Option(help="Target whose CPU decides the weight range (no VNNI: 7 bits)")] = None,
) -> None:
    """FP16 and INT8 (explicit Q/DQ, symmetric, per-channel weights) from a calibration set."""
    r, reduce_range = load_recipe(recipe), target is not None and not load_target(target).int8_dot
    from edgekit.stages.quantize import quantize as run

    res = run(r, onnx, calibration, data, dest, method, percentile, per_channel, reduce_range=reduce_range)
    print_table("quantize", ["file", "bytes"], [[k, v] for k, v in res["size_bytes"].items()], out)


@app.command("compile")
def compile_(
    recipe: Annotated[Optional[str], typer.Argument(help="Recipe (not with --kit)")] = None,
    quantized: Annotated[Optional[Path], typer.Option(help="Quantize artifact folder")] = None,
    target: Annotated[Optional[str], typer.Option(help="Target name or YAML file")] = None,
    dest: Annotated[Optional[Path], typer.Option("--out", help="Folder for the compiled artifacts "
                                                 "(with --kit: default the kit's parent folder)")] = None,
    kit: Annotated[Optional[Path], typer.Option(help="On the device: build the TensorRT engines from this device kit")] = None,
    precision: Annotated[Optional[list[str]], typer.Option(help="With --kit: precisions to build (default: the kit's)")] = None,
    dla_core: Annotated[Optional[int], typer.Option(help="With --kit: build for this DLA core (GPU fallback on)")] = None,
) -> None:
    """Compile for a target's backend (TensorRT targets: the device kit and its preflight report; with --kit,
    on the device: the engines)."""
    if kit is not None:
        from edgekit.backends.tensorrt.kit import build_from_kit

        dest = dest or kit.resolve().parent
        done = build_from_kit(kit, dest, precision, dla_core)
    else:
        from edgekit.stages.compile import compile_for_target

        if recipe is None or quantized is None or target is None or dest is None:
            raise EdgekitError("compile needs RECIPE --quantized DIR --target NAME --out DIR (or --kit DIR on the device)")
        r, t = load_recipe(recipe), load_target(target)
        done = compile_for_target(r, quantized, t, dest, list(r.quantize["precisions"]))
        _print_preflight(done)
    print_table("compile", ["backend", "precision", "artifact", "status"],
                [[d["backend"], d["precision"], d["path"], d["status"]] for d in done], out)
    _json(dest / "compile.json", done)


def _print_preflight(compiled: list[dict]) -> None:
    for c in compiled:
        if "preflight" in c:
            p = c["preflight"]
            print_table(f"preflight for {p['target']} (TensorRT {p['tensorrt_checked']})", ["check", "result", "detail"],
                        [[f["check"], f["level"], f["detail"]] for f in p["findings"]], out)
            est = "; ".join(f"{k} ~{v['estimate_fps']:g} fps (ceiling {v['ceiling_fps']:g})" for k, v in p["fps_estimate"].items())
            out.print(f"fps ESTIMATE, not measured ({p['gmacs']} GMAC/frame): {est or 'no peak figures'}")
        if c.get("fallback"):
            out.print(f"[bold]Fallback:[/bold] {c['fallback']['backend']} instead of TensorRT: {c['fallback']['reason']}")


@app.command()
def validate(
    recipe: str,
    run: Annotated[Path, typer.Argument(help="Run folder of `edgekit build` (quantize/ and compile/ inside)")],
    data: Data,
    test_data: TestData = None,
    split_file: SplitFile = None,
    split: Annotated[str, typer.Option(help="test: the test split (the data's, --test-data, --split-file or the "
                                            "recipe's); all: every image of --data")] = "test",
    robustness: Annotated[bool, typer.Option("--robustness", help="Add the paper's diversity-enhanced conditions")] = False,
    threads: Threads = None,
) -> None:
    """Accuracy against FP32 and the paper, fps against the paper and the line rate; exit 1 if a gate fails."""
    r, source = load_recipe(recipe), _source(data, test_data, split_file, split)
    from edgekit.stages.validate import validate as run_validate

    order = {"fp32": 0, "fp16": 1, "int8": 2}
    compiled = sorted((p for p in (run / "compile").glob("*-*") if p.is_dir() and p.name != "tensorrt-kit"),
                      key=lambda p: (p.name.rsplit("-", 1)[0], order.get(p.name.rsplit("-", 1)[1], 9)))
    if not compiled:
        raise EdgekitError(f"{run}: no compiled artifacts under compile/ (is it a run folder of `edgekit build`?)")
    res = run_validate(r, run / "quantize" / "fp32.onnx", compiled, source, run / "validate", robustness, threads)
    _finish_validation(res, run / "validate")


def _finish_validation(res: dict, folder: Path) -> None:
    print_table("validation", *summary_rows(res), out)
    print_table("gates", *gate_rows(res), out)
    for warned in res.get("warned", []):
        out.print(escape(f"warn: {warned}: too few test images to decide (see the gate's evidence)"))
    out.print(f"report: {folder / 'report.md'}\nJSON: {folder / 'results.json'}")
    if not res["passed"]:
        raise typer.Exit(1)


@keys_app.command("new")
def keys_new(name: str, folder: KeysDir = KEYS_DIR) -> None:
    """A new signing key pair: NAME.key (mode 0600, stays here) and NAME.pub (for the cameras)."""
    from edgekit.deploy import keys as keys_mod

    private = keys_mod.new_key(name, folder)
    fp = keys_mod.fingerprint(keys_mod.load_public(private.with_suffix(keys_mod.PUBLIC)))
    print_table("key", ["name", "fingerprint", "private key", "public key"],
                [[name, fp, str(private), str(private.with_suffix(keys_mod.PUBLIC))]], out)


@keys_app.command("show")
def keys_show(folder: KeysDir = KEYS_DIR) -> None:
    """The keys in the folder, with their fingerprints."""
    from edgekit.deploy import keys as keys_mod

    rows = keys_mod.listing(folder)
    print_table(f"keys in {folder}", ["name", "fingerprint", "private key"],
                [[r["name"], r["fingerprint"], r["private"]] for r in rows], out)


@app.command("bundle")
def bundle_cmd(
    run: Annotated[Path, typer.Argument(help="A finished build's run folder")],
    target: Annotated[str, typer.Option(help="The target the run was built for")],
    key: Annotated[Path, typer.Option(help="Signing key (NAME.key from `edgekit keys new`)")],
    bundle_out: Annotated[Optional[Path], typer.Option("--out", help="Bundle file (default: in the run)")] = None,
) -> None:
    """Sign what a camera of the target runs into one bundle file."""
    from edgekit.stages.bundle import bundle as run_bundle

    m = run_bundle(run, target, key, bundle_out)
    v = m["validation"]
    print_table("bundle", ["recipe", "target", "payload", "files", v["figure"], "signed by"],
                [[m["recipe"], m["target"], m["artifact"], len(m["files"]), v["value"] if v["value"] is not None
                  else f"(FP32 {v['reference']:.2f})", m["signed_by"]]], out)
    out.print(f"bundle: {m['path']}")


FleetFile = Annotated[Path, typer.Option("--fleet", help="The fleet inventory (cameras.yaml)")]
CameraNames = Annotated[Optional[list[str]], typer.Option("--camera", help="A camera by name (repeatable)")]
LineName = Annotated[Optional[str], typer.Option("--line", help="Every camera of a line")]
Every = Annotated[bool, typer.Option("--all", help="Every camera of the fleet")]


def _fleet_table(title: str, results: list[dict]) -> None:
    print_table(title, ["camera", "status", "active", "previous", "seconds", "detail"],
                [[r["camera"], r["status"], _slot(r.get("active")), _slot(r.get("previous")), r.get("seconds"),
                  r.get("error") or r.get("golden") or r.get("bundle") or ""] for r in results], out)
    failed = [r["camera"] for r in results if r["status"] == "failed"]
    if failed:                      # some cameras did: exit 1 naming the others (2 is kept for bad input)
        Console(stderr=True).print(escape(f"error: {len(failed)} camera(s) did not take it: {', '.join(failed)}"))
        raise typer.Exit(1)


def _slot(value) -> str:
    if isinstance(value, dict):
        v = value.get("validation") or {}
        return f"{value['slot']} {value.get('recipe')} {value.get('artifact')} {v.get('value') or ''}".strip()
    return value or "-"


@app.command()
def flash(
    bundle_file: Annotated[Path, typer.Argument(help="A signed bundle (edgekit bundle)")],
    fleet: FleetFile = Path("cameras.yaml"),
    camera: CameraNames = None,
    line: LineName = None,
    every: Every = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be flashed, connect to nothing")] = False,
) -> None:
    """Flash a signed bundle onto cameras over SSH: verified on the camera, then switched in atomically."""
    from edgekit.deploy import flash as flash_mod
    from edgekit.deploy.fleet import load_fleet
    from edgekit.progress import bar

    f = load_fleet(fleet)
    chosen = f.select(camera, line, every)
    with bar(None, "flashing", total=len(chosen) * len(flash_mod.STEPS)) as progress:
        def step(cam, name: str) -> None:
            if name in flash_mod.STEPS:
                progress.set_postfix_str(f"{cam.name}: {name}")
                progress.update(1)
        results = flash_mod.flash(f, chosen, bundle_file, dry_run, step)
    _fleet_table("flash (dry run)" if dry_run else "flash", results)


@app.command()
def rollback(fleet: FleetFile = Path("cameras.yaml"), camera: CameraNames = None, line: LineName = None,
             every: Every = False) -> None:
    """Return cameras to their previous slot."""
    from edgekit.deploy import flash as flash_mod
    from edgekit.deploy.fleet import load_fleet

    f = load_fleet(fleet)
    _fleet_table("rollback", flash_mod.rollback(f, f.select(camera, line, every)))


@app.command()
def cameras(fleet: FleetFile = Path("cameras.yaml")) -> None:
    """The fleet, each camera's active and previous bundle read over SSH."""
    from edgekit.deploy import flash as flash_mod
    from edgekit.deploy.fleet import load_fleet

    f = load_fleet(fleet)
    _fleet_table(f"cameras ({f.path})", flash_mod.status(f, list(f.cameras)))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                "help_option_names": []})
def device(ctx: typer.Context) -> None:
    """The camera side, as flash runs it there from edgekit-device.pyz: verify, golden, activate, rollback,
    status, and on a Jetson info, build, bench (`edgekit device --help`)."""
    from edgekit.camera.app import main as device_main

    code = device_main(list(ctx.args), prog="edgekit device")
    if code:
        raise typer.Exit(code)


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                     "help_option_names": []})
def run_line(ctx: typer.Context) -> None:
    """Run the camera's active model on frames: one JSON line per frame, Prometheus metrics, and a new model
    swapped in between two frames when flash switches the active slot (`edgekit run --help`). The camera
    package's `run`, the same code as `python3 edgekit-device.pyz run` on a camera; it starts without the
    workstation's libraries."""
    from edgekit.camera.app import main as camera_main

    code = camera_main(["run", *ctx.args], prog="edgekit")
    if code:
        raise typer.Exit(code)


@app.command("drift")
def drift_report(
    log: Annotated[Path, typer.Argument(help="The JSON lines of `edgekit run --out` (or a camera's)")],
    bundle: Annotated[Optional[Path], typer.Option(help="The bundle the line ran: adds the robustness conditions "
                                                        "to the picture")] = None,
    report_out: Annotated[Optional[Path], typer.Option("--out", help="Folder for the picture and JSON (default: "
                                                                     "beside the log)")] = None,
) -> None:
    """How a line's frames drifted from the validated images: alerts per feature, what they resembled, and a
    picture of each feature over time against its reference band."""
    from edgekit.drift.report import report

    res = report(log, bundle, report_out)
    print_table(f"drift: {res['states']} states from {res['from']} to {res['to']}",
                ["feature", "alerts", "first alert", "max statistic", "threshold", "resembles", "validated there"],
                [[r["feature"], r["alerts"], r["first_alert"] or "-", r["max_statistic"], r["threshold"],
                  r["resembles"] or "-", "-" if r["accuracy_there"] is None else r["accuracy_there"]]
                 for r in res["features"]], out)
    out.print(f"picture: {res['picture']}")


@app.command()
def bench(
    artifact: Annotated[Path, typer.Argument(help="Compiled artifact folder, .onnx or OpenVINO .xml")],
    backend: Annotated[Optional[list[str]], typer.Option(help="Backends for an .onnx (default: all installed)")] = None,
    batch: Annotated[list[int], typer.Option(help="Batch sizes")] = [1, 8],
    threads: Threads = None,
    iters: int = 100,
    warmup: int = 10,
    frames: Annotated[Optional[str], typer.Option(help="Time end to end on these frames (video, image folder, "
                                                       "camera) instead of one random frame")] = None,
) -> None:
    """Latency p50/p90/p99 and throughput at each batch size, per backend; a compiled artifact also end to end
    (pre-processing, inference, post-processing of one frame, as `edgekit run` does it)."""
    from edgekit.stages.bench import bench as run
    from edgekit.stages.bench import read_frames

    res = run(artifact, backend, batch, threads, iters, warmup, frames=read_frames(frames) if frames else None)
    print_table(f"bench ({res['threads']} threads)", ["backend", "batch", "p50 ms", "p90 ms", "p99 ms", "fps", "mJ/frame"],
                [[r["backend"] + (f" ({r['timing']})" if "timing" in r else ""), r["batch"], r["p50_ms"], r["p90_ms"],
                  r["p99_ms"], r["throughput_fps"], r.get("mj_per_frame", "-")] for r in res["rows"]], out)
    if "device" in res:
        d = res["device"]
        out.print(f"device: {d['gpu']} (compute {d['compute_capability']}), TensorRT {d['tensorrt']}, "
                  f"power mode {d.get('power_mode') or 'n/a'}")
    out.print(f"JSON: {res['json']}\nlatency histogram: {res['histogram']}")


@app.command()
def build(
    recipe: str,
    target: Annotated[str, typer.Option(help="Target name or YAML file")],
    data: Annotated[Optional[Path], typer.Option(help="Dataset folder (default: the built-in generated data)")] = None,
    test_data: TestData = None,
    split_file: SplitFile = None,
    runs: Annotated[Path, typer.Option("--out", help="Folder holding the runs")] = Path("runs"),
    pretrained: Pretrained = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="Start from this trained checkpoint")] = None,
    onnx: Annotated[Optional[Path], typer.Option(help="Start from this FP32 ONNX file")] = None,
    calibration: Annotated[Optional[Path], typer.Option(help="Calibration manifest to use")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the recipe's epochs")] = None,
    prune: Annotated[bool, typer.Option("--prune/--no-prune", help="Apply the recipe's channel pruning + "
                                        "fine-tuning (when it has a prune section)")] = True,
    sparsity: Annotated[bool, typer.Option("--sparsity/--no-sparsity", help="Apply the recipe's 2:4 sparsity + "
                                           "fine-tuning (when it has a sparsity section and the target's GPU has "
                                           "Sparse Tensor Cores)")] = True,
    method: Annotated[Optional[str], typer.Option(help="Calibration method (recipe default)")] = None,
    robustness: Annotated[bool, typer.Option("--robustness")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="The recipe's short profile: fewer images and epochs, "
                                        "for a first look on the built-in data (runs/<recipe>-quick--<target>)")] = False,
    pixel_labels: PixelLabels = None,
    threads: Threads = None,
    seed: int = 0,
    nproc: Nproc = None,
) -> None:
    """Train (or load), export, quantize, compile and validate a recipe for a target."""
    _relaunch(nproc)

    r, t = _mixed(load_recipe(recipe, quick=quick), pixel_labels), load_target(target)   # before torch loads
    from edgekit.checkpoint import resolve_pretrained
    from edgekit.stages.build import BuildOptions
    from edgekit.stages.build import build as run

    mixed = f"-pixels{pixel_labels:g}" if pixel_labels is not None else ""
    run_dir = runs / f"{r.name}{'-quick' if quick else ''}{mixed}--{t.name}"
    opts = BuildOptions(data=data, test_data=test_data, split_file=split_file,
                        pretrained=resolve_pretrained(r, pretrained), checkpoint=checkpoint, onnx=onnx,
                        calibration=calibration, epochs=epochs, prune=prune, sparsity=sparsity, method=method,
                        robustness=robustness, threads=threads, seed=seed)
    res = run(r, t, run_dir, opts, on_plan=lambda rows: _print_plan(rows, r, t.name, quick))
    if res is None:             # a torchrun process other than the first: process 0 goes on alone
        return
    _print_preflight(res["artifacts"])
    print_table("build", ["stage", "status", "seconds", "result"],
                [[s["stage"], s["status"], s["seconds"], s["result"]] for s in res["stages"]], out)
    if res["left_to_do"]:
        out.print(f"[bold]Left to do on the device:[/bold] {res['left_to_do']}")
    out.print(f"build summary: {run_dir / 'build.json'}")
    _finish_validation(res["results"], run_dir / "validate")


LONG_PLAN_S = 600.0    # a plan longer than this names --quick


def _print_plan(rows: list[dict], recipe, target: str, quick: bool) -> None:
    from edgekit.estimate import human
    from edgekit.stages.build import skipped_line

    total = sum(row["estimate_s"] for row in rows)
    print_table("plan", ["stage", "action", "estimate"],
                [[row["stage"], row["action"], human(row["estimate_s"]) if row["action"] == "run" else "-"]
                 for row in rows], out)
    for row in rows:
        if row["action"] == "skip":
            out.print(escape(skipped_line(row)))
    line = (f"about {human(total).lstrip('~')} in all on this machine (estimated from a few timed training steps; "
            "each epoch line then says what is left)")
    if total > LONG_PLAN_S and not quick and recipe.has_quick:
        line += (f"; for a short first look: edgekit build {recipe.name} --target {target} --quick (the recipe's "
                 "small profile on the built-in data)")
    out.print(line)


def main() -> None:
    run_reporting(app)


if __name__ == "__main__":
    main()
