"""Which checkpoint a run keeps, chosen on validation alone, and the optimism each rule leaves.

The rules (train parameter ``checkpoint``): ``best``, the epoch of best validation top-1
(mmengine's CheckpointHook ``save_best``), and ``last``, the final weights of the schedule. The
best of many validation evaluations on one small validation set is optimistic: its validation
top-1 is above what the same weights score on clips they were not picked on.

The choice reads validation only. Each run's ``val_epochs.npz`` (training.mmhooks.ValEpochsHook:
every validated epoch's predicted class per clip) is split into two halves of its validation
clips, stratified by class and seeded (sklearn's RepeatedStratifiedKFold, two folds, REPEATS
times), each half used both ways round: a rule picks its epoch on the selection half alone
(best: the epoch of highest accuracy there, the first on ties as CheckpointHook keeps it; last:
the last epoch) and is scored on the held-out half. Per run and rule: the mean held-out
accuracy, and the optimism within validation (the picked epoch's accuracy on the selection half
minus on the held-out half). The rule with the higher held-out accuracy, averaged over runs, is
chosen (ties keep ``best``, the default); the paired difference best - last has a percentile
bootstrap interval over runs (stats.bootstrap_ci).

Reported beside it, never used for the choice: each rule's validation top-1 minus test top-1,
per model, from the runs' scores of both checkpoints (training.runfolder.scores_path).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from ..core import atomic, paths
from ..training.mmhooks import VAL_EPOCHS
from ..training.runfolder import RULES, scores_path

REPEATS = 20   # stratified half-splits per run (each used both ways round)
SEED = 0
CSV = "checkpoint_rule.csv"
COLUMNS = ["model", "n_runs", *(f"{k}_{r}" for k in ("heldout", "within_val_optimism", "val_top1", "test_top1",
                                                      "val_minus_test") for r in RULES)]


def heldout(preds: np.ndarray, labels: np.ndarray, repeats: int = REPEATS, seed: int = SEED) -> dict:
    """One run's validation-only evidence: ``preds`` (epochs x clips predicted classes, in epoch
    order), ``labels`` (clips). Returns {rule: {"heldout": mean held-out-half accuracy of the
    epoch the rule picks on the other half, "within_val_optimism": selection-half minus
    held-out-half accuracy of that epoch}}."""
    from sklearn.model_selection import RepeatedStratifiedKFold
    correct = np.asarray(preds) == np.asarray(labels)[None, :]
    if correct.ndim != 2 or correct.shape[0] < 1 or correct.shape[1] < 2:
        raise ValueError(f"need (epochs, clips) predictions of at least 2 clips, got shape {correct.shape}")
    out = {r: {"heldout": [], "within_val_optimism": []} for r in RULES}
    folds = RepeatedStratifiedKFold(n_splits=2, n_repeats=repeats, random_state=seed)
    with warnings.catch_warnings():   # a class with one validation clip goes to one half only
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        halves = list(folds.split(np.zeros(len(labels)), labels))
    for select, held in halves:
        acc_s, acc_h = correct[:, select].mean(1), correct[:, held].mean(1)
        for rule, epoch in (("best", int(np.argmax(acc_s))), ("last", len(acc_s) - 1)):
            out[rule]["heldout"].append(acc_h[epoch])
            out[rule]["within_val_optimism"].append(acc_s[epoch] - acc_h[epoch])
    return {r: {k: float(np.mean(v)) for k, v in d.items()} for r, d in out.items()}


def choose(evidence: list[dict]) -> dict:
    """The rule with the higher held-out validation accuracy over runs (``evidence``: heldout()'s
    result per run), with the paired difference best - last and its bootstrap interval over runs."""
    if not evidence:
        return {"chosen": None, "n_runs": 0,
                "why": f"no run has per-epoch validation predictions ({VAL_EPOCHS}): retrain to compare the rules"}
    held = {r: np.array([e[r]["heldout"] for e in evidence]) for r in RULES}
    diff = held["best"] - held["last"]
    lo, hi = stats.bootstrap_ci(diff) if len(diff) > 1 else (None, None)   # one run: no interval over runs
    return {"chosen": "last" if held["last"].mean() > held["best"].mean() else "best", "n_runs": len(evidence),
            "repeats": REPEATS, "heldout": {r: float(held[r].mean()) for r in RULES},
            "within_val_optimism": {r: float(np.mean([e[r]["within_val_optimism"] for e in evidence])) for r in RULES},
            "diff_best_minus_last": float(diff.mean()), "ci_low": lo, "ci_high": hi}


def in_force(run: Path) -> str:
    """The run's rule (params.json ``checkpoint``; runs from before the parameter kept the best)."""
    p = atomic.read_json(Path(run) / "params.json") or {}
    return p.get("checkpoint", "best")


