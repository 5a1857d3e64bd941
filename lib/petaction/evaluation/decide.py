"""What the evaluation decides from the scored clips: whether each model learned the task (against
the majority class), the paired claims between models with Holm's correction over one family,
the order-only leader, the balance pairs, and the real-time recommendation. evaluate.py scores
the runs and calls decide() and recommend(); the report renders what they return.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core import paths
from ..core.errors import ParamError
from . import stats, transfer

ALPHA = 0.05
MARGIN = 0.02   # non-inferiority margin of a faster model's top-1 (2 points), on validation


class Scored:
    """Per-clip correctness of every (model, seed) on one split, on the same clips in the same
    order for every model (checked: a paired test needs it)."""

    def __init__(self):
        self.correct, self.ids, self.labels = {}, None, None

    def add(self, model: str, seed: int, s: dict) -> None:
        if self.ids is None:
            self.ids, self.labels = s["ids"], s["labels"]
        elif not np.array_equal(self.ids, s["ids"]) or not np.array_equal(self.labels, s["labels"]):
            raise ValueError(f"{model} seed {seed} was scored on other clips than the first run: "
                             "every model must be trained on the same prepared split; re-run it")
        self.correct.setdefault(model, {})[seed] = s["scores"].argmax(1) == s["labels"]

    def __contains__(self, model: str) -> bool:
        return model in self.correct

    def matrix(self, model: str, seeds=None, mask=None) -> np.ndarray:
        """(seeds, clips) booleans; ``mask`` selects clips."""
        by_seed = self.correct[model]
        m = np.stack([by_seed[s] for s in (sorted(by_seed) if seeds is None else seeds)])
        return m if mask is None else m[:, mask]

    def pair(self, a: str, b: str, mask=None) -> tuple[np.ndarray, np.ndarray] | None:
        """The two models' matrices over the seeds both ran (None when they share none)."""
        seeds = sorted(set(self.correct[a]) & set(self.correct[b]))
        return (self.matrix(a, seeds, mask), self.matrix(b, seeds, mask)) if seeds else None


def majority(labels: np.ndarray, class_names: list[str]) -> dict:
    """The commonest class among the scored clips and the accuracy of always predicting it
    (with k folds, the pooled clips the models were scored on)."""
    counts = np.bincount(labels, minlength=len(class_names)) if len(labels) else np.zeros(len(class_names), int)
    i = int(counts.argmax())
    return {"class": class_names[i], "rate": float(counts[i] / max(counts.sum(), 1)), "n": int(counts.sum()),
            "counts": {c: int(n) for c, n in zip(class_names, counts)}}


def check_order_blind(name: str) -> None:
    """The order-blind reference must name a model file: a misspelt one would silently drop the
    family (a real model the study did not train is skipped, as the default tsn may be)."""
    if name and not (paths.PARAMS / "models" / f"{name}.yaml").is_file():
        raise ParamError(f"order_blind {name!r} is not a model of params/models/: name the study's "
                         "order-blind model (tsn by default) or pass '' for none")


def blind_ceiling(counts: dict, order_only: list[str]) -> float:
    """Top-1 on the order-only clips of a model blind to frame order: at best it tells the
    group from the other classes and then always names the group's commonest class."""
    n = [counts[c] for c in order_only]
    return float(max(n) / sum(n)) if sum(n) else float("nan")


def baseline_claim(model: str, scored: Scored, base: dict) -> dict:
    """Does the model beat always predicting the commonest class? One-sided exact binomial
    test on its correct count (the mean over seeds, so seeds do not multiply the clips)."""
    m = scored.matrix(model)
    k = int(round(m.sum(1).mean()))
    return {"kind": "baseline", "a": model, "b": f"majority ({base['class']})", "test": "exact one-sided binomial",
            "n_clips": int(m.shape[1]), "n_seeds": int(m.shape[0]), "top1_a": float(m.mean()), "top1_b": base["rate"],
            "p_value": stats.beats_rate(k, m.shape[1], base["rate"]), "direction": "a" if m.mean() > base["rate"] else None}


def pair_claim(kind: str, a: str, b: str, scored: Scored, mask=None) -> dict | None:
    """The paired comparison of a and b on the same clips (stats.paired_test), as a claim."""
    pair = scored.pair(a, b, mask)
    if pair is None or pair[0].shape[1] == 0:
        return None
    ma, mb = pair
    return {"kind": kind, "a": a, "b": b, "top1_a": float(ma.mean()), "top1_b": float(mb.mean()),
            **stats.paired_test(ma, mb)}


