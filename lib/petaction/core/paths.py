"""Where things live: the repository root and each study's results folder."""
from __future__ import annotations

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]     # lib/petaction/core/ -> repository root
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


def run_dir(study: str, model: str, seed: int, target: str = "action", results_dir=None, fold: int = 0,
            trial: int = 0) -> Path:
    """<target dir>/models/<model>/seed<k> (the prepared split), .../seed<k>_fold<i> (fold i
    of a k-fold cross-validation) or .../seed<k>_trial<t> (trial t: its own split draw)."""
    return target_dir(study, target, results_dir) / "models" / model / run_name(seed, fold, trial)


RUN_NAME = re.compile(r"^seed(\d+)(?:_fold(\d+))?(?:_trial(\d+))?$")


def run_name(seed: int, fold: int = 0, trial: int = 0) -> str:
    return f"seed{seed}" + (f"_fold{fold}" if fold else "") + (f"_trial{trial}" if trial else "")


def parse_run(run: Path) -> tuple[int, int]:
    """(seed, fold) from a run folder's name; fold 0: the prepared split."""
    m = RUN_NAME.match(Path(run).name)
    if not m:
        raise ValueError(f"{run} is not a run folder (seed<k> or seed<k>_fold<i>)")
    return int(m.group(1)), int(m.group(2) or 0)


def run_trial(run: Path) -> int:
    """The trial of a run folder (seed<k>_trial<t>); 0: a run on the prepared split or a fold."""
    m = RUN_NAME.match(Path(run).name)
    if not m:
        raise ValueError(f"{run} is not a run folder (seed<k>, seed<k>_fold<i> or seed<k>_trial<t>)")
    return int(m.group(3) or 0)


def split_file(split: str, fold: int = 0, trial: int = 0) -> str:
    """The clip list of a split: train.txt, train.fold<i>.txt for cross-validation fold i, or
    train.trial<t>.txt for trial t (its own split draw)."""
    return f"{split}.fold{fold}.txt" if fold else f"{split}.trial{trial}.txt" if trial else f"{split}.txt"
