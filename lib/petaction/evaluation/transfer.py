"""Runs that differ only in where their weights started (init): paired on the same test clips.

    pairs(run_params)                          which models of a target form such pairs
    compare(run_params, correct, records)      one row per pair: top-1 of each, the paired difference
                                               with its bootstrap interval, McNemar's test, what loaded
    section(table, target)                     the report's markdown: a table and one sentence a pair

`run_params` maps each model name of a target (tsm, tsm@action) to its params.json; `correct`
maps it to {seed: per-test-clip correctness (bool array, test order)}, as evaluate builds it;
`records` maps it to its init record (records(): pretrained.load_report of a run folder).
Behaviour -> emotion transfer is the emotion target's pairs whose init is an action run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..models import pretrained
from . import stats

COLUMNS = ["model_a", "model_b", "init_a", "init_b", "n_seeds", "n_clips", "top1_a", "top1_b", "diff",
           "diff_ci_low", "diff_ci_high", "a_only", "b_only", "p_value", "source_b", "loaded_b", "missing_b",
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


def compare(run_params: dict[str, dict], correct: dict[str, dict[int, np.ndarray]],
            inits: dict[str, dict] | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """One row per pair (pairs()): on the seeds both ran, the mean top-1 of each, their paired
    difference b - a (per clip, averaged over seeds) with a percentile bootstrap interval over the
    test clips, McNemar's test on the first common seed, and what b's init loaded."""
    rows = []
    for a, b in pairs(run_params):
        seeds = sorted(set(correct.get(a, {})) & set(correct.get(b, {})))
        if not seeds:
            continue
        ca = np.array([correct[a][s] for s in seeds], dtype=float)
        cb = np.array([correct[b][s] for s in seeds], dtype=float)
        if ca.shape != cb.shape:
            raise ValueError(f"{a} and {b} were tested on different clips: re-run evaluate on one prepared split")
        d = cb - ca   # (seeds, clips): a crossed bootstrap over clips and seeds (stats.bootstrap_ci)
        low, high = stats.bootstrap_ci(d, n_resamples=n_boot)
        rec = (inits or {}).get(b) or {}
        rows.append({"model_a": a, "model_b": b, "init_a": run_params[a].get("init", pretrained.SCRATCH),
                     "init_b": run_params[b].get("init"), "n_seeds": len(seeds), "n_clips": ca.shape[1],
                     "top1_a": float(ca.mean()), "top1_b": float(cb.mean()), "diff": float(d.mean()),
                     "diff_ci_low": low, "diff_ci_high": high,
                     **stats.mcnemar(ca[0].astype(bool), cb[0].astype(bool)),
                     "source_b": rec.get("source"), "loaded_b": rec.get("loaded"), "missing_b": rec.get("missing"),
                     "unexpected_b": rec.get("unexpected"), "head_reinitialised_b": rec.get("head_reinitialised")})
    return pd.DataFrame(rows, columns=COLUMNS)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def points(x: float) -> str:
    return f"{100 * x:+.1f}"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


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


def verdict(row, alpha: float) -> str:
    if row["p_value"] >= alpha:
        return "not a significant difference"
    return "significantly better" if row["diff"] > 0 else "significantly worse"


def sentence(row, alpha: float) -> str:
    seeds = f", averaged over {int(row['n_seeds'])} seeds" if row["n_seeds"] > 1 else ""
    return (f"{row['model_b']} (initialised {init_words(row['init_b'])}: {what_loaded(row)}) against "
            f"{row['model_a']} ({init_words(row['init_a'])}) on the same {int(row['n_clips'])} test clips: top-1 "
            f"{pct(row['top1_b'])} against {pct(row['top1_a'])}, a paired difference of {points(row['diff'])} points "
            f"(95% bootstrap interval {points(row['diff_ci_low'])} to {points(row['diff_ci_high'])}{seeds}); "
            f"McNemar's test {p_text(row['p_value'])}: {verdict(row, alpha)}.")


def transfer_sentence(row, alpha: float) -> str:
    """The original study's question, for an emotion model started from an action run."""
    if row["p_value"] >= alpha:
        answer = "does not make a significant difference to"
    else:
        answer = "helps" if row["diff"] > 0 else "hurts"
    return (f"Behaviour -> emotion transfer ({row['model_b']} against {row['model_a']}): starting from the backbone "
            f"that learned pet behaviour {answer} emotion recognition here, by {points(row['diff'])} points of "
            f"top-1 (95% interval {points(row['diff_ci_low'])} to {points(row['diff_ci_high'])}, {p_text(row['p_value'])}).")


def section(table: pd.DataFrame, target: str, alpha: float = 0.05) -> str:
    """Markdown: the pairs' table, one sentence a pair, and for the emotion target the transfer answer."""
    if table is None or not len(table):
        return (f"No two {target} models differ only in their initial weights (add e.g. `tsm@action` or "
                "`tsm@zoo` beside `tsm` to the study's models for the comparison).")
    lines = ["| Model | Init | Against | Top-1 | Against top-1 | Difference (95% CI) | McNemar | Loaded |",
             "|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        loaded = "" if pd.isna(r["loaded_b"]) else f"{int(r['loaded_b'])} / {int(r['loaded_b']) + int(r['missing_b'])}"
        lines.append(f"| {r['model_b']} | {r['init_b']} | {r['model_a']} | {pct(r['top1_b'])} | {pct(r['top1_a'])} | "
                     f"{points(r['diff'])} ({points(r['diff_ci_low'])} to {points(r['diff_ci_high'])}) | "
                     f"{p_text(r['p_value'])} | {loaded} |")
    text = ["\n".join(lines), "", " ".join(sentence(r, alpha) for _, r in table.iterrows())]
    if target == "emotion":
        transfer = [r for _, r in table.iterrows() if pretrained.parse(r["init_b"]).target == "action"
                    and pretrained.kind({"init": r["init_a"]}) == pretrained.SCRATCH]
        if transfer:
            text += ["", " ".join(transfer_sentence(r, alpha) for r in transfer)]
    return "\n".join(text)