def load_epochs(run: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """(preds, labels) of a run's val_epochs.npz in epoch order, or None when it has none."""
    f = Path(run) / VAL_EPOCHS
    if not atomic.readable(f):
        return None
    with np.load(f) as z:
        order = np.argsort(z["epochs"])
        return z["preds"][order], z["labels"]


def top1(f: Path) -> float:
    if not atomic.readable(f):
        return float("nan")
    with np.load(f) as z:
        return float((z["scores"].argmax(1) == z["labels"]).mean())


def val_minus_test(run: Path) -> dict:
    """Each rule's validation and test top-1 and their difference (NaN where a checkpoint was not
    scored, e.g. a run from before the final weights were). Reporting only."""
    rule = in_force(run)
    out = {}
    for r in RULES:
        v, t = top1(scores_path(run, "val", r, rule)), top1(scores_path(run, "test", r, rule))
        out.update({f"val_top1_{r}": v, f"test_top1_{r}": t, f"val_minus_test_{r}": v - t})
    return out


def measure(runs: list[Path]) -> tuple[pd.DataFrame, dict]:
    """checkpoint_rule.csv (one row per model, means over its runs, and an ``all`` row) and the
    decision. The decision is made from val_epochs.npz alone (choose); the test files only fill
    the val_minus_test columns and the decision's ``val_minus_test`` (the optimism left)."""
    rows, evidence = [], []
    for run in runs:
        loaded = load_epochs(run)
        row = {"model": Path(run).parent.name}
        if loaded is not None:
            ev = heldout(*loaded)
            evidence.append(ev)
            row.update({f"{k}_{r}": ev[r][k] for r in RULES for k in ("heldout", "within_val_optimism")})
        rows.append({**row, **val_minus_test(run)})
    decision = choose(evidence)
    rules = sorted({in_force(r) for r in runs})
    decision["in_force"] = rules[0] if len(rules) == 1 else "mixed"
    if not rows:
        return pd.DataFrame(columns=COLUMNS), decision
    per_run = pd.DataFrame(rows).reindex(columns=[c for c in COLUMNS if c != "n_runs"])
    table = per_run.groupby("model", sort=False).mean(numeric_only=True)
    table.insert(0, "n_runs", per_run.groupby("model", sort=False).size())
    table.loc["all"] = [len(per_run), *per_run.drop(columns="model").mean(numeric_only=True)]
    table = table.reset_index()[COLUMNS]
    decision["val_minus_test"] = {r: none_if_nan(per_run[f"val_minus_test_{r}"].mean()) for r in RULES}
    return table, decision


def none_if_nan(x) -> float | None:
    return None if pd.isna(x) else float(x)


def run_folders(root: Path) -> list[Path]:
    """A target's finished run folders (metrics.json): prepared split, folds and trials alike."""
    return [r for r in sorted((Path(root) / "models").glob("*/seed*"))
            if paths.RUN_NAME.match(r.name) and (r / "metrics.json").is_file()]


def write(runs: list[Path], out: Path) -> dict:
    """evaluation/checkpoint_rule.csv and the decision (decisions.json's ``checkpoint_rule``)."""
    table, decision = measure(runs)
    atomic.to_csv(table, Path(out) / CSV, index=False)
    return decision
