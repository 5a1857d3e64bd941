"""Where things live: the repository root and each study's results folder."""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]     # lib/petaction/ -> repository root
PARAMS = REPO / "params"
NOTEBOOKS = REPO / "notebooks"
STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def results_root(results_dir: str | Path | None = None) -> Path:
    """results/ at the repository root whatever the working directory (papermill runs
    notebooks in their own folder); PETACTION_RESULTS or an explicit argument overrides."""
    if results_dir:
        return Path(results_dir).expanduser().resolve()
    return Path(os.environ.get("PETACTION_RESULTS") or REPO / "results").resolve()


def study_dir(study: str, results_dir: str | Path | None = None) -> Path:
    if not STUDY_NAME.match(study or ""):
        raise ValueError(f"study name {study!r} must be letters, digits, '_', '-', '.' (it names a folder)")
    d = results_root(results_dir) / study
    d.mkdir(parents=True, exist_ok=True)
    return d


def target_dir(study: str, target: str = "action", results_dir=None) -> Path:
    """results/<study> for the action target, results/<study>/<target> for another (emotion):
    each holds data/, models/ and evaluation/ of its own."""
    d = study_dir(study, results_dir)
    return d if target == "action" else d / target


def run_dir(study: str, model: str, seed: int, target: str = "action", results_dir=None) -> Path:
    """<target dir>/models/<model>/seed<k>"""
    return target_dir(study, target, results_dir) / "models" / model / f"seed{seed}"
