"""Why a model scored what it did, read from its per-epoch training log (``log.csv``).

The report's per-model discussion (and its SlowFast paragraph) rests on these facts, not on
guesses: how far the training loss fell from its first epoch, whether validation top-1 was
still rising when the budget ran out, and what an epoch cost.
"""
from __future__ import annotations

import pandas as pd

VERDICTS = {
    "stalled": "training loss barely fell: the model did not get past predicting the class prior",
    "under-trained": "still improving when its epoch budget ended",
    "overfitting": "validation top-1 peaked early while the training loss kept falling",
    "converged": "training loss and validation top-1 had levelled off",
}


def curve_facts(log: pd.DataFrame) -> dict:
    """Plain facts about one run's curves (one row per epoch, columns of EPOCH_LOG_COLUMNS)."""
    log = log.dropna(subset=["train_loss"]).reset_index(drop=True)
    n = len(log)
    val = log["val_top1"].astype(float)
    best = int(val.idxmax()) if val.notna().any() else n - 1
    first, last = float(log["train_loss"].iloc[0]), float(log["train_loss"].iloc[-1])
    tail = log["train_loss"].iloc[-max(2, n // 3):]
    return {"epochs": n, "loss_first": first, "loss_last": last,
            "loss_drop": 1.0 - last / first if first > 0 else 0.0,
            "loss_still_falling": bool(tail.iloc[-1] < 0.95 * tail.iloc[0]),
            "best_epoch": int(log["epoch"].iloc[best]), "best_val_top1": float(val.iloc[best]),
            "last_val_top1": float(val.iloc[-1]), "epoch_time_s": float(log["epoch_time_s"].median())}


def verdict(f: dict) -> str:
    """One of VERDICTS, from curve_facts (thresholds say what "barely" and "early" mean)."""
    if f["loss_drop"] < 0.15:
        return "stalled"
    if f["best_epoch"] >= f["epochs"] - 1 and f["loss_still_falling"]:
        return "under-trained"
    if f["best_epoch"] <= f["epochs"] // 2 and f["loss_still_falling"]:
        return "overfitting"
    return "converged"


def table(logs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model: its curve facts and verdict."""
    rows = []
    for model, log in logs.items():
        f = curve_facts(log)
        rows.append({"model": model, **f, "verdict": verdict(f)})
    return pd.DataFrame(rows)
