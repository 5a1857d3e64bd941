"""The pipeline's layers (the import-linter contract in pyproject.toml, [tool.importlinter]):
the package keeps it, an upward import planted in a copy of the package breaks it (at module
level or inside a function: import-linter sees lazy imports too), and no module imports itself
through others (import-linter 2.1 has no acyclic contract; grimp, its import graph, answers it).

By hand: `lint-imports` from the repository root (PYTHONPATH=lib).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "pyproject.toml"

LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
# every import whose imported module also reaches back to its importer: a cycle, printed one per line
CYCLES = """
import sys, grimp
g = grimp.build_graph("petaction", cache_dir=None)
for m in sorted(g.modules):
    for d in sorted(g.find_modules_directly_imported_by(m)):
        if g.chain_exists(importer=d, imported=m):
            print(m, "->", d, "->", " -> ".join(g.find_shortest_chain(importer=d, imported=m)[1:]))
"""


def run(code: str, lib: Path, *args: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that imports petaction from `lib` (a copy, or the real one)."""
    env = dict(os.environ, PYTHONPATH=str(lib))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=lib.parent, timeout=300)


def copy_of_package(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    shutil.copytree(REPO / "lib" / "petaction", lib / "petaction", ignore=shutil.ignore_patterns("__pycache__"))
    return lib


def test_the_package_keeps_its_layers():
    r = run(LINT, REPO / "lib", "--config", str(CONFIG), "--no-cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("where", ["module", "function"])
def test_an_upward_import_breaks_the_layers(tmp_path, where):
    lib = copy_of_package(tmp_path)
    planted = {"module": "\nfrom petaction.reporting import report  # planted\n",
               "function": "\n\ndef planted():\n    from petaction.reporting import report\n    return report\n"}[where]
    with open(lib / "petaction" / "data" / "aihub.py", "a", encoding="utf-8") as f:
        f.write(planted)
    r = run(LINT, lib, "--config", str(CONFIG), "--no-cache")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "petaction.data is not allowed to import petaction.reporting" in r.stdout
    assert "petaction.data.aihub -> petaction.reporting.report" in r.stdout


def test_no_import_cycles():
    r = run(CYCLES, REPO / "lib")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "", "import cycles:\n" + r.stdout


def test_a_planted_cycle_is_found(tmp_path):
    """Within one layer the contract allows any import; the cycle check still sees a loop
    (prepare imports splits: splits importing prepare closes one)."""
    lib = copy_of_package(tmp_path)
    with open(lib / "petaction" / "data" / "splits.py", "a", encoding="utf-8") as f:
        f.write("\n\ndef planted():\n    from . import prepare\n    return prepare\n")
    r = run(CYCLES, lib)
    assert r.returncode == 0, r.stderr
    assert "petaction.data.splits -> petaction.data.prepare -> petaction.data.splits" in r.stdout
