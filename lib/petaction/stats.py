"""Uncertainty of test-set comparisons: bootstrap intervals and McNemar's paired test."""
from __future__ import annotations

import numpy as np
from scipy import stats as st


def bootstrap_ci(correct: np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-clip scores (resampling test clips)."""
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, (n_boot, correct.size))].mean(1)
    return float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's test on paired per-clip correctness of two models on the same clips.

    b: clips A gets right and B wrong; c: the reverse. Exact two-sided binomial test on
    (b, c) (it is exact for any count, and the usual choice when b + c is small)."""
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b_.shape:
        raise ValueError("McNemar needs the two models' results on the same clips")
    b, c = int((a & ~b_).sum()), int((~a & b_).sum())
    p = 1.0 if b + c == 0 else float(st.binomtest(b, b + c, 0.5).pvalue)
    return {"a_only": b, "b_only": c, "p_value": p}
