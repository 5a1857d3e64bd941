"""Train one model on a prepared study with mmengine's Runner, select on val, test once.

    papermill notebooks/train.ipynb out.ipynb -p model tsn -p seed 0
    python -m petaction train --model tsn --seed 0

Writes results/<study>/models/<model>/seed<k>/: config.py (resolved, runnable by
mmaction2's tools/train.py), params.json, provenance.json, log.csv (per epoch),
best checkpoint, test_scores.npz/.csv (per-clip scores, all classes), metrics.json.

A training killed before it finished resumes from its last checkpoint when the same command
runs again (same settings and data, see resume_or_clear); with nproc > 1 it runs under
torchrun as DistributedDataParallel (see launch, worker). The run folder's files are
runfolder's, the Runner loop runner's.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..core import atomic, lock, paths
from ..models import mmconfig
from . import launch, mmhooks  # noqa: F401  (mmhooks: the hooks a training config names)
from .runfolder import (ATTEMPT, BUDGET, attempt_key, best_checkpoint, clear_checkpoints,  # noqa: F401  (train.X)
                        data_dir, data_lists, read_split, resume_or_clear, save_scores, start_run,
                        write_budget, write_metrics)
from .runner import score_val, train_then_test  # noqa: F401  (train.X: the Runner loop)


def run(p: dict, log=print) -> dict:
    """Train, select on val, test once. `p` is the output of params.resolve_train.
    In this process, or through torchrun when nproc x nnodes > 1 (see launch). Under the
    results folder's lock (a study's, or its own when run by hand)."""
    with lock.hold(p["study"], p["results_dir"] or None, what=f"train {p['model']} seed {p['seed']}", log=log):
        return run_locked(p, log)


def run_locked(p: dict, log=print) -> dict:
    if (p.get("model_cfg") or {}).get("type") == "FastRCNN":   # box-level: whole frames + RoI
        from . import detection
        return detection.run(p)
    t0 = time.time()
    data = data_dir(p["study"], p["target"], p["results_dir"] or None, p["fold"], p["trial"])
    class_names = json.loads((data / "classes.json").read_text())["classes"]
    train_counts = np.bincount([r[2] for r in read_split(data, "train", p["fold"], p["trial"])],
                               minlength=len(class_names))
    out = paths.run_dir(p["study"], p["model"], p["seed"], p["target"], p["results_dir"] or None, p["fold"], p["trial"])
    out.mkdir(parents=True, exist_ok=True)
    cfg = mmconfig.build(p, data, out, class_names, train_counts.tolist())
    launch.adapt(cfg, p)
    key = attempt_key(p, data)
    resume = resume_or_clear(out, key)
    if resume:
        log(f"resuming an interrupted training of the same settings from {(out / 'last_checkpoint').read_text()}")
    start_run(out, cfg, p)
    atomic.write_text(out / ATTEMPT, key)
    if not launch.distributed(p):
        return fit(cfg, p, out, resume, t0)
    launch.run_torchrun(p, out, resume, log)
    return json.loads((out / "metrics.json").read_text())


def fit(cfg, p: dict, out: Path, resume: bool, t0: float) -> dict:
    """Train and test (train_then_test), score the selected checkpoint on validation
    (val_scores.npz, for selection); the main process writes the scores and metrics.json."""
    from mmengine.dist import get_world_size, is_main_process

    runner, best, test_metrics, train_s = train_then_test(cfg, out, t0, resume)
    val_metrics = score_val(runner, [cfg.val_evaluator, dict(type="DumpResults",
                                                             out_file_path=str(out / "val_results.pkl"))])
    if not is_main_process():
        return {}
    data = data_dir(p["study"], p["target"], p["results_dir"] or None)
    class_names = json.loads((data / "classes.json").read_text())["classes"]
    scores = save_scores(out, data, class_names, p["fold"], trial=p["trial"])
    save_scores(out, data, class_names, p["fold"], split="val", trial=p["trial"])
    return write_metrics(out, p, best, test_metrics, scores, class_names, train_s, t0,
                         processes=get_world_size(), resumed=resume, val=val_metrics)
