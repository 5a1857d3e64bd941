"""Claims over trials: a trial redraws every source of variation the study controls (the split,
and the training seed: initialisation, data order, augmentation), so a claim is about the
architecture, not one trained network (docs/statistics.md, "Trials").

    summary(per_trial)          a model's top-1 over its trials: mean, spread, and an interval
                                holding the clip and the trial variance (two-level bootstrap)
    compare(a, b)               A against B over the trials both ran: CMH stratified by trial and
                                clip, P(A > B) across trials with its percentile-bootstrap
                                interval over trials, the mean difference, the direction observed

Per-trial results are {trial: (clip ids, correct per clip)} with the clips in test order; all
models of one trial share its split, so a pair is matched clip for clip within each trial.
scipy's bootstrap resamples one level (or crossed levels of one table); the trials' test sets
differ, so the nested resampling (trials, then clips within each) is written out here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from statsmodels.stats.contingency_tables import StratifiedTable

from ..core import paths
from . import stats

MIN_TRIALS = 3        # fewer: "single networks", never the subject of a comparison claim
N_RESAMPLES = stats.N_RESAMPLES


def per_trial_top1(per_trial: dict) -> dict[int, float]:
    return {t: float(np.mean(c)) for t, (_, c) in sorted(per_trial.items())}


def nested_bootstrap(per_trial: dict, alpha: float = 0.05, n_resamples: int = N_RESAMPLES,
                     seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the mean over trials of each trial's top-1, resampling the trials
    and, within each drawn trial, its test clips: the interval holds both variances."""
    rng = np.random.default_rng(seed)
    trials = [np.asarray(c, float) for _, (_, c) in sorted(per_trial.items())]
    if not trials or not all(len(c) for c in trials):
        return float("nan"), float("nan")
    n = len(trials)
    picks = rng.integers(0, n, (n_resamples, n))   # the trials of each resample
    total = np.zeros(n_resamples)
    for j in range(n):   # slot j of every resample: its drawn trial, with clips drawn afresh
        clip_means = np.stack([c[rng.integers(0, len(c), (n_resamples, len(c)))].mean(1) for c in trials])
        total += clip_means[picks[:, j], np.arange(n_resamples)]
    means = total / n
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def summary(per_trial: dict, alpha: float = 0.05) -> dict:
    """{n_trials, top1_mean, top1_trial_std (ddof 1; NaN for one trial), top1_ci_low/high
    (nested_bootstrap), single_network (fewer than MIN_TRIALS trials)}."""
    acc = list(per_trial_top1(per_trial).values())
    lo, hi = nested_bootstrap(per_trial, alpha)
    return {"n_trials": len(acc), "top1_mean": float(np.mean(acc)) if acc else float("nan"),
            "top1_trial_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else float("nan"),
            "top1_ci_low": lo, "top1_ci_high": hi, "single_network": len(acc) < MIN_TRIALS}


def matched(a: dict, b: dict) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """[(trial, correct_a, correct_b)] over the trials both ran, each checked clip for clip."""
    out = []
    for t in sorted(set(a) & set(b)):
        (ids_a, ca), (ids_b, cb) = a[t], b[t]
        if not np.array_equal(np.asarray(ids_a), np.asarray(ids_b)):
            raise ValueError(f"trial {t}: the two models were tested on different clips; every model of a "
                             "trial must train on that trial's split (re-run the trial)")
        out.append((t, np.asarray(ca, bool), np.asarray(cb, bool)))
    return out


def cmh_trials(pairs: list) -> dict:
    """Cochran-Mantel-Haenszel test (statsmodels, continuity corrected) with one 2x2 stratum per
    (trial, clip): model x right/wrong. Each stratum holds one result per model, so the test
    pools the trials' discordant clips without letting one trial's clips stand for another's."""
    a = np.concatenate([ca for _, ca, _ in pairs]).astype(float)
    b = np.concatenate([cb for _, _, cb in pairs]).astype(float)
    tables = np.array([[a, 1 - a], [b, 1 - b]])               # (2, 2, trial-clips)
    informative = a != b                                      # concordant strata carry no information
    p = 1.0
    if informative.any():
        p = float(StratifiedTable(tables[:, :, informative]).test_null_odds(correction=True).pvalue)
    return {"a_only": int((a > b).sum()), "b_only": int((b > a).sum()), "p_value": min(p, 1.0),
            "test": f"Cochran-Mantel-Haenszel over (trial, clip) strata ({len(pairs)} trials)"}


def p_outperforms(diffs: np.ndarray) -> float:
    """P(A > B) across trials: the share of trials A's top-1 beats B's, a tie counting half."""
    d = np.asarray(diffs, float)
    return float(((d > 0) + 0.5 * (d == 0)).mean())


