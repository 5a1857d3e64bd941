"""A committed benchmark result names the command that wrote it and comes from a clean tree:
every benchmark refuses to start on uncommitted changes (core.provenance)."""
import json
import os
import subprocess
import sys

import pytest

from petaction.core import provenance
from petaction.core.paths import REPO


def test_a_dirty_tree_is_refused_in_one_line_unless_allowed(monkeypatch, capsys):
    monkeypatch.delenv("PETACTION_ALLOW_DIRTY", raising=False)
    for state, words in (({"commit": "abc", "dirty": True}, "has uncommitted changes"),
                         ({"commit": "unknown", "dirty": None}, "cannot be read")):
        monkeypatch.setattr(provenance, "git_state", lambda s=state: s)
        with pytest.raises(SystemExit) as e:
            provenance.require_clean()
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and len(err.splitlines()) == 1 and words in err and "commit or stash" in err
    monkeypatch.setenv("PETACTION_ALLOW_DIRTY", "1")
    provenance.require_clean()                                  # an exploratory run goes on
    monkeypatch.delenv("PETACTION_ALLOW_DIRTY")
    monkeypatch.setattr(provenance, "git_state", lambda: {"commit": "abc", "dirty": False})
    provenance.require_clean()                                  # clean: nothing said


def test_a_saved_result_names_its_command(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "REPO", tmp_path)
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "benchmarks" / "loader.py"), "--clips", "3"])
    monkeypatch.setattr(provenance, "collect", lambda: {"git": {"dirty": False}})
    provenance.save_benchmark("x", {"clips": 3})
    saved = json.loads((tmp_path / "benchmarks" / "results" / "x.json").read_text())
    assert saved["command"] == "python benchmarks/loader.py --clips 3" and saved["clips"] == 3
    provenance.save_benchmark("y", {"command": "make study"})   # a result's own command wins
    assert json.loads((tmp_path / "benchmarks" / "results" / "y.json").read_text())["command"] == "make study"


def test_a_benchmark_refuses_before_its_work_on_a_dirty_tree(tmp_path):
    """A benchmark script run as `python benchmarks/schedule.py` with git saying the tree is dirty
    stops at once with exit 2 and writes nothing."""
    code = ("import sys, runpy; from petaction.core import provenance; "
            "provenance.git_state = lambda: {'commit': 'x', 'dirty': True}; "
            f"sys.argv = [{str(REPO / 'benchmarks' / 'schedule.py')!r}, '--out', 'never']; "
            f"runpy.run_path(sys.argv[0], run_name='__main__')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "PETACTION_ALLOW_DIRTY"})
    assert res.returncode == 2 and "refusing to write" in res.stderr, res.stderr[-500:]
    assert not (REPO / "benchmarks" / "results" / "never.json").exists()
