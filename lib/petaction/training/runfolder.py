"""A run folder's files: what a training reads (the prepared split lists) and writes (config,
parameters, provenance, checkpoints, budget, per-clip scores, metrics.json), and when an
interrupted one resumes. Shared by every kind of training (train, detection, detector).
"""
from __future__ import annotations

import csv
import hashlib
import json
import pickle
import time
from pathlib import Path

import numpy as np

from ..core import atomic, paths, provenance
from ..models import checkpoints, mmconfig, pretrained


def data_dir(study: str, target: str, results_dir=None, fold: int = 0, trial: int = 0) -> Path:
    d = paths.target_dir(study, target, results_dir) / "data"
    if not (d / "classes.json").is_file():
        raise FileNotFoundError(f"no prepared data at {d}: run prepare first "
                                f"(papermill notebooks/prepare.ipynb out.ipynb -p study {study} -p target {target})")
    if fold and not (d / paths.split_file("test", fold)).is_file():
        raise FileNotFoundError(f"fold {fold} is not prepared at {d}: prepare with folds >= {fold} "
                                "(the study's `folds: k`, or papermill -p folds k)")
    if trial and not (d / paths.split_file("test", 0, trial)).is_file():
        raise FileNotFoundError(f"trial {trial} is not prepared at {d}: prepare with trials >= {trial} "
                                "(the study's `trials: n`, or papermill -p trials n)")
    return d


def data_lists(data: Path, fold: int = 0, trial: int = 0) -> list[Path]:
    """The files that say what a run trains and tests on."""
    return [data / paths.split_file(s, fold, trial) for s in ("train", "val", "test")] + [data / "classes.json"]


def read_split(data: Path, split: str, fold: int = 0, trial: int = 0) -> list[tuple[str, int, int]]:
    return read_list(data / paths.split_file(split, fold, trial))


def read_list(path: Path) -> list[tuple[str, int, int]]:
    """A split list's (clip, frames, label) rows, in its order."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            clip, frames, label = line.rsplit(maxsplit=2)
            rows.append((clip, int(frames), int(label)))
    return rows


RULES = ("best", "last")   # the train parameter `checkpoint`: which checkpoint's scores are the run's


def scores_tag(rule: str, in_force: str) -> str:
    """The file-name tag of a checkpoint's scores: none for the rule in force (test_scores.npz,
    val_scores.npz, which the evaluation reads), ``_best`` or ``_last`` for the other one."""
    return "" if rule == in_force else f"_{rule}"


def scores_path(run: Path, split: str, rule: str, in_force: str) -> Path:
    return Path(run) / f"{split}_scores{scores_tag(rule, in_force)}.npz"


def save_scores(run: Path, data: Path, class_names: list[str], fold: int = 0, split: str = "test",
                trial: int = 0, source: str = "", tag: str = "") -> dict:
    """Per-clip scores of one split from mmengine's DumpResults pickle (<split>_results<source>.pkl)
    -> <split>_scores<tag>.npz + .csv: the test split's after testing, the validation split's
    (score_val), which the evaluation selects models by; tag "_best" / "_last" for the checkpoint
    the rule in force did not pick (scores_tag)."""
    with open(run / f"{split}_results{source}.pkl", "rb") as f:
        results = pickle.load(f)
    clips = read_split(data, split, fold, trial)
    if len(results) != len(clips):
        raise RuntimeError(f"{len(results)} {split} predictions for {len(clips)} {split} clips")
    scores = np.stack([np.asarray(r["pred_score"], dtype=np.float32) for r in results])
    labels = np.array([int(np.asarray(r["gt_label"]).reshape(-1)[0]) for r in results])
    expected = np.array([t[2] for t in clips])
    if not np.array_equal(labels, expected):
        raise RuntimeError(f"{split} predictions are not in {split}.txt order")
    ids = np.array([t[0] for t in clips])
    atomic.savez(run / f"{split}_scores{tag}.npz", ids=ids, labels=labels, scores=scores, classes=np.array(class_names))
    with atomic.open_atomic(run / f"{split}_scores{tag}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "pred", *class_names])
        for i, lab, s in zip(ids, labels, scores):
            w.writerow([i, class_names[lab], class_names[int(s.argmax())], *np.round(s, 6)])
    (run / f"{split}_results{source}.pkl").unlink()
    return {f"n_{split}": len(ids), "top1": float((scores.argmax(1) == labels).mean())}


def save_rule_scores(run: Path, data: Path, class_names: list[str], p: dict) -> dict:
    """Both checkpoints' test and validation scores (the best's from <split>_results.pkl, the
    last weights' from <split>_results_last.pkl), named by the rule in force (p["checkpoint"]):
    its scores become test_scores.npz / val_scores.npz. Returns {checkpoint: {split: save_scores'
    summary}} for both checkpoints (best, last)."""
    rule = p.get("checkpoint", "best")
    out = {}
    for which, source in (("best", ""), ("last", "_last")):
        tag = scores_tag(which, rule)
        out[which] = {split: save_scores(run, data, class_names, p["fold"], split=split, trial=p["trial"],
                                         source=source, tag=tag) for split in ("test", "val")}
    return out


def rule_metrics(rule_scores: dict, rule: str, best: Path, runner) -> dict:
    """What metrics.json records of the checkpoint rule: the rule in force, the checkpoint file and
    epoch whose scores are the run's (kept_checkpoint: what export, infer and a run started from
    this one load), and each checkpoint's validation and test top-1 (from its saved scores)."""
    last_epoch = runner.epoch
    last = Path(runner.message_hub.get_info("last_ckpt") or f"epoch_{last_epoch}.pth")
    if checkpoint_epoch(last) != last_epoch:
        raise RuntimeError(f"the last checkpoint {last.name} is not the final epoch {last_epoch}'s")
    return {"checkpoint": rule, "kept_checkpoint": best.name if rule == "best" else last.name,
            "scored_epoch": checkpoint_epoch(best) if rule == "best" else last_epoch,
            "last_checkpoint": last.name, "last_epoch": last_epoch,
            "best_epoch_val_top1": rule_scores["best"]["val"]["top1"], "best_test_top1": rule_scores["best"]["test"]["top1"],
            "last_epoch_val_top1": rule_scores["last"]["val"]["top1"], "last_test_top1": rule_scores["last"]["test"]["top1"]}


