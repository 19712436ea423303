"""The package's layers (``pyproject.toml``'s import contracts, checked by import-linter): each module imports
only from its own layer or those below, and the camera package imports nothing of the workstation and no
heavy library, at any depth. The contracts can fail: an import planted against them is reported."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": ""})


def test_the_layers_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_an_import_against_the_layers_is_reported(tmp_path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "edgekit", copy / "edgekit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy)
    golden = copy / "edgekit" / "camera" / "golden.py"
    golden.write_text(golden.read_text() + "\n\ndef _recipe():\n    from edgekit.recipes import load_recipe\n"
                      "    return load_recipe\n")
    result = lint_imports(copy)
    assert result.returncode == 1
    assert "edgekit.camera is not allowed to import edgekit.recipes" in result.stdout
    assert "edgekit.camera.golden -> edgekit.recipes" in result.stdout