def correct_family(claims: list[dict], alpha: float) -> list[dict]:
    """Holm's correction over the whole family; a claim holds only when its corrected test
    rejects, in the direction of the observed difference."""
    for c, p in zip(claims, stats.holm([c["p_value"] for c in claims], alpha)):
        c["p_holm"] = float(p)
        c["significant"] = bool(p < alpha)
        c["winner"] = (c["a"] if c["direction"] == "a" else c["b"] if c["direction"] == "b" else None) \
            if c["significant"] else None
    return claims


def balance_pairs(run_params: dict) -> list[tuple[str, str]]:
    """(plain, balanced) model pairs whose settings differ only in class_balance."""
    pairs = []
    for a, pa in run_params.items():
        for b, pb in run_params.items():
            if a != b and pa.get("class_balance") == "none" and pb.get("class_balance", "none") != "none" and \
                    {k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k)} <= {"model", "class_balance"}:
                pairs.append((a, b))
    return pairs


def decide(summary: pd.DataFrame, test: Scored, val: Scored, class_names: list[str], order_only: list[str],
           run_params: dict, margin: float = MARGIN, alpha: float = ALPHA, order_blind: str = "") -> dict:
    """Everything the report claims, decided here: the best model and runner-up and the
    order-only leader (on validation), the family of test claims with Holm-corrected p-values,
    and the recommendation. ``summary`` is in selection order (summarise). ``order_blind``: a
    model blind to frame order that each other model is compared with on the order-only clips
    (the pair with the order-only leader is already in that family, so it is not tested twice)."""
    ranking = list(summary["model"])
    on_val = summary["val_top1"].notna().all()
    base = {"test": majority(test.labels, class_names),
            "val": majority(val.labels, class_names) if val.labels is not None else None}
    oo_idx = [class_names.index(c) for c in order_only]
    oo_mask = np.isin(test.labels, oo_idx)
    claims = [baseline_claim(m, test, base["test"]) for m in ranking]
    if len(ranking) > 1:
        claims.append(pair_claim("leader", ranking[0], ranking[1], test))
    for a, b in balance_pairs({m: p for m, p in run_params.items() if m in ranking}):
        claims.append(pair_claim("balance", a, b, test))
    for a, b in transfer.pairs({m: p for m, p in run_params.items() if m in ranking}):
        claims.append(pair_claim("init", a, b, test))   # transfer.csv reads its corrected p-value
    oo_val = summary.dropna(subset=["val_top1_order_only"])
    oo_leader = None
    if order_only and oo_mask.any() and len(oo_val) and len(ranking) > 1:
        oo_leader = oo_val.sort_values("val_top1_order_only", ascending=False, kind="stable").iloc[0]["model"]
        claims += [pair_claim("order_only", oo_leader, m, test, oo_mask) for m in ranking if m != oo_leader]
    # the reference, when it makes a family of its own: a blind leader is already compared with every model
    blind = order_blind if order_only and oo_mask.any() and order_blind in ranking and order_blind != oo_leader \
        else None
    if blind:
        claims += [pair_claim("order_blind", m, blind, test, oo_mask) for m in ranking if m not in (blind, oo_leader)]
    claims = correct_family([c for c in claims if c is not None], alpha)
    learned_test = {c["a"]: c["winner"] == c["a"] for c in claims if c["kind"] == "baseline"}
    val_claims = []
    if base["val"] is not None:
        val_claims = correct_family([baseline_claim(m, val, base["val"]) for m in ranking if m in val], alpha)
    learned_val = {c["a"]: c["winner"] == c["a"] for c in val_claims}
    counts = base["test"]["counts"]
    return {
        "selection": "validation" if on_val else "test",
        "alpha": alpha, "margin": margin, "ranking": ranking,
        "best": ranking[0], "runner_up": ranking[1] if len(ranking) > 1 else None,
        "val_source": dict(zip(summary["model"], summary.get("val_source", pd.Series(["none"] * len(summary))))),
        "baseline": base,
        "order_only": {"classes": order_only, "leader": oo_leader, "n_test": int(oo_mask.sum()),
                       "counts": {c: counts[c] for c in order_only}, "blind_ceiling": blind_ceiling(counts, order_only),
                       "blind_model": blind},
        "family": family_text(claims), "claims": claims, "val_baseline": val_claims,
        "recommendation": recommend(summary, val, learned_val, learned_test, margin),
    }


