"""The documentation: the site builds strictly, its CLI reference is the installed app's, its results page is
what the results files say, and the README stays one screen."""
from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

ROOT = Path(__file__).resolve().parent.parent


def results_page():
    """``benchmarks/results_page.py`` as a module (``benchmarks/`` is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("results_page", ROOT / "benchmarks" / "results_page.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built as CI builds it: ``mkdocs build --strict`` (a broken link or anchor fails it)."""
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def sections(page: Path) -> dict[str, str]:
    """A built page's text under each heading, by the heading's text."""
    text = page.read_text()
    parts = re.split(r"<h[23][^>]*>(.*?)</h[23]>", text)
    return {html.unescape(re.sub(r"<[^>]+>", "", parts[i])).replace("¶", "").strip(): html.unescape(parts[i + 1])
            for i in range(1, len(parts) - 1, 2)}


def typer_commands(command, path: str = "edgekit"):
    """(``edgekit …`` path, option strings) of every command of the typer app, groups included."""
    yield path, [o for p in command.params for o in (*p.opts, *p.secondary_opts)]
    for name in getattr(command, "commands", {}):
        yield from typer_commands(command.commands[name], f"{path} {name}")


def test_cli_reference_lists_every_command_and_option_of_the_app(site):
    from edgekit.camera.app import commands as camera_commands
    from edgekit.cli import app

    found = sections(site / "reference" / "cli" / "index.html")
    commands = list(typer_commands(typer.main.get_command(app)))
    assert len(commands) > 20
    for path, options in commands[1:]:   # the root has --help only
        assert path in found, f"{path}: not on the CLI reference page"
        for option in options:
            assert option in found[path], f"{path} {option}: not on the CLI reference page"
    # the camera's commands parse their own arguments: `edgekit run`, and `edgekit device` for the rest
    for name, sub in camera_commands().items():
        heading = "edgekit run" if name == "run" else f"edgekit device {name}"
        assert heading in found, f"{heading}: not on the CLI reference page"
        for action in sub._actions:
            for option in action.option_strings or [action.dest]:
                assert option in found[heading], f"{heading} {option}: not on the CLI reference page"


def test_results_page_is_current_and_every_record_says_what_when_how_and_where():
    page = results_page()
    records = page.load()
    assert len(records) == len(list((ROOT / "benchmarks" / "results").glob("*.json")))
    assert (ROOT / "docs" / "results" / "index.md").read_text() == page.render(records), (
        "docs/results/index.md is out of date: run python benchmarks/results_page.py")
    for name, record in records.items():
        rows = record["rows"] if name == "main-command" else [record]
        for row in rows:
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", row["date"]), name
            assert row.get("machine") or row.get("cpu") or name == "fleet-flash", f"{name}: no machine"


def test_results_page_refuses_a_record_without_its_provenance(tmp_path, monkeypatch):
    page = results_page()
    (tmp_path / "raf-ssd-x.json").write_text('{"what": "a run", "date": "2026-12-02"}')
    monkeypatch.setattr(page, "RESULTS", tmp_path)
    with pytest.raises(SystemExit, match="raf-ssd-x.json: no command"):
        page.load()


def test_every_record_is_published_with_its_pictures(site):
    results = ROOT / "benchmarks" / "results"
    for record in results.glob("*.json"):
        assert (site / "results" / record.stem / "index.html").is_file(), record.stem
    for picture in results.glob("*.jpg"):
        assert (site / "results" / picture.name).is_file(), picture.name


def test_readme_is_one_screen_and_points_at_the_site():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).is_file(), f"README links to {target}, which does not exist"


def yaml_examples() -> list[tuple[Path, str]]:
    """Every ```yaml block of the documentation's pages."""
    return [(page, block) for page in sorted((ROOT / "docs").rglob("*.md"))
            for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)]


def test_the_pages_recipe_and_fleet_examples_load_as_written(tmp_path):
    from edgekit.deploy.fleet import load_fleet
    from edgekit.recipes import load_recipe

    loaded = 0
    for page, block in yaml_examples():
        text = re.sub(r"^ {3}", "", block, flags=re.M)   # blocks inside a numbered list are indented
        first = text.split("\n")[0]
        if first.startswith("extends:") and not first.endswith(".yaml"):   # a bundled recipe (not one beside it)
            path = tmp_path / f"example-{loaded}.yaml"
            path.write_text(text)
            assert load_recipe(path).name, page
            loaded += 1
        elif text.startswith("known_hosts:"):
            path = tmp_path / f"cameras-{loaded}.yaml"
            path.write_text(text)
            assert len(load_fleet(path).cameras) >= 1, page
            loaded += 1
    assert loaded >= 2