def clear_checkpoints(run: Path) -> None:
    """Remove the checkpoints an earlier training of this run left: a re-run must never select
    or test a stale one (``best_*_epoch_8.pth`` of the last run sorts after ``..._16.pth``).
    Its TensorBoard events go too: TensorBoard would draw the old curves under the new ones
    (a resumed training keeps them, and continues them)."""
    tb = run / mmconfig.TENSORBOARD_DIR
    for f in (*run.glob("*.pth"), *run.glob("*.tmp"), run / "last_checkpoint", run / "checkpoints.sha256",
              *tb.glob("events.out.tfevents.*")):
        f.unlink(missing_ok=True)


def checkpoint_epoch(ckpt: Path) -> int:
    """The epoch in a CheckpointHook file name (best_acc_top1_epoch_12.pth, epoch_12.pth)."""
    return int(Path(ckpt).stem.rsplit("_", 1)[-1])


def best_checkpoint(run: Path, runner=None) -> Path:
    """The checkpoint mmengine's CheckpointHook recorded as best; else the only best_*.pth."""
    recorded = runner.message_hub.get_info("best_ckpt") if runner is not None else None
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    found = sorted(run.glob("best_*.pth"), key=checkpoint_epoch)
    if len(found) != 1:
        raise FileNotFoundError(f"expected one best_*.pth checkpoint in {run}, found {[f.name for f in found]}")
    return found[0]

def kept_checkpoint(run: Path) -> Path:
    """The checkpoint a finished run reports (metrics.json's kept_checkpoint: the best's or the
    final weights', train parameter `checkpoint`); the best one for a run from before the rule."""
    m = json.loads((Path(run) / "metrics.json").read_text()) if (Path(run) / "metrics.json").is_file() else {}
    if m.get("kept_checkpoint"):
        ckpt = Path(run) / m["kept_checkpoint"]
        if not ckpt.is_file():
            raise FileNotFoundError(f"{ckpt} (metrics.json's kept_checkpoint) is missing: train {run} again")
        return ckpt
    return best_checkpoint(run)

ATTEMPT = "attempt.key"   # the resolved settings and data of the training that wrote this folder


def attempt_key(p: dict, data: Path) -> str:
    """Resolved parameters + the data lists' content: equal keys mean the same training."""
    h = hashlib.sha256(json.dumps(p, sort_keys=True, default=str).encode())
    h.update(provenance.files_digest(data_lists(data, p["fold"], p.get("trial", 0))).encode())
    return h.hexdigest()[:16]