def family_text(claims: list[dict]) -> str:
    kinds = {"baseline": "each model against the majority baseline",
             "leader": "the validation leader against the runner-up",
             "balance": "each class-balanced model against its plain twin",
             "init": "each model against its twin that started from other weights (init)",
             "order_only": "the order-only leader (chosen on validation) against each other model on the order-only test clips",
             "order_blind": "each other model against the order-blind model on the order-only test clips"}
    n = {k: sum(c["kind"] == k for c in claims) for k in kinds}
    return "; ".join(f"{kinds[k]} ({n[k]})" for k in kinds if n[k])


def latency_columns(summary: pd.DataFrame) -> dict:
    """The end-to-end columns when the pet detector was measured, else the network's own."""
    e2e = "e2e_latency_ms" in summary and summary["e2e_latency_ms"].notna().any()
    return ({"latency_column": "e2e_latency_ms", "keeps_up_column": "realtime_e2e", "headroom_column": "headroom_e2e"}
            if e2e else {"latency_column": "cpu_latency_ms", "keeps_up_column": "realtime", "headroom_column": "headroom"})


def keeps_up(summary: pd.DataFrame, column: str) -> pd.Series:
    """True only where the verdict is True: NaN (not measured) never reads as keeping up."""
    if column not in summary:
        return pd.Series(False, index=summary.index)
    return summary[column].astype("boolean").fillna(False).astype(bool)


def recommend(summary: pd.DataFrame, val: Scored, learned_val: dict, learned_test: dict,
              margin: float = MARGIN) -> dict:
    """The model to deploy, chosen on validation: among the models that keep up (end to end
    when the detector was measured) and beat the majority baseline on validation, the best by
    validation top-1; a faster one instead (the fastest such) when it is non-inferior: the
    bootstrap interval of its validation top-1 minus the pick's lies above -margin. A pick
    that does not beat the majority baseline on test is not recommended."""
    cols = latency_columns(summary)
    lat, ok = cols["latency_column"], keeps_up(summary, cols["keeps_up_column"])
    rec = {**cols, "margin": margin, "model": None, "pick": None, "instead": None, "candidates": [],
           "keeps_up": list(summary.loc[ok, "model"]),
           "unknown": list(summary.loc[summary[cols["keeps_up_column"]].isna(), "model"])
           if cols["keeps_up_column"] in summary else list(summary["model"]),
           "not_learned_val": [m for m in summary["model"] if not learned_val.get(m, False)]}
    if lat not in summary or summary[lat].isna().all():
        return {**rec, "reason": "no_cost"}
    eligible = summary[ok & summary["model"].map(lambda m: learned_val.get(m, False))]
    if not ok.any():
        return {**rec, "reason": "none_keep_up"}
    if not learned_val:
        return {**rec, "reason": "no_val_scores"}
    if eligible.empty:
        return {**rec, "reason": "none_learned"}
    pick = eligible.iloc[0]   # summary is in validation order
    rec["pick"] = pick["model"]
    faster = eligible[eligible[lat] < pick[lat]].sort_values(lat, kind="stable")
    for row in faster.itertuples():
        pair = val.pair(row.model, pick["model"])
        if pair is None:
            continue
        lo, hi = stats.bootstrap_ci(pair[0].astype(float) - pair[1].astype(float))
        rec["candidates"].append({"model": row.model, "latency_ms": float(getattr(row, lat)),
                                  "val_diff": float(pair[0].mean() - pair[1].mean()), "val_diff_ci_low": lo,
                                  "val_diff_ci_high": hi, "non_inferior": bool(lo > -margin)})
    good = [c["model"] for c in rec["candidates"] if c["non_inferior"]]
    rec["instead"] = good[0] if good else None
    chosen = rec["instead"] or rec["pick"]
    if not learned_test.get(chosen, False):
        return {**rec, "reason": "fails_test_baseline", "vetoed": chosen}
    return {**rec, "model": chosen, "reason": "faster_non_inferior" if rec["instead"] else "pick"}
