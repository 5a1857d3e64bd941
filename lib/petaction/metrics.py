"""Classification metrics recomputed from saved per-clip scores (never copied from logs)."""
from __future__ import annotations

import numpy as np


def topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of clips whose true class is among the k highest scores."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(1).mean())


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (labels, preds), 1)
    return m


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for a class absent from the test set)."""
    support = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def mean_class_accuracy(cm: np.ndarray) -> float:
    return float(np.nanmean(per_class_accuracy(cm)))


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes present in the test set (true or predicted)."""
    tp = np.diag(cm).astype(float)
    fp, fn = cm.sum(0) - tp, cm.sum(1) - tp
    present = (cm.sum(0) + cm.sum(1)) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return float(f1[present].mean())


def subset_accuracy(labels: np.ndarray, preds: np.ndarray, classes_idx: list[int]) -> float:
    """Top-1 over the clips whose true class is in classes_idx (NaN when there are none)."""
    mask = np.isin(labels, classes_idx)
    return float((preds[mask] == labels[mask]).mean()) if mask.any() else float("nan")


def all_metrics(scores: np.ndarray, labels: np.ndarray, order_only: list[int] = ()) -> dict:
    preds = scores.argmax(1)
    cm = confusion_matrix(labels, preds, scores.shape[1])
    return {"top1": topk(scores, labels, 1), "top3": topk(scores, labels, 3), "top5": topk(scores, labels, 5),
            "mean_class_acc": mean_class_accuracy(cm), "macro_f1": macro_f1(cm),
            "top1_order_only": subset_accuracy(labels, preds, list(order_only)), "n_test": int(len(labels))}
