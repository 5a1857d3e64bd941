"""Train one model on a prepared study with mmengine's Runner, select on val, test once.

    papermill notebooks/train.ipynb out.ipynb -p model tsn -p seed 0
    python -m petaction train --model tsn --seed 0

Writes results/<study>/models/<model>/seed<k>/: config.py (resolved, runnable by
mmaction2's tools/train.py), params.json, provenance.json, log.csv (per epoch),
best checkpoint, test_scores.npz/.csv (per-clip scores, all classes), metrics.json.

A training killed before it finished resumes from its last checkpoint when the same command
runs again (same settings and data, see resume_or_clear); with nproc > 1 it runs under
torchrun as DistributedDataParallel (see launch).
"""
from __future__ import annotations

import csv
import hashlib
import json
import pickle
import time
from pathlib import Path

import numpy as np

from ..models import mmcompat, mmconfig  # noqa: F401  (mmcompat first: fixes mmaction import)
from ..core import paths, provenance  # noqa: F401  (mmcompat first: fixes mmaction import)
from . import launch


def data_dir(study: str, target: str, results_dir=None, fold: int = 0) -> Path:
    d = paths.target_dir(study, target, results_dir) / "data"
    if not (d / "classes.json").is_file():
        raise FileNotFoundError(f"no prepared data at {d}: run prepare first "
                                f"(papermill notebooks/prepare.ipynb out.ipynb -p study {study} -p target {target})")
    if fold and not (d / paths.split_file("test", fold)).is_file():
        raise FileNotFoundError(f"fold {fold} is not prepared at {d}: prepare with folds >= {fold} "
                                "(the study's `folds: k`, or papermill -p folds k)")
    return d


def data_lists(data: Path, fold: int = 0) -> list[Path]:
    """The files that say what a run trains and tests on."""
    return [data / paths.split_file(s, fold) for s in ("train", "val", "test")] + [data / "classes.json"]


def read_split(data: Path, split: str, fold: int = 0) -> list[tuple[str, int, int]]:
    rows = []
    with open(data / paths.split_file(split, fold), encoding="utf-8") as f:
        for line in f:
            clip, frames, label = line.rsplit(maxsplit=2)
            rows.append((clip, int(frames), int(label)))
    return rows


