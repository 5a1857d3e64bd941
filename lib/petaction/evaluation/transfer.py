"""Runs that differ only in where their weights started (init): paired on the same test clips.

    pairs(run_params)                          which models of a target form such pairs
    compare(run_params, correct, records, claims)
                                               one row per pair: top-1 of each, the paired difference
                                               with its bootstrap interval, the paired test (McNemar /
                                               CMH over seeds) and its Holm-corrected p-value from the
                                               evaluation's claims, what loaded
    section(table, target)                     the report's markdown: a table and one sentence a pair

`run_params` maps each model name of a target (tsm, tsm@action) to its params.json; `correct`
maps it to {seed: per-test-clip correctness (bool array, test order)}, as evaluate builds it;
`records` maps it to its init record (records(): pretrained.load_report of a run folder);
`claims` are the evaluation's decisions (evaluate.decide tests every pair as an "init" claim, in
the family Holm's correction runs over). evaluate writes the table to evaluation/transfer.csv and
the report renders it. Behaviour -> emotion transfer is the emotion target's pairs whose init is
an action run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.fmt import p_text, pct, pts
from ..models import pretrained
from . import stats

COLUMNS = ["model_a", "model_b", "init_a", "init_b", "n_seeds", "n_clips", "top1_a", "top1_b", "diff",
           "diff_ci_low", "diff_ci_high", "a_only", "b_only", "test", "p_value", "p_holm", "source_b", "loaded_b", "missing_b",
           "unexpected_b", "head_reinitialised_b"]


def differing(pa: dict, pb: dict) -> set:
    return {k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k)}


def allowed(p: dict) -> set:
    """What an init may change besides itself: the run's name, and what its finetune section sets
    (the learning rate through lr_scale, and any train parameter it lists)."""
    return {"model", "init", "lr", *pretrained.finetune(p)}


def pairs(run_params: dict[str, dict]) -> list[tuple[str, str]]:
    """(a, b): the same model file whose settings differ only in init (and what that init's
    fine-tuning settings change); a is the one from scratch when there is one."""
    names = sorted(run_params, key=lambda m: (pretrained.kind(run_params[m]) != pretrained.SCRATCH, m))
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pa, pb = run_params[a], run_params[b]
            if pretrained.split_label(a)[0] != pretrained.split_label(b)[0] or pa.get("init") == pb.get("init"):
                continue
            if differing(pa, pb) <= allowed(pa) | allowed(pb):
                out.append((a, b))
    return out


def records(first_runs: dict[str, Path]) -> dict[str, dict]:
    """Each model's init record (init.json, or {'init': 'scratch'}) from one of its run folders."""
    return {m: pretrained.load_report(run) for m, run in first_runs.items()}


def holm_of(claims: list[dict] | None, a: str, b: str) -> float:
    """The Holm-corrected p-value of the evaluation's "init" claim on a and b (NaN without one)."""
    for c in claims or []:
        if c.get("kind") == "init" and {c["a"], c["b"]} == {a, b}:
            return float(c["p_holm"])
    return float("nan")


def compare(run_params: dict[str, dict], correct: dict[str, dict[int, np.ndarray]],
            inits: dict[str, dict] | None = None, claims: list[dict] | None = None) -> pd.DataFrame:
    """One row per pair (pairs()): on the seeds both ran, the mean top-1 of each, their paired
    difference b - a with its bootstrap interval (crossed over clips and seeds) and the paired
    test, all from stats.paired_test as evaluate's claims use it (exact McNemar for one seed,
    Cochran-Mantel-Haenszel over clips for several), the Holm-corrected p-value when ``claims``
    hold the pair, and what b's init loaded."""
    rows = []
    for a, b in pairs(run_params):
        seeds = sorted(set(correct.get(a, {})) & set(correct.get(b, {})))
        if not seeds:
            continue
        ca = np.array([correct[a][s] for s in seeds], dtype=bool)
        cb = np.array([correct[b][s] for s in seeds], dtype=bool)
        if ca.shape != cb.shape:
            raise ValueError(f"{a} and {b} were tested on different clips: re-run evaluate on one prepared split")
        t = stats.paired_test(cb, ca)   # b first: the difference is b - a
        rec = (inits or {}).get(b) or {}
        rows.append({"model_a": a, "model_b": b, "init_a": run_params[a].get("init", pretrained.SCRATCH),
                     "init_b": run_params[b].get("init"), "n_seeds": len(seeds), "n_clips": ca.shape[1],
                     "top1_a": float(ca.mean()), "top1_b": float(cb.mean()), "diff": t["diff"],
                     "diff_ci_low": t["diff_ci_low"], "diff_ci_high": t["diff_ci_high"],
                     "a_only": t["b_only"], "b_only": t["a_only"], "test": t["test"], "p_value": t["p_value"],
                     "p_holm": holm_of(claims, a, b),
                     "source_b": rec.get("source"), "loaded_b": rec.get("loaded"), "missing_b": rec.get("missing"),
                     "unexpected_b": rec.get("unexpected"), "head_reinitialised_b": rec.get("head_reinitialised")})
    return pd.DataFrame(rows, columns=COLUMNS)


