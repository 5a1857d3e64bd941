"""Figures, each saved as PNG beside the data it shows and returned for inline display."""
from __future__ import annotations

from pathlib import Path

import sys

import matplotlib

if "ipykernel" not in sys.modules:   # headless outside notebooks; a kernel keeps its inline backend,
    matplotlib.use("Agg")            # which is what renders a displayed figure as a PNG
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def save(fig, path: Path | None = None):
    """Lay out, write the PNG (when a path is given) and close the figure: a notebook shows it
    once, where it is displayed, not again when the cell ends."""
    fig.tight_layout()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return fig


def class_counts(summary_csv: Path, out: Path):
    """Stacked bars: clips per class and split (the imbalance chart)."""
    df = pd.read_csv(summary_csv).set_index("label")
    fig, ax = plt.subplots(figsize=(7, 3.2))
    df[["train", "val", "test"]].plot.bar(stacked=True, ax=ax, color=["#4c72b0", "#dd8452", "#55a467"])
    ax.set_ylabel("clips")
    ax.set_xlabel("")
    ratio = df["total"].max() / max(df["total"].min(), 1)
    ax.set_title(f"Clips per class and split (largest:smallest = {ratio:.1f}:1)")
    return save(fig, out)


def training_curves(logs: dict[str, pd.DataFrame], out: Path):
    """Validation top-1 and training loss against epoch, one line per model."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, df in logs.items():
        a1.plot(df["epoch"], df["val_top1"], marker=".", label=name)
        a2.plot(df["epoch"], df["train_loss"], marker=".", label=name)
    a1.set(xlabel="epoch", ylabel="val top-1", ylim=(0, 1.02), title="Validation accuracy")
    a2.set(xlabel="epoch", ylabel="loss", title="Training loss")
    a1.legend(fontsize=7)
    return save(fig, out)


def confusion(matrix: np.ndarray, class_names: list[str], title: str, out: Path):
    """Row-normalised confusion matrix (rows: true class)."""
    m = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(0.42 * len(class_names) + 2, 0.42 * len(class_names) + 1.5))
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            if matrix[i, j]:
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if m[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return save(fig, out)


def per_class(acc: pd.DataFrame, out: Path):
    """Per-class test accuracy, one group of bars per class, one bar per model."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    acc.plot.bar(ax=ax, width=0.8)
    ax.set(ylabel="test accuracy", ylim=(0, 1.05), title="Per-class test accuracy")
    ax.legend(fontsize=7, ncol=4)
    return save(fig, out)


def pareto(summary: pd.DataFrame, out: Path, x: str = "cpu_latency_ms"):
    """Test top-1 against latency at batch 1 (``x``: the end-to-end column when the pet
    detector was measured), the Pareto front joined by a line."""
    from .cost import pareto_front
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    if x in summary and summary[x].notna().any():
        front = set(pareto_front(summary, x=x))
        for row in summary.dropna(subset=[x]).itertuples():
            on = row.model in front
            ax.scatter(getattr(row, x), row.top1, color="#c44e52" if on else "#4c72b0", zorder=3)
            ax.annotate(row.model, (getattr(row, x), row.top1), fontsize=7, xytext=(3, 3), textcoords="offset points")
        f = summary[summary["model"].isin(front)].sort_values(x)
        ax.plot(f[x], f["top1"], color="#c44e52", lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    what = "end to end, pet detector included" if x.startswith("e2e") else "network only"
    ax.set(xlabel=f"CPU latency per prediction, batch 1, {what} (ms, log scale)", ylabel="test top-1",
           title="Accuracy against latency")
    return save(fig, out)
