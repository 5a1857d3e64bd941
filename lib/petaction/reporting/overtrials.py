"""The report's section over trials (study `trials: n`): each model's top-1 over its trials and
the comparisons the report states, tested over the trials of the confirmed models
(evaluation/overtrials.py wrote trials.csv and decisions.json's trial_claims); nothing when the
study ran no trials. A model of fewer than
three trials is named a single network, and no comparison sentence has it as its subject.
"""
from __future__ import annotations

import pandas as pd

from ..core.fmt import p_text, pct, pts

KIND_WORDS = {"leader": "the validation leader against the runner-up", "balance": "class balancing",
              "init": "where the weights started", "order_only": "on the order-only clips",
              "order_blind": "against the order-blind model on the order-only clips"}


def table(t: pd.DataFrame) -> str:
    rows = [{"Model": x.model, "Trials": int(x.n_trials), "Top-1 (mean over trials)": pct(x.top1_mean),
             "Spread (s.d.)": "n/a" if pd.isna(x.top1_trial_std) else f"{100 * x.top1_trial_std:.1f} pts",
             "95% interval (trials and clips)": f"{pct(x.top1_ci_low)} to {pct(x.top1_ci_high)}",
             "": "single network" if x.single_network else ""} for x in t.itertuples()]
    return pd.DataFrame(rows).to_markdown(index=False)


def sentence(c: dict) -> str:
    """One claim over trials: the direction observed when Holm's correction holds it, P(A > B)
    with its interval, the corrected p-value; a pair below three trials is only described."""
    prob = (f"P({c['a']} > {c['b']}) across trials {c['p_a_beats_b']:.2f}, 95% interval "
            f"{c['p_a_beats_b_ci_low']:.2f} to {c['p_a_beats_b_ci_high']:.2f}")
    stat = (f"{c['test']}, Holm-corrected {p_text(c['p_holm'])}; mean difference {pts(c['diff'])} points over "
            f"{c['n_trials']} trials ({KIND_WORDS.get(c['kind'], c['kind'])})")
    if not c["comparable"]:
        return (f"{c['a']} and {c['b']} share {c['n_trials']} trial(s), fewer than three: single networks, no "
                f"claim ({prob}; {stat}).")
    if c["winner"]:
        loser = c["b"] if c["winner"] == c["a"] else c["a"]
        return f"{c['winner']} beats {loser} over the trials ({prob}; {stat})."
    return f"Over the trials, the difference between {c['a']} and {c['b']} is not significant ({prob}; {stat})."


def section(r: dict) -> list[tuple[str, str]]:
    t, claims = r.get("trials"), r["decisions"].get("trial_claims")
    if t is None or claims is None:
        return []
    where = f"results/{r['study']}/{'' if r['target'] == 'action' else r['target'] + '/'}evaluation"
    return [("md", f"## {r['target'].capitalize()}: over trials"),
            ("md", f"Each trial redraws the split and the training seed together; every model of a trial shares "
                   f"its split. Every model ran trial 1; the models the comparisons involve, chosen on its "
                   f"validation split, ran every trial (`{where}/trials.csv`; the comparisons over the trials of "
                   f"those models in `{where}/trial_claims.csv`, Holm's correction over these {len(claims)} "
                   "paired tests):"),
            ("md", table(t)),
            ("md", " ".join(sentence(c) for c in claims) or "No paired claim to test over trials.")]