def resume_or_clear(run: Path, key: str) -> bool:
    """Resume (True) only an unfinished attempt (no metrics.json) of the same settings and data
    whose last checkpoint is one this study wrote, whole, and whose epoch was validated (its row
    in log.csv: a kill between an epoch's checkpoint and the end of its validation would resume
    past an epoch never validated, which could then never be selected); otherwise clear the
    old checkpoints, so a re-run never selects or tests a stale one. mmengine itself resumes,
    from last_checkpoint."""
    last = run / "last_checkpoint"
    ckpt = Path(last.read_text().strip()) if last.is_file() else None
    same = (run / ATTEMPT).is_file() and (run / ATTEMPT).read_text().strip() == key
    if (same and not (run / "metrics.json").exists() and ckpt and ckpt.is_file()
            and checkpoints.is_trusted(ckpt) and validated(run, ckpt)):
        return True
    clear_checkpoints(run)
    return False


def validated(run: Path, ckpt: Path) -> bool:
    """Whether the checkpoint's epoch has its validation row in log.csv (EpochCSVHook)."""
    try:
        with open(run / "log.csv", newline="") as f:
            return any(r.get("epoch") == str(checkpoint_epoch(ckpt)) and r.get("val_top1")
                       for r in csv.DictReader(f))
    except (OSError, ValueError):
        return False


def start_run(out: Path, cfg, p: dict | None = None) -> None:
    """What a run folder holds before training: the resolved config, the parameters, the
    provenance; an earlier metrics.json goes (its presence marks a finished run)."""
    cfg.dump(str(out / "config.py"))
    if p is not None:
        atomic.write_json(out / "params.json", p, indent=1)
    atomic.write_json(out / "provenance.json", provenance.collect(), indent=1)
    (out / "metrics.json").unlink(missing_ok=True)
    (out / BUDGET).unlink(missing_ok=True)
    for f in (*out.glob("*_scores_best.*"), *out.glob("*_scores_last.*")):   # an earlier rule's other checkpoint
        f.unlink()

BUDGET = "budget.json"   # what a training spent: optimizer steps and CPU seconds (write_budget)


def write_budget(out: Path, steps: int, cpu_s: float) -> None:
    """The training's budget as spent: optimizer steps (mmengine's iteration count, so a resumed
    run counts the steps before the kill too) and the CPU seconds of this process's training
    loop (all its torch threads; data loading too where num_workers is 0, as in the quick
    profile). The report prints both beside each model's accuracy: equal footing is checked,
    not assumed. A resumed run's CPU seconds cover its last attempt only."""
    from mmengine.dist import is_main_process
    if is_main_process():
        atomic.write_json(out / BUDGET, {"train_steps": int(steps), "train_cpu_s": round(cpu_s, 1)})


INIT_FIELDS = ("init", "kind", "source", "loaded", "missing", "unexpected", "head_reinitialised")


def init_record(out: Path, p: dict) -> dict:
    """Where the run's first weights came from, for metrics.json: init.json's counts of loaded,
    missing and unexpected tensors (pretrained.load_report; the key lists stay in init.json)."""
    rec = pretrained.load_report(out)
    if rec is None:   # the initializer writes init.json before the first step: its absence is a bug
        return {"init": p.get("init"), "error": f"no {pretrained.REPORT} for this init in {out}"}
    return {k: rec[k] for k in INIT_FIELDS if k in rec}


def write_metrics(out: Path, p: dict, best: Path, test_metrics: dict, scores: dict, class_names: list[str],
                  train_s: float, t0: float, **extra) -> dict:
    """metrics.json, written last: its presence marks a finished run (evaluate, study, resume);
    the budget (budget.json) and the init record (init.json) merged in."""
    budget = atomic.read_json(out / BUDGET) or {}
    metrics = {
        "model": p["model"], "seed": p["seed"], "fold": p["fold"], "trial": p.get("trial", 0), "target": p["target"],
        "profile": p["profile"],
        "best_checkpoint": best.name, "best_epoch": checkpoint_epoch(best),
        "test": {k.replace("acc/", ""): float(v) for k, v in test_metrics.items()},
        "n_test": scores["n_test"], "train_time_s": round(train_s, 1),
        "wall_time_s": round(time.time() - t0, 1), **budget, "init": init_record(out, p), "classes": class_names,
        **extra,
    }
    atomic.write_json(out / "metrics.json", metrics, indent=1)
    return metrics
