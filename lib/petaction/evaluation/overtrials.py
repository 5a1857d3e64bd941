"""Decisions over trials (decisions.json's over_trials): what the report concludes when the study
ran trials, about the confirmed models only (trials.MIN_TRIALS trials or more).

    best, runner_up     by the mean over trials of each trial's validation top-1 (val_scores.npz)
    order_only          the leader by the mean validation top-1 on the order-only clips, and the
                        order-blind reference when it is confirmed
    recommendation      evaluate.recommend's rule on the confirmed models, their validation top-1
                        the mean over trials; non-inferiority on the validation differences pooled
                        over the trials both ran (each trial's clips paired within it)
    claims              those comparisons tested over the trials on test (trials.claims: CMH over
                        (trial, clip) strata, P(A > B) across trials): one Holm family per target,
                        the rows of trial_claims.csv

A model of fewer trials (screened on trial 1 only) stays in trials.csv as a single network and is
never the subject of a claim here. Selection reads validation only; the test split is used for
the claims and for recommend's test-baseline veto (trial 1's, as in evaluate.decide).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import atomic
from . import trials

ALL_CLIPS = ("leader", "balance", "init", "recommendation")   # kinds tested on every clip: one test a pair


class PooledVal:
    """The validation correctness of each model per trial, paired within each trial; pair() pools
    the trials both models ran (what evaluate.recommend reads as its validation pair)."""

    def __init__(self, val: dict):
        self.val = val

    def __contains__(self, model: str) -> bool:
        return model in self.val

    def pair(self, a: str, b: str):
        if a not in self.val or b not in self.val:
            return None
        m = trials.matched(trials.restrict(self.val[a]), trials.restrict(self.val[b]))
        if not m:
            return None
        return np.concatenate([ca for _, ca, _ in m]), np.concatenate([cb for _, _, cb in m])


def val_results(groups: dict, load) -> dict:
    """trials.results over the runs' validation scores (runs without val_scores.npz are left out)."""
    have = {k: runs for k, runs in groups.items() if atomic.readable(runs[0] / "val_scores.npz")}
    return trials.results(have, lambda run: load(run, "val"))


def mean_top1(per_trial: dict | None, keep_labels=None) -> float:
    if not per_trial:
        return float("nan")
    acc = [c.mean() for _, c in trials.restrict(per_trial, keep_labels).values() if len(c)]
    return float(np.mean(acc)) if acc else float("nan")


def ranked(values: dict) -> list[str]:
    """Models by value, highest first (NaN last, then by name)."""
    return sorted(values, key=lambda m: (np.isnan(values[m]), -np.nan_to_num(values[m]), m))


def decide(res: dict, val: dict, summary: pd.DataFrame, first: dict, oo_idx: list[int], order_blind: str,
           margin: float, alpha: float, recommend) -> dict | None:
    """decisions.json's over_trials (module docstring); None when no model has MIN_TRIALS trials.
    ``res``/``val``: {model: {trial: (ids, correct, labels)}} on test / validation (trials.results);
    ``summary``/``first``: trial 1's summary and decisions (cost, the learned verdicts); ``recommend``:
    evaluate.recommend (the same rule; evaluate imports this module)."""
    confirmed = [m for m in res if len(res[m]) >= trials.MIN_TRIALS and len(val.get(m, {})) == len(res[m])]
    if not confirmed:
        return None
    val_mean = {m: mean_top1(val[m]) for m in confirmed}
    ranking = ranked(val_mean)
    best, runner_up = ranking[0], ranking[1] if len(ranking) > 1 else None
    oo_mean = {m: mean_top1(val[m], oo_idx) for m in confirmed} if oo_idx else {}
    oo_leader = ranked(oo_mean)[0] if len(oo_mean) > 1 and not all(np.isnan(list(oo_mean.values()))) else None
    blind = order_blind if oo_leader and order_blind in confirmed and order_blind != oo_leader else None
    # the recommendation: recommend's rule on the confirmed models, ordered by their mean validation top-1
    sub = summary[summary["model"].isin(confirmed)].copy()
    sub["val_top1"] = sub["model"].map(val_mean)
    sub = sub.set_index("model").loc[[m for m in ranking if m in set(sub["model"])]].reset_index()
    learned_val = {c["a"]: c["winner"] == c["a"] for c in first.get("val_baseline", [])}
    learned_test = {c["a"]: c["winner"] == c["a"] for c in first["claims"] if c["kind"] == "baseline"}
    rec = recommend(sub, PooledVal(val), learned_val, learned_test, margin)
    rec["val_diff_pooled_over"] = "trials"
    pairs = [("leader", best, runner_up)] if runner_up else []
    pairs += [(c["kind"], c["a"], c["b"]) for c in first["claims"] if c["kind"] in ("balance", "init")
              and c["a"] in confirmed and c["b"] in confirmed]
    if rec.get("instead") and rec.get("pick"):
        pairs.append(("recommendation", rec["instead"], rec["pick"]))
    if oo_leader:
        pairs += [("order_only", oo_leader, m) for m in ranking if m != oo_leader]
    if blind:
        pairs += [("order_blind", m, blind) for m in ranking if m not in (blind, oo_leader)]
    seen, family = set(), []
    for kind, a, b in pairs:   # a pair on the same clips is tested once (its first kind)
        key = ("all" if kind in ALL_CLIPS else "order_only", frozenset((a, b)))
        if key not in seen:
            seen.add(key)
            family.append({"kind": kind, "a": a, "b": b})
    claims = trials.claims(res, family, oo_idx, alpha)
    return {"min_trials": trials.MIN_TRIALS, "confirmed": confirmed,
            "single_network": sorted(m for m in res if m not in confirmed),
            "n_trials": {m: len(res[m]) for m in res},
            "ranking": ranking, "best": best, "runner_up": runner_up, "val_top1_mean": val_mean,
            "order_only": {"leader": oo_leader, "blind_model": blind, "val_top1_mean": oo_mean},
            "recommendation": rec, "claims": claims, "family_size": len(claims)}


def claim(over: dict, kind: str | None, a: str, b: str) -> dict | None:
    """The over-trials claim between a and b (either order) of that kind, or when none is given, of a
    kind tested on every clip; None when the family has none."""
    for c in over.get("claims", []):
        if (c["kind"] == kind if kind else c["kind"] in ALL_CLIPS) and {c["a"], c["b"]} == {a, b}:
            return c
    return None
