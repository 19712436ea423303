"""MkDocs hooks: the pages generated at build time.

- ``reference/cli.md``: the marker ``<!-- cli-reference -->`` becomes the reference of the installed app — the
  typer commands by typer's own documentation generator, and the camera's commands (``edgekit run``,
  ``edgekit device``, ``edgekit-device.pyz``), which parse their own arguments, by their argparse help.
- ``results/NAME.md``: each record in ``benchmarks/results/`` published beside the results page, with its
  pictures (the page itself is committed, written by ``benchmarks/results_page.py``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CLI_MARKER = "<!-- cli-reference -->"


def results_page():
    """``benchmarks/results_page.py`` as a module (``benchmarks/`` is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("results_page", ROOT / "benchmarks" / "results_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def typer_reference() -> str:
    """Every typer command, argument and option of ``edgekit``, as typer documents an app."""
    import typer
    import typer.cli
    from typer.cli import get_docs_for_click

    from edgekit.cli import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="edgekit")
    if hasattr(typer.cli, "MARKUP_MODE_KEY"):   # typer 0.13+: help text rendered as the app's markup mode says
        ctx.ensure_object(dict)[typer.cli.MARKUP_MODE_KEY] = app.rich_markup_mode
    return get_docs_for_click(obj=command, ctx=ctx, name="edgekit", title="CLI reference")


def camera_reference() -> str:
    """The camera package's commands, each with its argparse help as the camera prints it."""
    from edgekit.camera.app import commands

    text = ["## The camera's commands", "",
            "`edgekit run` and `edgekit device` hand their arguments to the camera package, the same code as "
            "`python3 edgekit-device.pyz` on a camera (JetPack's own Python, nothing installed). Their options:", ""]
    as_run, as_device = commands("edgekit"), commands("edgekit device")     # `run` is `edgekit run`; the rest
    for name in as_run:                                                       # are `edgekit device NAME`
        sub = as_run[name] if name == "run" else as_device[name]
        text += [f"### `{sub.prog}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(text)


def on_files(files: Files, config) -> Files:
    """Publish every results record (its page and pictures) under ``results/``."""
    page = results_page()
    for md in sorted(RESULTS.glob("*.md")):
        if (RESULTS / f"{md.stem}.json").is_file():
            files.append(File.generated(config, f"results/{md.name}", content=page.record_page(md.stem)))
    for picture in sorted(RESULTS.glob("*.jpg")):
        files.append(File.generated(config, f"results/{picture.name}", abs_src_path=str(picture)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        reference = typer_reference().split("\n", 1)[1]   # the page keeps its own title
        return markdown.replace(CLI_MARKER, reference + "\n\n" + camera_reference())
    return markdown
