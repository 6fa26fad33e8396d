"""The package's import contract (pyproject.toml, [tool.importlinter]): the stages are
layers that import only downward, the web UI, the CLI and evaluation reach the stages
only through the pipeline, and no package's modules import one another in a circle.

Runs import-linter on the package as it is, and on a copy with one deliberate
wrong-way import each, which must be refused. Does not judge names or sizes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), str(project / "pyproject.toml"), "--no-cache"],
                          cwd=project, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"})  # fmt: skip


def test_the_package_keeps_its_import_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, wrong_import, broken",
    [
        # a stage reaching up the chain: the index importing the web UI
        ("store/index.py", "from ..web import formatting", "Stages flow one way"),
        # the UI reaching past the pipeline into a stage
        ("web/formatting.py", "from ..search import retrieval", "only through the pipeline"),
        # two modules of one package importing each other
        ("answer/kinds.py", "from . import compose", "No import circles"),
    ],
)
def test_a_wrong_way_import_breaks_the_contract(tmp_path, module, wrong_import, broken):
    shutil.copytree(ROOT / "assistant", tmp_path / "assistant",
                    ignore=shutil.ignore_patterns("__pycache__", "*.npy"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "assistant" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # noqa: E402\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    # The report's closing section names each contract broken.
    assert broken in result.stdout.split("Broken contracts", 1)[1]