def compare(a: dict, b: dict, alpha: float = 0.05, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict | None:
    """A against B over the trials both ran (None when none): the CMH test over (trial, clip)
    strata, the mean over trials of the top-1 difference, P(A > B) with its percentile
    bootstrap interval over trials, the direction observed ("a", "b" or None), and
    comparable (both have MIN_TRIALS shared trials or more: only then may the abstract or the
    conclusion make the comparison)."""
    pairs = matched(a, b)
    if not pairs:
        return None
    diffs = np.array([ca.mean() - cb.mean() for _, ca, cb in pairs])
    boot = np.random.default_rng(seed).integers(0, len(diffs), (n_resamples, len(diffs)))
    p_boot = ((diffs[boot] > 0) + 0.5 * (diffs[boot] == 0)).mean(1)
    lo, hi = np.quantile(p_boot, [alpha / 2, 1 - alpha / 2])
    diff = float(diffs.mean())
    return {**cmh_trials(pairs), "n_trials": len(pairs), "n_clips": int(sum(len(ca) for _, ca, _ in pairs)),
            "diff": diff, "per_trial_diff": [float(x) for x in diffs],
            "p_a_beats_b": p_outperforms(diffs), "p_a_beats_b_ci_low": float(lo), "p_a_beats_b_ci_high": float(hi),
            "direction": "a" if diff > 0 else "b" if diff < 0 else None,
            "comparable": len(pairs) >= MIN_TRIALS}


# ---- the evaluation's trial tables ----

PAIR_KINDS = ("leader", "balance", "init", "order_only", "order_blind",   # evaluate.decide's paired claims
              "recommendation")   # and over trials, the recommended model against the pick (overtrials.py)
ON_ORDER_ONLY = ("order_only", "order_blind")


def n_trials(root: Path) -> int:
    """n when the target's prepared data holds n trial splits (prepare trials: n), else 0."""
    info = root / "data" / "prepare.json"
    import json
    return int(json.loads(info.read_text())["params"].get("trials", 0)) if info.is_file() else 0


def first_trial(groups: dict) -> dict:
    """The groups ({(model, seed): [run]}) of trial 1, whose split is the prepared one: what the
    per-split evaluation (selection, cost, the e2e detector's split) reads when a study has trials."""
    return {key: runs for key, runs in groups.items() if paths.run_trial(runs[0]) == 1}


def results(groups: dict, load) -> dict:
    """{model: {trial: (ids, correct, labels)}} from every trial's test scores (``load``: evaluate.load_scores)."""
    out = {}
    for (model, _seed), runs in groups.items():
        s = load(runs[0])
        out.setdefault(model, {})[paths.run_trial(runs[0])] = (s["ids"], s["scores"].argmax(1) == s["labels"],
                                                               s["labels"])
    return out


def restrict(per_trial: dict, keep_labels=None) -> dict:
    """{trial: (ids, correct)}, only the clips whose label is in ``keep_labels`` when given."""
    out = {}
    for t, (ids, c, labels) in per_trial.items():
        m = np.ones(len(ids), bool) if keep_labels is None else np.isin(labels, keep_labels)
        out[t] = (np.asarray(ids)[m], np.asarray(c)[m])
    return out


def table(res: dict, alpha: float = 0.05) -> pd.DataFrame:
    """trials.csv: one row per model, its top-1 over trials (summary) and each trial's."""
    rows = []
    for model, per_trial in res.items():
        r = restrict(per_trial)
        rows.append({"model": model, **summary(r, alpha),
                     "per_trial_top1": " ".join(f"{v:.4f}" for v in per_trial_top1(r).values())})
    return pd.DataFrame(rows)


def claims(res: dict, pair_claims: list[dict], order_only_idx: list[int], alpha: float = 0.05) -> list[dict]:
    """Every paired claim of the per-split family (evaluate.decide) tested again over the trials
    both models ran, on the same clips (the order-only ones for those kinds), Holm-corrected over
    this family: {kind, a, b, ...compare(), p_holm, significant, winner (in the direction observed)}."""
    out = []
    for c in pair_claims:
        if c["kind"] not in PAIR_KINDS or c["a"] not in res or c["b"] not in res:
            continue
        keep = order_only_idx if c["kind"] in ON_ORDER_ONLY else None
        cmp = compare(restrict(res[c["a"]], keep), restrict(res[c["b"]], keep), alpha)
        if cmp is not None and cmp["n_clips"]:
            out.append({"kind": c["kind"], "a": c["a"], "b": c["b"], **cmp})
    for c, p in zip(out, stats.holm([c["p_value"] for c in out], alpha)):
        c["p_holm"] = float(p)
        c["significant"] = bool(p < alpha)
        c["winner"] = (c["a"] if c["direction"] == "a" else c["b"]) if c["significant"] and c["direction"] else None
        c["per_trial_diff"] = " ".join(f"{d:.4f}" for d in c["per_trial_diff"])
    return out