def save_scores(run: Path, data: Path, class_names: list[str], fold: int = 0, split: str = "test") -> dict:
    """Per-clip scores of one split from mmengine's DumpResults pickle (<split>_results.pkl) ->
    <split>_scores.npz + .csv: the test split's after testing, the validation split's of the
    selected checkpoint (score_val), which the evaluation selects models by."""
    with open(run / f"{split}_results.pkl", "rb") as f:
        results = pickle.load(f)
    clips = read_split(data, split, fold)
    if len(results) != len(clips):
        raise RuntimeError(f"{len(results)} {split} predictions for {len(clips)} {split} clips")
    scores = np.stack([np.asarray(r["pred_score"], dtype=np.float32) for r in results])
    labels = np.array([int(np.asarray(r["gt_label"]).reshape(-1)[0]) for r in results])
    expected = np.array([t[2] for t in clips])
    if not np.array_equal(labels, expected):
        raise RuntimeError(f"{split} predictions are not in {split}.txt order")
    ids = np.array([t[0] for t in clips])
    np.savez(run / f"{split}_scores.npz", ids=ids, labels=labels, scores=scores, classes=np.array(class_names))
    with open(run / f"{split}_scores.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "pred", *class_names])
        for i, lab, s in zip(ids, labels, scores):
            w.writerow([i, class_names[lab], class_names[int(s.argmax())], *np.round(s, 6)])
    (run / f"{split}_results.pkl").unlink()
    return {f"n_{split}": len(ids), "top1": float((scores.argmax(1) == labels).mean())}


def score_val(runner, evaluator) -> dict:
    """Run the validation split once through the loaded (selected) checkpoint with
    ``evaluator`` (the run's val metric plus one that dumps per-clip results). A plain loop
    rather than runner.val(): that would fire the training's hooks (best-checkpoint saving,
    log.csv) for an evaluation that is not an epoch. Every process runs it (the evaluator
    gathers the shards)."""
    import torch
    loader = runner.val_dataloader
    ev = runner.build_evaluator(evaluator)
    ev.dataset_meta = loader.dataset.metainfo
    runner.model.eval()
    with torch.no_grad():
        for batch in loader:
            ev.process(data_samples=runner.model.val_step(batch), data_batch=batch)
    return {k.replace("acc/", ""): float(v) for k, v in ev.evaluate(len(loader.dataset)).items()}


def clear_checkpoints(run: Path) -> None:
    """Remove the checkpoints an earlier training of this run left: a re-run must never select
    or test a stale one (``best_*_epoch_8.pth`` of the last run sorts after ``..._16.pth``)."""
    for f in (*run.glob("*.pth"), *run.glob("*.tmp"), run / "last_checkpoint", run / "checkpoints.sha256"):
        f.unlink(missing_ok=True)


def best_checkpoint(run: Path, runner=None) -> Path:
    """The checkpoint mmengine's CheckpointHook recorded as best; else the only best_*.pth."""
    recorded = runner.message_hub.get_info("best_ckpt") if runner is not None else None
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    found = sorted(run.glob("best_*.pth"), key=lambda f: int(f.stem.rsplit("_", 1)[-1]))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one best_*.pth checkpoint in {run}, found {[f.name for f in found]}")
    return found[0]


ATTEMPT = "attempt.key"   # the resolved settings and data of the training that wrote this folder


def attempt_key(p: dict, data: Path) -> str:
    """Resolved parameters + the data lists' content: equal keys mean the same training."""
    h = hashlib.sha256(json.dumps(p, sort_keys=True, default=str).encode())
    h.update(provenance.files_digest(data_lists(data, p["fold"])).encode())
    return h.hexdigest()[:16]


def resume_or_clear(run: Path, key: str) -> bool:
    """Resume (True) only an unfinished attempt (no metrics.json) of the same settings and data
    whose last checkpoint is one this study wrote; otherwise clear the old checkpoints, so a
    re-run never selects or tests a stale one. mmengine itself resumes, from last_checkpoint."""
    last = run / "last_checkpoint"
    ckpt = Path(last.read_text().strip()) if last.is_file() else None
    same = (run / ATTEMPT).is_file() and (run / ATTEMPT).read_text().strip() == key
    if same and not (run / "metrics.json").exists() and ckpt and ckpt.is_file() and mmcompat.is_trusted(ckpt):
        return True
    clear_checkpoints(run)
    return False


def run(p: dict, log=print) -> dict:
    """Train, select on val, test once. `p` is the output of params.resolve_train.
    In this process, or through torchrun when nproc x nnodes > 1 (see launch)."""
    if (p.get("model_cfg") or {}).get("type") == "FastRCNN":   # box-level: whole frames + RoI
        from . import detection
        return detection.run(p)
    t0 = time.time()
    data = data_dir(p["study"], p["target"], p["results_dir"] or None, p["fold"])
    class_names = json.loads((data / "classes.json").read_text())["classes"]
    train_counts = np.bincount([r[2] for r in read_split(data, "train", p["fold"])], minlength=len(class_names))
    out = paths.run_dir(p["study"], p["model"], p["seed"], p["target"], p["results_dir"] or None, p["fold"])
    out.mkdir(parents=True, exist_ok=True)
    cfg = mmconfig.build(p, data, out, class_names, train_counts.tolist())
    launch.adapt(cfg, p)
    key = attempt_key(p, data)
    resume = resume_or_clear(out, key)
    if resume:
        log(f"resuming an interrupted training of the same settings from {(out / 'last_checkpoint').read_text()}")
    start_run(out, cfg, p)
    (out / ATTEMPT).write_text(key)
    if not launch.distributed(p):
        return fit(cfg, p, out, resume, t0)
    launch.run_torchrun(p, out, resume, log)
    return json.loads((out / "metrics.json").read_text())


def worker(out: Path, resume: bool, launcher: str) -> None:
    """One process of a distributed training (python -m petaction.training.launch)."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(out / "config.py"))
    cfg.launcher = launcher
    fit(cfg, json.loads((out / "params.json").read_text()), out, resume, time.time())


def start_run(out: Path, cfg, p: dict | None = None) -> None:
    """What a run folder holds before training: the resolved config, the parameters, the
    provenance; an earlier metrics.json goes (its presence marks a finished run)."""
    cfg.dump(str(out / "config.py"))
    if p is not None:
        (out / "params.json").write_text(json.dumps(p, indent=1))
    (out / "provenance.json").write_text(json.dumps(provenance.collect(), indent=1))
    (out / "metrics.json").unlink(missing_ok=True)
    (out / BUDGET).unlink(missing_ok=True)


def train_then_test(cfg, out: Path, t0: float, resume: bool = False):
    """mmengine's Runner (recogniser, fast_rcnn or detector config): train (resuming when
    asked), load the best checkpoint on val, test it once. Returns (runner, best checkpoint,
    test metrics, training seconds since t0)."""
    from mmengine.dist import barrier
    from mmengine.runner import Runner

    cfg.resume, cfg.load_from = resume, None   # resume: mmengine reads work_dir/last_checkpoint
    runner = Runner.from_cfg(cfg)
    cpu0 = time.process_time()
    runner.train()
    write_budget(out, runner.iter, time.process_time() - cpu0)
    barrier()   # the main process has recorded the best checkpoint's hash before others load it
    train_s = time.time() - t0
    best = best_checkpoint(out, runner)
    runner.load_checkpoint(str(best))   # a checkpoint this run wrote: see mmcompat
    return runner, best, runner.test(), train_s


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
    scores = save_scores(out, data, class_names, p["fold"])
    save_scores(out, data, class_names, p["fold"], split="val")
    return write_metrics(out, p, best, test_metrics, scores, class_names, train_s, t0,
                         processes=get_world_size(), resumed=resume, val=val_metrics)


BUDGET = "budget.json"   # what a training spent: optimizer steps and CPU seconds (write_budget)


def write_budget(out: Path, steps: int, cpu_s: float) -> None:
    """The training's budget as spent: optimizer steps (mmengine's iteration count, so a resumed
    run counts the steps before the kill too) and the CPU seconds of this process's training
    loop (all its torch threads; data loading too where num_workers is 0, as in the quick
    profile). The report prints both beside each model's accuracy: equal footing is checked,
    not assumed. A resumed run's CPU seconds cover its last attempt only."""
    from mmengine.dist import is_main_process
    if is_main_process():
        (out / BUDGET).write_text(json.dumps({"train_steps": int(steps), "train_cpu_s": round(cpu_s, 1)}))


def write_metrics(out: Path, p: dict, best: Path, test_metrics: dict, scores: dict, class_names: list[str],
                  train_s: float, t0: float, **extra) -> dict:
    """metrics.json, written last: its presence marks a finished run (evaluate, study, resume)."""
    budget = json.loads((out / BUDGET).read_text()) if (out / BUDGET).is_file() else {}
    metrics = {
        "model": p["model"], "seed": p["seed"], "fold": p["fold"], "target": p["target"], "profile": p["profile"],
        "best_checkpoint": best.name, "best_epoch": int(best.stem.rsplit("_", 1)[-1]),
        "test": {k.replace("acc/", ""): float(v) for k, v in test_metrics.items()},
        "n_test": scores["n_test"], "train_time_s": round(train_s, 1),
        "wall_time_s": round(time.time() - t0, 1), **budget, "classes": class_names, **extra,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics
