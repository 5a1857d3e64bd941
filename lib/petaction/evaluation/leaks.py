"""Nothing an evaluated result depends on was trained or selected on its test clips.

A run's result depends on the clips it trained and selected on (its train and val lists), on
those of every run it started from (init ``<target>[:<model>]``, e.g. ``tsm@action``: the
source run's lists, and its own source's, down the chain), and, for the end-to-end accuracy,
on the pet detector's training and validation frames. evaluate calls check() before it
states anything: a clip of the run's test scores in any of those is a leak, and the result
is refused with one message naming the run, where the clips were seen and how many.
The study's one split (prepare: the same split for every target) keeps every chain clean.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core import paths
from ..models import pretrained

SEEN_SPLITS = ("train", "val")   # what a run trains on and selects its checkpoint on


class LeakError(RuntimeError):
    """A result whose dependency chain saw some of its test clips."""


def list_ids(path: Path) -> set[str]:
    """The clip ids of an mmaction2 rawframe list ("dir total_frames label" per line)."""
    return {line.rsplit(maxsplit=2)[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def run_params(run: Path) -> dict:
    if not (run / "params.json").is_file():
        raise LeakError(f"{run} has no params.json: what it trained on cannot be checked; re-run its training")
    return json.loads((run / "params.json").read_text())


def seen_by_run(run: Path, chain: tuple = ()) -> list[tuple[str, set[str]]]:
    """[(where, clip ids)] that `run` and every run it started from trained or selected on."""
    p = run_params(run)
    data = paths.target_dir(p["study"], p["target"], p["results_dir"] or None) / "data"
    fold, trial = int(p.get("fold", 0)), int(p.get("trial", 0))
    seen = [(f"{run} ({split} of {data.name}/{paths.split_file(split, fold, trial)} of the {p['target']} target)",
             list_ids(data / paths.split_file(split, fold, trial))) for split in SEEN_SPLITS]
    source = pretrained.source_run(p)
    if source is not None:
        if source in chain:   # the study refuses such loops; here only never to recurse forever
            raise LeakError(f"runs start from each other in a loop: {' -> '.join(map(str, (*chain, source)))}")
        seen += seen_by_run(source, (*chain, run))
    return seen


def seen_by_detector(det_dir: Path) -> list[tuple[str, set[str]]]:
    """[(where, clip ids)] of the detector's training and validation frames (its coco_<split>.json)."""
    out = []
    for split in SEEN_SPLITS:
        coco = json.loads((det_dir / f"coco_{split}.json").read_text())
        out.append((f"the pet detector's {split} frames ({det_dir / f'coco_{split}.json'})",
                    {Path(im["file_name"]).parts[1] for im in coco["images"]}))   # frames/<clip>/img_*.jpg
    return out


def test_ids(run: Path) -> set[str]:
    return {str(i) for i in np.load(run / "test_scores.npz")["ids"]}


def check(runs: list[Path], detector_dir: Path | None = None, detector_runs: list[Path] | None = None) -> dict:
    """Refuse (LeakError) when any run's test clips appear in its dependency chain: its own
    and its init sources' train and val lists, and with ``detector_dir`` (the detector the
    end-to-end accuracy uses) the detector's train and val frames, for ``detector_runs`` (the
    runs whose test clips the detector's boxes are measured on; default: every run). Returns
    what was checked: {runs, chain_links (the (where) entries checked, over all runs), detector}."""
    det = seen_by_detector(detector_dir) if detector_dir is not None else []
    on_det = set(runs if detector_runs is None else detector_runs)
    links = 0
    for run in runs:
        tested, leaked, places = test_ids(run), set(), []
        for where, ids in seen_by_run(run) + (det if run in on_det else []):
            links += 1
            overlap = tested & ids
            if overlap:
                leaked |= overlap
                places.append(f"{len(overlap)} in {where}")
        if leaked:
            raise LeakError(f"{len(leaked)} of the {len(tested)} test clips of {run} were trained or selected on by "
                            f"what its result depends on ({'; '.join(places)}): it would measure memory of its test "
                            "clips, so it is not evaluated. Prepare every target of the study again (one split for "
                            f"every target: prepare) and re-train; e.g. {sorted(leaked)[0]}")
    return {"runs": len(runs), "chain_links": links, "detector": str(detector_dir) if detector_dir else None}


def detector_used(study: str, results_dir, e2e_models, k: int) -> Path | None:
    """The detector folder whose boxes the end-to-end accuracy uses (None: no e2e measured)."""
    from ..training import detector
    det = detector.out_dir(study, "action", results_dir)
    if e2e_models in (None, "none", [], ()) or k or not (det / "metrics.json").is_file():
        return None
    return det
