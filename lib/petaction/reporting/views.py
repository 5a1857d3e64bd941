"""What the notebooks show: small tables and figures built from a step's files."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..evaluation import figures
from ..core import paths



def dataset_summary(info: dict):
    """Counts per class and split, and the imbalance bar chart (saved as class_counts.png)."""
    data = Path(info["data_dir"])
    fig = figures.class_counts(data / "summary.csv", data / "class_counts.png")
    return pd.read_csv(data / "summary.csv"), fig


def rejected(info: dict) -> pd.DataFrame:
    return pd.read_csv(Path(info["data_dir"]) / "rejected.csv")


def settings(p: dict) -> pd.DataFrame:
    """The resolved run settings as a one-column table (model dicts shown compactly)."""
    rows = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in p.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["value"])


def run_curves(p: dict):
    run = paths.run_dir(p["study"], p["model"], p["seed"], p["target"], p["results_dir"] or None, p.get("fold", 0),
                        p.get("trial", 0))
    log = pd.read_csv(run / "log.csv")
    return figures.training_curves({p["model"]: log}, run / "curves.png")


def test_metrics(m: dict) -> pd.DataFrame:
    return pd.DataFrame([{"model": m["model"], "seed": m["seed"], "best_epoch": m["best_epoch"],
                          **m["test"], "train_time_s": m["train_time_s"]}])
