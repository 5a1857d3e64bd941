"""The report's paragraph on which checkpoint each run keeps: the rule in force (train parameter
``checkpoint``), how the rule was chosen (each rule's held-out validation accuracy,
evaluation.checkpoint_rule) and the validation-minus-test optimism the rule in force leaves
(evaluation/checkpoint_rule.csv). It states what the evaluation decided; it decides nothing.
"""
from __future__ import annotations

import pandas as pd

from ..core.fmt import pct, pts

WHAT = {"best": "the epoch of best validation top-1", "last": "the final weights of the schedule"}


def interval(d: dict) -> str:
    if d.get("ci_low") is None:
        return "one run, no interval over runs"
    return f"95% bootstrap interval over {d['n_runs']} runs {pts(d['ci_low'])} to {pts(d['ci_high'])}"


def optimism_text(table: pd.DataFrame, rule: str, where: str, whose: str = "The rule in force") -> str:
    """The validation-minus-test optimism of ``rule``: over all runs, then per model."""
    col = f"val_minus_test_{rule}"
    if table is None or col not in table or table[col].isna().all():
        return f"The validation-minus-test optimism of the {rule} checkpoint was not measured."
    every = table.loc[table["model"] == "all", col]
    models = table[(table["model"] != "all") & table[col].notna()]
    per_model = ", ".join(f"{m.model} {pts(getattr(m, col))}" for m in models.itertuples())
    return (f"{whose} (`{rule}`) leaves a validation-minus-test optimism (validation top-1 minus test top-1 of "
            f"the kept checkpoint) of {pts(every.iloc[0])} points over all runs ({per_model}; "
            f"`{where}/checkpoint_rule.csv`).")


def section(r: dict) -> list[tuple[str, str]]:
    d = r["decisions"].get("checkpoint_rule")
    if d is None:   # an evaluation from before the rule was measured
        return []
    where = f"results/{r['study']}/{'' if r['target'] == 'action' else r['target'] + '/'}evaluation"
    f = r["eval"] / "checkpoint_rule.csv"
    table = pd.read_csv(f) if f.is_file() else None
    force = d.get("in_force")
    head = (f"Each run reports the checkpoint of the rule `checkpoint: {force}`, {WHAT[force]}."
            if force in WHAT else "The runs do not share one checkpoint rule (see each run's `params.json`).")
    left = optimism_text(table, force, where) if force in WHAT else ""
    if d.get("chosen") is None:
        return [("md", "### Which checkpoint a run keeps"),
                ("md", f"{head} The rules were not compared on validation: {d['why']}. {left}".strip())]
    ho, within = d["heldout"], d["within_val_optimism"]
    favours = (f"the two rules are equal there, so `{d['chosen']}` (the default) is kept" if ho["best"] == ho["last"]
               else f"the evidence favours `{d['chosen']}`")
    verdict = (f"{favours}, the rule in force" if d["chosen"] == force else
               f"{favours}, not the rule in force: set `checkpoint: {d['chosen']}` and train again to follow it")
    how = (f"The rule is chosen on validation alone: each run's validation clips are split in two halves "
           f"(stratified by class, {d['repeats']} seeded splits, each used both ways round); a rule picks its "
           f"epoch on one half and is scored on the other. Held-out validation top-1: best epoch {pct(ho['best'])}, "
           f"last epoch {pct(ho['last'])} (best minus last {pts(d['diff_best_minus_last'])} points, {interval(d)}); "
           f"{verdict}. On the half it was picked on, the best epoch scores {pts(within['best'])} points above its "
           f"held-out accuracy (the last epoch: {pts(within['last'])}).")
    if d["chosen"] != force:   # what following the evidence would leave
        left = f"{left} {optimism_text(table, d['chosen'], where, 'The rule chosen on validation')}".strip()
    return [("md", "### Which checkpoint a run keeps"),
            ("md", f"{head} {how} {left}".strip())]