def what_loaded(row) -> str:
    if pd.isna(row["loaded_b"]):
        return "no init record (init.json) found"
    total = int(row["loaded_b"]) + int(row["missing_b"])
    head = "the classifier head re-initialised" if bool(row["head_reinitialised_b"]) else "the classifier head loaded too"
    return f"{int(row['loaded_b'])} of its {total} tensors from {row['source_b']}, {head}"


def init_words(init: str) -> str:
    i = pretrained.parse(init)
    if i.kind == pretrained.SCRATCH:
        return "from scratch"
    if i.kind == pretrained.ZOO:
        return "from the mmaction2 model-zoo checkpoint"
    if i.kind == "run":
        return f"from the study's {i.target} run" + (f" of {i.model}" if i.model else "")
    return f"from {init}"


def p_of(row) -> float:
    """The p-value a claim rests on: Holm-corrected when the evaluation's family holds the pair."""
    return row["p_value"] if pd.isna(row.get("p_holm")) else row["p_holm"]


def test_words(row) -> str:
    if pd.isna(row.get("p_holm")):
        return f"{row['test']}, {p_text(row['p_value'])} (not corrected for multiple comparisons)"
    return f"{row['test']}, Holm-corrected {p_text(row['p_holm'])}, uncorrected {p_text(row['p_value'])}"


def verdict(row, alpha: float) -> str:
    if p_of(row) >= alpha or row["diff"] == 0:
        return "not a significant difference"
    return "significantly better" if row["diff"] > 0 else "significantly worse"


def interval(row) -> str:
    seeds = f", over clips and {int(row['n_seeds'])} seeds" if row["n_seeds"] > 1 else ""
    return f"95% bootstrap interval {pts(row['diff_ci_low'])} to {pts(row['diff_ci_high'])}{seeds}"


def sentence(row, alpha: float) -> str:
    seeds = f" and {int(row['n_seeds'])} seeds" if row["n_seeds"] > 1 else ""
    return (f"{row['model_b']} (initialised {init_words(row['init_b'])}: {what_loaded(row)}) against "
            f"{row['model_a']} ({init_words(row['init_a'])}) on the same {int(row['n_clips'])} test clips{seeds}: "
            f"top-1 {pct(row['top1_b'])} against {pct(row['top1_a'])}, a paired difference of "
            f"{pts(row['diff'])} points ({interval(row)}); {test_words(row)}: {verdict(row, alpha)}.")


def transfer_sentence(row, alpha: float) -> str:
    """The original study's question, for an emotion model started from an action run."""
    if p_of(row) >= alpha or row["diff"] == 0:
        answer = "does not make a significant difference to"
    else:
        answer = "helps" if row["diff"] > 0 else "hurts"
    return (f"Behaviour -> emotion transfer ({row['model_b']} against {row['model_a']}): starting from the backbone "
            f"that learned pet behaviour {answer} emotion recognition here: {pts(row['diff'])} points of "
            f"top-1 ({interval(row)}; {test_words(row)}).")


def is_transfer(row) -> bool:
    """An emotion model started from an action run, against the same model from scratch."""
    return (pretrained.parse(row["init_b"]).target == "action"
            and pretrained.kind({"init": row["init_a"]}) == pretrained.SCRATCH)


def section(table: pd.DataFrame, target: str, alpha: float = 0.05) -> str:
    """Markdown: the pairs' table (7 columns: it fits the report's page), one sentence a pair, and
    for the emotion target the transfer answer."""
    if table is None or not len(table):
        return (f"No two {target} models differ only in their initial weights (add e.g. `tsm@action` or "
                "`tsm@zoo` beside `tsm` to the study's models for the comparison).")
    rows = [{"Model (init)": f"{r['model_b']} ({r['init_b']})", "Against": f"{r['model_a']} ({r['init_a']})", "Top-1": pct(r["top1_b"]),
             "Against top-1": pct(r["top1_a"]),
             "Difference (95% CI)": f"{pts(r['diff'])} ({pts(r['diff_ci_low'])} to {pts(r['diff_ci_high'])})",
             "p (Holm)": p_text(p_of(r)),
             "Tensors loaded": "" if pd.isna(r["loaded_b"]) else f"{int(r['loaded_b'])} / {int(r['loaded_b']) + int(r['missing_b'])}"}
            for _, r in table.iterrows()]
    text = [pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True), "",
            " ".join(sentence(r, alpha) for _, r in table.iterrows())]
    if target == "emotion":
        transfer = [r for _, r in table.iterrows() if is_transfer(r)]
        if transfer:
            text += ["", " ".join(transfer_sentence(r, alpha) for r in transfer)]
    return "\n".join(text)
