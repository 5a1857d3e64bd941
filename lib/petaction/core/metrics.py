"""Classification metrics recomputed from saved per-clip scores (never copied from logs),
through scikit-learn's metric functions."""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm


def topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of clips whose true class is among the k highest scores (scikit-learn's
    top_k_accuracy_score); NaN when k is not below the class count (trivially 1 then), so a
    "top-5" column never holds a top-3 or a certainty."""
    n = scores.shape[1]
    if k >= n and k > 1:
        return float("nan")
    if k == 1:
        return float((scores.argmax(1) == labels).mean())
    return float(skm.top_k_accuracy_score(labels, scores, k=k, labels=np.arange(n)))


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, n: int) -> np.ndarray:
    return skm.confusion_matrix(labels, preds, labels=np.arange(n))


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for a class absent from the scored clips)."""
    support = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def mean_class_accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean recall over the classes present (scikit-learn's balanced_accuracy_score)."""
    return float(skm.balanced_accuracy_score(labels, preds))


def macro_f1(labels: np.ndarray, preds: np.ndarray) -> float:
    """Mean F1 over the classes present, true or predicted (scikit-learn's f1_score)."""
    return float(skm.f1_score(labels, preds, average="macro", zero_division=0))


def subset_accuracy(labels: np.ndarray, preds: np.ndarray, classes_idx: list[int]) -> float:
    """Top-1 over the clips whose true class is in classes_idx (NaN when there are none)."""
    mask = np.isin(labels, classes_idx)
    return float((preds[mask] == labels[mask]).mean()) if mask.any() else float("nan")


def all_metrics(scores: np.ndarray, labels: np.ndarray, order_only: list[int] = ()) -> dict:
    preds = scores.argmax(1)
    return {"top1": topk(scores, labels, 1), "top3": topk(scores, labels, 3), "top5": topk(scores, labels, 5),
            "mean_class_acc": mean_class_accuracy(labels, preds), "macro_f1": macro_f1(labels, preds),
            "top1_order_only": subset_accuracy(labels, preds, list(order_only)), "n_test": int(len(labels))}
