"""Regenerate the measured-figure tables in the docs from the committed benchmark results.

    .venv/bin/python tools/docs.py           # rewrite the tables in README.md and docs/*.md
    .venv/bin/python tools/docs.py --check   # exit 1 if a page differs from what this writes

A page asks for a table with a pair of markers; everything between them is this script's:

    <!-- table: learnability -->
    <!-- /table -->

Each table is built from one JSON file under benchmarks/results/ (TABLES below) and ends with
the line saying where its figures come from: the file, its command, the machine, the commit and
the time. Nothing measured is typed by hand into a page (tests/test_docs.py runs --check).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def source_line(path: Path, result: dict) -> str:
    prov = result.get("provenance", {})
    hw, git = prov.get("hardware", {}), prov.get("git", {})
    commit = (git.get("commit") or "?")[:7] + (" (uncommitted changes)" if git.get("dirty") else "")
    machine = f"{hw.get('cpu', '?')}, {hw.get('cpu_count', '?')} CPUs, torch {prov.get('versions', {}).get('torch', '?')}"
    return (f"*From `{path.relative_to(REPO)}`: `{result.get('command', '?')}`; {machine}; "
            f"commit {commit}; {prov.get('time_utc', '?')}.*")


def pct(x) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.1f}%"


def learnability(result: dict) -> pd.DataFrame:
    rows = []
    for m in result["models"]:
        runs = [r for r in result["runs"] if r["model"] == m["model"]]
        below = [r["first_below_step"] for r in runs]
        rows.append({
            "model": m["model"], "seeds": len(runs),
            "test top-1 (mean ± sd)": f"{pct(m['test_top1_mean'])} ± {100 * m['test_top1_std']:.1f}",
            "lowest": pct(m["test_top1_min"]), "spread": f"{100 * m['test_top1_spread']:.1f} pts",
            "best val top-1 (mean)": pct(m["best_val_top1_mean"]),
            "loss < 0.8 ln K at step": ", ".join("never" if b is None else str(b) for b in below),
            "steps": ", ".join(str(s) for s in m["train_steps"]),
            "train CPU s (mean)": f"{m['train_cpu_s_mean']:.0f}",
        })
    return pd.DataFrame(rows)


# table name -> (result file, builder of its DataFrame)
TABLES = {
    "learnability": ("learnability.json", learnability),
    "learnability-seeds": ("learnability_seeds.json", learnability),
}


def render(name: str) -> str:
    if name not in TABLES:
        raise SystemExit(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    file, build = TABLES[name]
    path = RESULTS / file
    if not path.is_file():
        return f"*No result yet: run the benchmark that writes `{path.relative_to(REPO)}`.*\n"
    result = json.loads(path.read_text())
    return build(result).to_markdown(index=False) + "\n\n" + source_line(path, result) + "\n"


def rewrite(text: str) -> str:
    return MARKER.sub(lambda m: m.group(1) + render(m.group("name")) + m.group(4), text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report pages that are out of date")
    a = ap.parse_args()
    stale = []
    for page in PAGES:
        old = page.read_text(encoding="utf-8")
        new = rewrite(old)
        if new != old:
            stale.append(page.relative_to(REPO))
            if not a.check:
                page.write_text(new, encoding="utf-8")
    if a.check and stale:
        print("out of date (run `make docs`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("rewrote: " + ", ".join(map(str, stale))) if stale and not a.check else "docs tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
