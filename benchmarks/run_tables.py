"""What the benchmarks that study one finished build share: their arguments (the run, its recipe, threads,
the result's name), the recipe the run was built from, the run installed on a local camera with a video of
its test images, and how a table is published — printed, and written as ``results/NAME.json`` and
``results/NAME.md`` with the machine and the command that made it."""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import cv2

from edgekit.artifacts import write_json
from edgekit.recipes import Recipe, load_recipe
from edgekit.report import markdown_table, print_table
from edgekit.stages.bench import machine

RESULTS = Path(__file__).parent / "results"


def run_arguments(doc: str) -> argparse.ArgumentParser:
    """A parser with ``--run``, ``--recipe``, ``--threads`` and ``--name``; the script adds its own."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="a finished `edgekit build` run folder")
    ap.add_argument("--recipe", help="recipe name or YAML file (default: the one build.json names)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", required=True, help="results/NAME.json and .md")
    return ap


def run_recipe(args: argparse.Namespace) -> Recipe:
    """The recipe ``--recipe`` names, else the one the run was built from."""
    return load_recipe(args.recipe or json.loads((args.run / "build.json").read_text())["recipe"])


def publish(name: str, title: str, headers: list[str], table: list[list], results: dict) -> None:
    """Print the table; write ``results`` (with the machine and the command added) and the table."""
    print_table(title, headers, table)
    record(name, title, markdown_table(headers, table), results)


def provenance(what: str, command: str | None = None) -> dict:
    """What a record is, when, by which command (default: this script's) and on which machine: the fields
    the documentation's results page reads from every ``results/*.json``."""
    return {"what": what, "date": datetime.date.today().isoformat(),
            "command": command or "python " + " ".join(sys.argv), "machine": machine()}


def record(name: str, title: str, markdown: str, results: dict) -> None:
    """Write ``results/NAME.json`` (``results`` with its provenance: what, date, command, machine) and
    ``results/NAME.md`` (the title, machine, command and ``markdown``)."""
    results = {**provenance(title), **results}
    write_json(RESULTS / f"{name}.json", results)
    (RESULTS / f"{name}.md").write_text(f"# {title}\n\nMachine: {results['machine']}\n\n"
                                        f"Command: `{results['command']}`\n\n{markdown}\n")


def make_video(images: list, frames: int, path: Path) -> Path:
    """An MJPG AVI of ``images`` cycled to ``frames`` frames, at the first image's size."""
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
    for i in range(frames):
        im = images[i % len(images)]
        im = cv2.resize(im, (w, h)) if im.shape[:2] != (h, w) else im
        writer.write(cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else im)
    writer.release()
    return path


def installed_line(run: Path, root: Path, frames: int) -> tuple[dict, Path, list, Path]:
    """The run's bundle installed in a camera folder under ``root`` (verified, golden-checked and activated, as
    flash does it)
    and an MJPG video of its test images cycled to ``frames`` frames: (bundle manifest, install folder, the
    images, the video)."""
    from edgekit.camera import slots
    from edgekit.camera.model import LineModel
    from edgekit.data.recipe_data import load_split, read_images, recorded_source
    from edgekit.deploy import keys, loopback
    from edgekit.stages.bundle import bundle

    built = json.loads((run / "build.json").read_text())
    recipe = load_recipe(next(p for p in (run / "compile").iterdir() if (p / "recipe.yaml").is_file()) / "recipe.yaml")
    key = keys.new_key("bench", root / "keys")
    manifest = bundle(run, built["target"], key, root / "line.bundle")
    install = loopback.prepare_install(root / "camera", key.with_suffix(".pub"))
    slot = slots.verify(install, root / "line.bundle")["slot"]
    LineModel.from_slot(install, slot).close()        # flash's golden check (an OpenVINO slot's blob compiled)
    slots.activate(install, slot)
    images = read_images(load_split(recipe, recorded_source(run)).test, "test images")
    return manifest, install, images, make_video(images, frames, root / "line.avi")
