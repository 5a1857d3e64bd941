"""The docs' tables of measured figures are what tools/docs.py writes from benchmarks/results/."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_docs_tables_are_generated_from_the_results():
    r = subprocess.run([sys.executable, str(REPO / "tools" / "docs.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_stale_table_is_caught(tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "tools"))
    import docs
    page = tmp_path / "page.md"
    page.write_text("x\n<!-- table: learnability -->\n| typed | by hand |\n<!-- /table -->\n")
    monkeypatch.setattr(docs, "PAGES", [page])
    assert docs.rewrite(page.read_text()) != page.read_text()
