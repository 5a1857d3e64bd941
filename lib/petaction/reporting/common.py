"""What every part of the report shares: Markdown tables that fit the page, the decisions and
claims evaluate.decide wrote, the test set and the training budgets in words."""
from __future__ import annotations

import pandas as pd

from ..core.fmt import num, p_text


MAX_COLUMNS = 7   # a wider table is split (the model column repeated) so it fits the page

TABLE_COLUMNS = {"model": "Model", "val_top1": "Val top-1 (selection)", "top1": "Top-1", "top1_ci": "Top-1 95% CI",
                 "train_steps": "Training steps", "train_cpu_s": "Training CPU s", "n_seeds": "Seeds",
                 "top3": "Top-3", "top5": "Top-5", "mean_class_acc": "Mean class acc.", "macro_f1": "Macro-F1",
                 "top1_order_only": "Top-1 (order-only classes)", "top1_fold_std": "Top-1 s.d. over folds"}


def md_table(df: pd.DataFrame, max_columns: int = MAX_COLUMNS) -> str:
    """A DataFrame of formatted cells as Markdown (pandas to_markdown); wider than
    max_columns, split into several tables that each repeat the first column."""
    df = df.astype(str)
    if df.shape[1] <= max_columns:
        return df.to_markdown(index=False, disable_numparse=True)
    key, rest = df.columns[0], list(df.columns[1:])
    step = max_columns - 1
    return "\n\n".join(df[[key, *rest[i:i + step]]].to_markdown(index=False, disable_numparse=True) for i in range(0, len(rest), step))


def folds(r: dict) -> int:
    """k when the target was evaluated by k-fold cross-validation, else 0."""
    return int(r["prepare"]["params"].get("folds", 0))


def decisions(r: dict) -> dict:
    return r["decisions"]


def claim(r: dict, kind: str, a: str | None = None, b: str | None = None) -> dict | None:
    """The claim of that kind (between a and b in either order, when given), or None."""
    for c in decisions(r)["claims"]:
        if c["kind"] == kind and (a is None or c["a"] == a) and (b is None or c["b"] == b):
            return c
        if c["kind"] == kind and a is not None and b is not None and c["a"] == b and c["b"] == a:
            return c
    return None


def test_name(c: dict) -> str:
    return f"{c['test']}, Holm-corrected {p_text(c['p_holm'])}, uncorrected {p_text(c['p_value'])}"


def test_set(r: dict) -> str:
    n = decisions(r)["baseline"]["test"]["n"]
    if folds(r):
        return (f"by {folds(r)}-fold cross-validation: each of the {n} clips is tested once, by the "
                "fold that held it out, and the metrics pool the folds' test clips")
    return f"on a held-out test split of {n} clips"


def counts_line(r: dict) -> str:
    c = r["counts"]
    ratio = c["total"].max() / max(c["total"].min(), 1)
    biggest, smallest = c.loc[c["total"].idxmax(), "label"], c.loc[c["total"].idxmin(), "label"]
    return (f"{int(c['total'].sum())} clips in {len(c)} classes ({int(c['train'].sum())} train, "
            f"{int(c['val'].sum())} validation, {int(c['test'].sum())} test); the largest class "
            f"({biggest}, {int(c['total'].max())} clips) is {ratio:.1f} times the smallest ({smallest}, "
            f"{int(c['total'].min())})")


def budgets(r: dict, models: list[str]) -> str:
    """"a: 1200 steps, 340 CPU s; b: ..." for the models named."""
    s = r["summary"].set_index("model")
    return "; ".join(f"{m}: {num(s.loc[m].get('train_steps'))} optimizer steps, "
                     f"{num(s.loc[m].get('train_cpu_s'))} CPU s" for m in models)


def budgets_differ(r: dict, models: list[str] | None = None) -> bool | None:
    """True when the models' training budgets (optimizer steps) differ, None when unknown."""
    s = r["summary"].set_index("model")
    models = list(s.index) if models is None else models
    if "train_steps" not in s or s.loc[models, "train_steps"].isna().any():
        return None
    return s.loc[models, "train_steps"].nunique() > 1


def budget_note(r: dict, models: list[str] | None = None) -> str:
    """The sentence any ranking needs: whether the models trained on equal budgets."""
    models = list(r["summary"]["model"]) if models is None else models
    if len(models) < 2:
        return ""
    differ = budgets_differ(r, models)
    if differ is None:
        return " Not every run recorded its training budget, so this ranking may compare unequal budgets."
    if differ:
        return (f" The training budgets differ ({budgets(r, models)}), so the ranking compares the "
                "models as configured, not on equal footing.")
    return ""


def r_params(r: dict) -> list[dict]:
    return list(r["run_params"].values())


def majority_baseline(r: dict) -> tuple[str, float]:
    """The commonest class among the scored test clips (pooled over folds) and the top-1 of
    always predicting it."""
    b = decisions(r)["baseline"]["test"]
    return b["class"], float(b["rate"])
