"""The statistics of a comparison: thin wrappers over statsmodels and scipy.

Every test and interval the evaluation reports is computed here (docs/statistics.md lists
them). Per-clip results are boolean "correct" arrays; with several seeds, a (seeds, clips)
matrix whose rows are the seeds and whose columns are the same clips in the same order.
"""
from __future__ import annotations

import numpy as np
from scipy import stats as st
from statsmodels.stats.contingency_tables import StratifiedTable
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

N_RESAMPLES = 2000


def wilson_ci(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion (statsmodels proportion_confint)."""
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(lo), float(hi)


def bootstrap_ci(values, alpha: float = 0.05, n_resamples: int = N_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (scipy.stats.bootstrap) of the mean of per-clip values.

    ``values``: one row of per-clip values, or a (seeds, clips) matrix: then clips and seeds are
    resampled independently (a crossed bootstrap), so the interval holds both the test set's
    sampling noise and the seed-to-seed spread of training. A paired difference is the mean of
    ``correct_a - correct_b``: pass that matrix."""
    m = np.atleast_2d(np.asarray(values, dtype=float))
    if m.size == 0:
        return float("nan"), float("nan")
    if np.ptp(m) == 0:        # every value equal: no spread to resample (scipy would warn, NaN)
        return float(m.flat[0]), float(m.flat[0])
    cols = np.arange(m.shape[1])
    if m.shape[0] == 1:
        data, stat = (cols,), (lambda c, axis=-1: m[0][c.astype(int)].mean(axis=-1))
    else:
        rows = np.arange(m.shape[0])
        data = (rows, cols)

        def stat(r, c, axis=-1):   # r: (..., seeds), c: (..., clips) resampled indices
            r, c = r.astype(int), c.astype(int)
            return m[r[..., :, None], c[..., None, :]].mean(axis=(-2, -1))
    res = st.bootstrap(data, stat, paired=False, vectorized=True, n_resamples=n_resamples,
                       confidence_level=1 - alpha, method="percentile", random_state=seed)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def discordant(correct_a, correct_b) -> tuple[int, int]:
    """(clips only A gets right, clips only B gets right), summed over seeds."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape:
        raise ValueError("a paired test needs the two models' results on the same clips and seeds")
    return int((a & ~b).sum()), int((~a & b).sum())


def mcnemar(correct_a, correct_b) -> dict:
    """Exact McNemar test (statsmodels, binomial on the discordant pairs) of two models on the
    same clips, one seed each. Two-sided; the direction is the sign of the difference."""
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    a_only, b_only = discordant(a, b)
    table = [[int((a & b).sum()), a_only], [b_only, int((~a & ~b).sum())]]
    return {"a_only": a_only, "b_only": b_only, "p_value": float(sm_mcnemar(table, exact=True).pvalue),
            "test": "exact McNemar"}


def cmh(correct_a, correct_b) -> dict:
    """Cochran-Mantel-Haenszel test (statsmodels StratifiedTable.test_null_odds, continuity
    corrected) of two models over several seeds: one 2x2 stratum per clip (model x right/wrong,
    each row counting that model's seeds), so a clip's seeds stay together and a clip hard for
    one model in every seed counts as one stratum, not as independent pairs. With one seed a
    stratum is one clip pair and the test is McNemar's (use ``mcnemar``, exact, then)."""
    a, b = np.atleast_2d(np.asarray(correct_a, bool)), np.atleast_2d(np.asarray(correct_b, bool))
    a_only, b_only = discordant(a, b)
    n = a.shape[0]
    ra, rb = a.sum(0), b.sum(0)
    tables = np.array([[ra, n - ra], [rb, n - rb]], dtype=float)     # (2, 2, clips)
    informative = (ra + rb > 0) & (ra + rb < 2 * n)                  # others have no variance
    p = 1.0
    if informative.any() and (ra != rb)[informative].any():
        p = float(StratifiedTable(tables[:, :, informative]).test_null_odds(correction=True).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": min(p, 1.0),
            "test": f"Cochran-Mantel-Haenszel over clips ({n} seeds)"}


def paired_test(correct_a, correct_b) -> dict:
    """The paired test of two models on the same clips and seeds: exact McNemar for one seed,
    CMH (clips as strata) for several; with the accuracy difference A - B and its crossed
    bootstrap interval, and the direction (``"a"``, ``"b"`` or None when equal)."""
    a, b = np.atleast_2d(np.asarray(correct_a, bool)), np.atleast_2d(np.asarray(correct_b, bool))
    res = mcnemar(a[0], b[0]) if a.shape[0] == 1 else cmh(a, b)
    diff = float(a.mean() - b.mean())
    lo, hi = bootstrap_ci(a.astype(float) - b.astype(float))
    return {**res, "diff": diff, "diff_ci_low": lo, "diff_ci_high": hi, "n_clips": int(a.shape[1]),
            "n_seeds": int(a.shape[0]), "direction": "a" if diff > 0 else "b" if diff < 0 else None,
            "per_seed_diff": [float(x) for x in (a.mean(1) - b.mean(1))]}


def beats_rate(successes: int, n: int, rate: float) -> float:
    """One-sided exact binomial test (scipy.stats.binomtest) that a classifier's accuracy on n
    clips is above ``rate`` (the majority baseline): its p-value."""
    if n == 0:
        return 1.0
    return float(st.binomtest(int(successes), int(n), min(max(rate, 0.0), 1.0), alternative="greater").pvalue)


def holm(pvalues, alpha: float = 0.05) -> np.ndarray:
    """Holm's step-down correction of a family of p-values (statsmodels multipletests)."""
    p = np.asarray(pvalues, dtype=float)
    if p.size == 0:
        return p
    return multipletests(p, alpha=alpha, method="holm")[1]
