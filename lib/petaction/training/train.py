"""Train one model on a prepared study with mmengine's Runner, select on val, test once.

    papermill notebooks/train.ipynb out.ipynb -p model tsn -p seed 0
    python -m petaction train --model tsn --seed 0

Writes results/<study>/models/<model>/seed<k>/: config.py (resolved, runnable by
mmaction2's tools/train.py), params.json, provenance.json, log.csv (per epoch),
best checkpoint, test_scores.npz/.csv (per-clip scores, all classes), metrics.json, val_epochs.npz
(every validation's predicted class per clip); the final weights are scored too
(test_scores_last.npz, val_scores_last.npz), and the train parameter `checkpoint: best | last`
says whose scores are test_scores.npz and val_scores.npz (the other's: *_scores_best / *_last).

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
                        data_dir, data_lists, read_split, resume_or_clear, rule_metrics, save_rule_scores,
                        save_scores, start_run, write_budget, write_metrics)
from .runner import score_val, train_score_both, train_then_test  # noqa: F401  (train.X: the Runner loop)


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
    cfg.custom_hooks.append(dict(type="ValEpochsHook"))   # val_epochs.npz: the checkpoint rule's evidence
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


def dumping(cfg, out: Path, split: str, source: str = "") -> list:
    """The run's validation metric plus mmengine's DumpResults of the per-clip results
    (<split>_results<source>.pkl, which runfolder.save_scores reads)."""
    return [cfg.val_evaluator, dict(type="DumpResults", out_file_path=str(out / f"{split}_results{source}.pkl"))]


def fit(cfg, p: dict, out: Path, resume: bool, t0: float) -> dict:
    """Train, score the final weights and the best checkpoint on test and validation
    (train_score_both; val_scores.npz, for selection); the rule in
    force (p["checkpoint"]) says whose scores are test_scores.npz / val_scores.npz. The main
    process writes the scores and metrics.json."""
    from mmengine.dist import get_world_size, is_main_process

    rule = p.get("checkpoint", "best")
    runner, best, scored, train_s = train_score_both(
        cfg, out, t0, lambda split, source="": dumping(cfg, out, split, source), resume)
    if not is_main_process():
        return {}
    data = data_dir(p["study"], p["target"], p["results_dir"] or None)
    class_names = json.loads((data / "classes.json").read_text())["classes"]
    rule_scores = save_rule_scores(out, data, class_names, p)
    kept = scored[rule]
    return write_metrics(out, p, best, kept["test"], rule_scores[rule]["test"], class_names, train_s, t0,
                         processes=get_world_size(), resumed=resume, val=kept["val"],
                         **rule_metrics(rule_scores, rule, best, runner))
