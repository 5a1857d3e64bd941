"""The abstract, the conclusion and the recommendation when the study ran trials (decisions.json's
over_trials, evaluation/overtrials.py): the best and the recommendation are the over-trials ones,
and every sentence comparing two models names confirmed models only (trials.MIN_TRIALS trials or
more) and prints P(A > B) across trials with its interval and the Holm-corrected p-value of the
target's over-trials family. report.py calls these when over_trials exists; nothing is decided here.
"""
from __future__ import annotations

import pandas as pd

from ..core.fmt import pct, pts
from ..evaluation import confirm
from ..evaluation.overtrials import claim
from ..models import pretrained
from .overtrials import sentence


def over(r: dict) -> dict | None:
    return r["decisions"].get("over_trials")


def kind_claims(o: dict, *kinds: str) -> list[dict]:
    return [c for c in o["claims"] if c["kind"] in kinds]


def top1_text(r: dict, model: str) -> str:
    """A model's mean test top-1 over its trials with the interval holding clips and trials (trials.csv)."""
    t = r["trials"].set_index("model") if r.get("trials") is not None else pd.DataFrame()
    if model not in t.index:
        return "n/a"
    x = t.loc[model]
    return (f"{pct(x['top1_mean'])} mean test top-1 over {int(x['n_trials'])} trials (95% interval "
            f"{pct(x['top1_ci_low'])} to {pct(x['top1_ci_high'])}, trials and clips)")


def screened(r: dict, o: dict) -> str:
    n = max(o["n_trials"].values())
    single = o["single_network"]
    return (f"Every model is screened on trial 1 and the {len(o['confirmed'])} the comparisons involve "
            f"({', '.join(o['confirmed'])}) are confirmed on {n} trials, each its own split and training seed"
            + (f"; {', '.join(single)} ran fewer than {o['min_trials']} trials "
               + ("(a single network) and no comparison names it" if len(single) == 1 else
                  "(single networks) and no comparison names them") if single else "") + ".")


def transfer_sentences(r: dict, o: dict) -> list[str]:
    """The init pairs over the trials (e.g. tsm@action against tsm on emotion), whatever their direction."""
    out = []
    for c in kind_claims(o, "init"):
        init = r["run_params"].get(c["b"], {}).get("init", pretrained.SCRATCH)
        head = ("Behaviour -> emotion transfer" if pretrained.parse(init).target == "action" else
                "Starting from other weights")
        out.append(f"{head} ({c['b']} against {c['a']}): " + sentence(c))
    return out


def abstract(r: dict, intro: str) -> str:
    """``intro``: report.abstract's first sentence (what was trained on which data)."""
    o = over(r)
    best = o["best"]
    text = [intro.strip(), screened(r, o),
            f"Selected by mean validation top-1 over its trials, {best} reaches {top1_text(r, best)}."]
    text += [sentence(c) for c in kind_claims(o, "leader")]
    text += transfer_sentences(r, o)
    return " ".join(text)


def conclusion(r: dict, trial1: list[str]) -> str:
    """``trial1``: the baseline and failure sentences of trial 1's single networks (report.py)."""
    o = over(r)
    best = o["best"]
    out = [f"{best} has the highest mean validation top-1 over its trials ({pct(o['val_top1_mean'][best])}) "
           f"among the {len(o['confirmed'])} confirmed models and reaches {top1_text(r, best)}."]
    out += [sentence(c) for c in kind_claims(o, "leader", "balance")]
    oo = o["order_only"]
    if oo["leader"]:
        out.append(f"The leader on the validation order-only clips over the trials is {oo['leader']}.")
        out += [sentence(c) for c in kind_claims(o, "order_only", "order_blind")]
    out += transfer_sentences(r, o)
    if trial1:
        out.append("On trial 1, which every model ran (one network each):")
    return " ".join(out + trial1)


def recommendation(r: dict) -> str:
    """The recommendation over trials, and the faster models trial 1's screening left out."""
    out = over_trials_recommendation(r)
    gone = confirm.screened_out(r["decisions"])
    if gone:
        out += (f" Screened out on trial 1 (faster than its pick, not non-inferior to it on validation; one "
                f"trained network each, no claim made): {', '.join(gone)}.")
    return out


def over_trials_recommendation(r: dict) -> str:
    """The recommendation over trials (overtrials.decide: recommend's rule on the confirmed models)."""
    o = over(r)
    rec = o["recommendation"]
    by = r["summary"].set_index("model")
    reason, margin = rec["reason"], f"{100 * rec['margin']:g} points"
    if reason == "none_keep_up":
        return "Recommendation (over trials): none of the confirmed models keeps up on this machine."
    if reason == "no_val_scores":
        return "Recommendation (over trials): none; the confirmed runs saved no per-clip validation scores."
    if reason == "none_learned":
        return ("Recommendation (over trials): none. No confirmed model that keeps up beats the majority "
                "baseline on validation.")
    if reason == "fails_test_baseline":
        return (f"Recommendation (over trials): none. {rec['vetoed']} was chosen on validation, but on test it "
                "does not beat always predicting the commonest class.")
    if reason == "no_cost":
        return "No cost measurements."
    m, pick, lat, head = rec["model"], rec["pick"], rec["latency_column"], rec["headroom_column"]
    why = f"It keeps up with {by.loc[m, head]:.1f}x headroom ({by.loc[m, lat]:.0f} ms per prediction)"
    if reason == "faster_non_inferior":
        cand = next(x for x in rec["candidates"] if x["model"] == m)
        c = claim(o, None, m, pick)   # its own kind, or the leader's when the pair is the same
        return (f"Recommendation (over trials): {m}. {why}, {by.loc[pick, lat] / by.loc[m, lat]:.1f} times faster "
                f"than {pick} (the best by mean validation top-1 among the confirmed models that keep up), and is "
                f"non-inferior to it within {margin} on validation pooled over the trials: top-1 difference "
                f"{pts(cand['val_diff'])} points, 95% bootstrap interval {pts(cand['val_diff_ci_low'])} to "
                f"{pts(cand['val_diff_ci_high'])}. On test over the trials: " + (sentence(c) if c else "not tested."))
    out = [f"Recommendation (over trials): {m}, the best by mean validation top-1 over its trials among the confirmed "
           f"models that keep up and beat the majority baseline ({top1_text(r, m)}). {why}."]
    worse = [x for x in rec["candidates"] if not x["non_inferior"]]
    if worse:
        out.append(f"No faster confirmed model is non-inferior within {margin} on validation pooled over the "
                   "trials: " + "; ".join(f"{x['model']} {pts(x['val_diff'])} points (95% interval "
                                          f"{pts(x['val_diff_ci_low'])} to {pts(x['val_diff_ci_high'])})" for x in worse) + ".")
    return " ".join(out)
