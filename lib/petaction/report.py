"""The paper-style report: every sentence with a number is generated from the study's files.

notebooks/report.ipynb calls these functions and shows their Markdown; render.py turns the
executed notebook into report/<study>.html and .pdf (code hidden).
"""
from __future__ import annotations

import json
import pandas as pd

from . import paths

TABLE_COLUMNS = {"model": "Model", "top1": "Top-1", "top1_ci": "Top-1 95% CI", "top3": "Top-3", "top5": "Top-5",
                 "mean_class_acc": "Mean class acc.", "macro_f1": "Macro-F1",
                 "top1_order_only": "Top-1 (order-only classes)", "n_seeds": "Seeds"}


def pct(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{100 * x:.1f}%"


def load(study: str = "default", results_dir=None, target: str = "action") -> dict:
    """Everything the report shows, read from the study's files."""
    root = paths.target_dir(study, target, results_dir)
    data, ev = root / "data", root / "evaluation"
    r = {"study": study, "target": target, "root": root, "data": data, "eval": ev,
         "prepare": json.loads((data / "prepare.json").read_text()),
         "classes": json.loads((data / "classes.json").read_text()),
         "counts": pd.read_csv(data / "summary.csv"),
         "summary": pd.read_csv(ev / "summary.csv"),
         "runs": pd.read_csv(ev / "runs.csv"),
         "per_class": pd.read_csv(ev / "per_class.csv", index_col="class"),
         "failed": pd.read_csv(ev / "failed.csv"),
         "paired": pd.read_csv(ev / "paired_tests.csv")}
    r["run_params"] = {}
    r["run_provenance"] = {}
    for row in r["runs"].itertuples():
        run = root / "models" / row.model / f"seed{row.seed}"
        r["run_params"][row.model] = json.loads((run / "params.json").read_text())
        r["run_provenance"][(row.model, row.seed)] = json.loads((run / "provenance.json").read_text())
    return r


def table(summary: pd.DataFrame) -> str:
    """The comparison table as Markdown (mean over seeds; ± std where several seeds)."""
    cols = [c for c in TABLE_COLUMNS if c in summary.columns or (c == "top1_ci" and "top1_ci_low" in summary)]
    lines = ["| " + " | ".join(TABLE_COLUMNS[c] for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, row in summary.iterrows():
        cells = []
        for c in cols:
            v = row.get(c)
            if c in ("model", "n_seeds"):
                cells.append(str(v))
            elif c == "top1_ci":
                cells.append(f"{pct(row['top1_ci_low'])} to {pct(row['top1_ci_high'])}")
            else:
                sd = row.get(c + "_std")
                cells.append(pct(v) + (f" ± {100 * sd:.1f}" if pd.notna(sd) else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def counts_line(r: dict) -> str:
    c = r["counts"]
    ratio = c["total"].max() / max(c["total"].min(), 1)
    biggest, smallest = c.loc[c["total"].idxmax(), "label"], c.loc[c["total"].idxmin(), "label"]
    return (f"{int(c['total'].sum())} clips in {len(c)} classes ({int(c['train'].sum())} train, "
            f"{int(c['val'].sum())} validation, {int(c['test'].sum())} test); the largest class "
            f"({biggest}, {int(c['total'].max())} clips) is {ratio:.1f} times the smallest ({smallest}, "
            f"{int(c['total'].min())})")


def abstract(r: dict) -> str:
    s, p = r["summary"], r["prepare"]
    best = s.iloc[0]
    source = "the embedded synthetic set in the AI-Hub format" if not p["params"]["data_root"] else \
        f"the AI-Hub data at `{p['params']['data_root']}`"
    text = (f"We train {len(s)} mmaction2 video recognisers from scratch on {source} "
            f"({counts_line(r)}) and compare them on a held-out test split of {int(best['n_test'])} clips. ")
    text += f"{best['model']} leads with top-1 {pct(best['top1'])} and mean class accuracy {pct(best['mean_class_acc'])}"
    if len(s) > 1:
        second = s.iloc[1]
        text += f", {100 * (best['top1'] - second['top1']):.1f} points above {second['model']} ({pct(second['top1'])})"
    return text + "."


def abstract_all(reports: list[dict]) -> str:
    """One abstract for the study: the first target's, then one sentence group per other target."""
    parts = [abstract(reports[0])]
    for r in reports[1:]:
        text = abstract(r)
        parts.append(f"For the {r['target']} target: " + text[0].lower() + text[1:])
    return " ".join(parts)


def dataset(r: dict) -> str:
    p = r["prepare"]["params"]
    policy = ("following the dataset's own Training/Validation folders (Validation as test)" if p["split_policy"] == "official"
              else f"stratified by class ({p['train_ratio']:.0%}/{p['val_ratio']:.0%}/{p['test_ratio']:.0%} "
                   f"train/val/test, seed {p['seed']}" + (f", grouped by `{p['group_by']}`" if p["group_by"] else "") + ")")
    text = (f"The prepared dataset has {counts_line(r)}. Clips were split {policy}; models are selected "
            f"on validation and the test split is used once. {r['prepare']['rejected']} clips or files were "
            f"rejected during preparation (each with its reason in `data/rejected.csv`), and "
            f"{r['prepare']['text_mismatch']} kept clips have a Korean action text that does not match their code. "
            f"Frames were cropped to the labelled pet box (margin {p['margin']}) and resized to "
            f"{p['short_side']} px.")
    if r["classes"]["order_only"]:
        text += (f" The classes {', '.join(r['classes']['order_only'])} visit the same poses in opposite order: "
                 "no single frame, nor an unordered set of frames, tells them apart.")
    return text


def methods(r: dict) -> str:
    lines = ["| Model | Recognizer | Backbone | Input | Epochs | lr | Batch |", "|---|---|---|---|---|---|---|"]
    for model in r["summary"]["model"]:
        p = r["run_params"][model]
        from .mmconfig import model_dict
        m = model_dict(p, len(r["classes"]["classes"]))
        bb = m["backbone"]
        depth = f"-{bb['depth']}" if "depth" in bb else ""
        inp = (f"{p['num_segments']} segments" if p["sampling"] == "segments"
               else f"{p['clip_len']} frames x{p['frame_interval']}") + f", {p['img_size']} px"
        lines.append(f"| {model} | {m['type']} | {bb['type']}{depth} | {inp} | {p['epochs']} | {p['lr']} | {p['batch_size']} |")
    prov = next(iter(r["run_provenance"].values()))
    hw, v = prov["hardware"], prov["versions"]
    gpu = ", ".join(hw["gpus"]) or "no GPU"
    lines.append("")
    opts = sorted({q["optimizer"] for q in r_params(r)})
    balance = sorted({q["class_balance"] for q in r_params(r)})
    lines.append(f"All models train from scratch (no pretrained weights) with mmengine's Runner, "
                 f"{' / '.join(opts)} with linear warm-up and cosine decay (class balancing: {', '.join(balance)}), "
                 f"and keep the checkpoint with the best validation top-1. "
                 f"Hardware: {hw['cpu']} ({hw['cpu_count']} CPUs, {hw['torch_threads']} torch threads), {gpu}. "
                 f"Software: Python {v['python']}, torch {v['torch']}, mmaction2 {v['mmaction2']}, "
                 f"mmengine {v['mmengine']}, mmcv {v['mmcv']}.")
    return "\n".join(lines)


def r_params(r: dict) -> list[dict]:
    return list(r["run_params"].values())


def majority_baseline(r: dict) -> tuple[str, float]:
    """The commonest test class and the top-1 of always predicting it."""
    c = r["counts"]
    row = c.loc[c["test"].idxmax()]
    return row["label"], float(row["test"]) / max(float(c["test"].sum()), 1.0)


def paired_sentence(r: dict, alpha: float = 0.05) -> list[str]:
    """'A beats B' only when McNemar's paired test on the same test clips says so."""
    s, paired = r["summary"], r.get("paired")
    if paired is None or len(s) < 2 or not len(paired):
        return []
    a, b = s.iloc[0]["model"], s.iloc[1]["model"]
    hit = paired[((paired["model_a"] == a) & (paired["model_b"] == b)) | ((paired["model_a"] == b) & (paired["model_b"] == a))]
    if not len(hit):
        return []
    t = hit.iloc[0]
    if t["p_value"] < alpha:
        return [f"{a} beats {b} on the same {int(t['n_clips'])} test clips (McNemar's test, p = {t['p_value']:.3f})."]
    return [f"The difference between {a} and {b} is not significant on {int(t['n_clips'])} test clips "
            f"(McNemar's test, p = {t['p_value']:.2f}; top-1 95% interval of {a}: "
            f"{pct(s.iloc[0].get('top1_ci_low'))} to {pct(s.iloc[0].get('top1_ci_high'))})."]


def conclusion(r: dict) -> str:
    """Sentences derived from the numbers: who leads, by how much, where models fail."""
    s, pc = r["summary"], r["per_class"]
    best = s.iloc[0]
    out = [f"{best['model']} has the highest test top-1 ({pct(best['top1'])})."]
    out += paired_sentence(r)
    label, base = majority_baseline(r)
    beat = s[s["top1"] > base]["model"].tolist()
    if not beat:
        out.append(f"No model beats always predicting the commonest test class ({label}, {pct(base)}): "
                   "on this data and profile the models have not learned the task, and the ranking "
                   "below says little.")
    else:
        for _, row in s[s["model"].isin(beat)].iterrows():
            low = row.get("top1_ci_low")
            if pd.notna(low) and low <= base:
                out.append(f"{row['model']}'s top-1 is above always predicting the commonest test class "
                           f"({label}, {pct(base)}), but its 95% interval ({pct(low)} to "
                           f"{pct(row['top1_ci_high'])}) includes that rate.")
        rest = [m for m in s["model"] if m not in beat]
        if rest:
            out.append(f"{', '.join(rest)} do{'es' if len(rest) == 1 else ''} not beat that rate.")
    if len(s) > 1:
        worst = s.iloc[-1]
        out.append(f"The weakest model is {worst['model']} ({pct(worst['top1'])}), "
                   f"{100 * (best['top1'] - worst['top1']):.1f} points behind.")
    col = pc[best["model"]].dropna()
    if len(col):
        hardest = col.sort_values(kind="stable").index[:2].tolist()
        out.append(f"{best['model']}'s hardest classes are " +
                   " and ".join(f"{c} ({pct(col[c])})" for c in hardest) + ".")
    oo = s.dropna(subset=["top1_order_only"])
    if len(oo) > 1 and r["classes"]["order_only"]:
        ordered = oo.sort_values("top1_order_only", ascending=False, kind="stable")
        lead, last = ordered.iloc[0], ordered.iloc[-1]
        if lead["top1_order_only"] > last["top1_order_only"]:
            n_oo = int(r["counts"].set_index("label").loc[r["classes"]["order_only"], "test"].sum())
            out.append(f"On the order-only classes ({', '.join(r['classes']['order_only'])}, {n_oo} test clips), "
                       f"{lead['model']} reaches {pct(lead['top1_order_only'])} against "
                       f"{last['model']}'s {pct(last['top1_order_only'])}; a model blind to frame order "
                       "can at best tell the pair from the other classes and guess within it (50%).")
        else:
            out.append("On the order-only classes no model beats another: "
                       + ", ".join(f"{m} {pct(v)}" for m, v in zip(ordered["model"], ordered["top1_order_only"])) + ".")
    if len(r["failed"]):
        out.append(f"{len(r['failed'])} run(s) failed and are not in the comparison (see the appendix).")
    return " ".join(out)


def sections(r: dict) -> list[tuple[str, str]]:
    """The body of one target's part of the report: ("md", text) or ("img", PNG path) items."""
    t = r["target"].capitalize()
    return [
        ("md", f"## {t}: dataset"), ("md", dataset(r)), ("img", str(r["data"] / "class_counts.png")),
        ("md", f"## {t}: methods"), ("md", methods(r)),
        ("md", f"## {t}: results"),
        ("md", "Test-split metrics, recomputed from each run's saved per-clip scores "
               f"(`results/{r['study']}/{'' if r['target'] == 'action' else r['target'] + '/'}evaluation/summary.csv`), "
               "best first; the interval is a bootstrap over test clips:"),
        ("md", table(r["summary"])),
        ("md", "Training loss and validation top-1 per epoch, the best model's confusion matrix, and "
               "per-class test accuracy:"),
        ("img", str(r["eval"] / "curves.png")), ("img", str(r["eval"] / "confusion_best.png")),
        ("img", str(r["eval"] / "per_class.png")),
        ("md", f"## {t}: conclusion"), ("md", conclusion(r)),
    ]


def appendix(r: dict) -> str:
    lines = ["| Run | Commit | Dirty tree | Time (UTC) | Train time (s) |", "|---|---|---|---|---|"]
    for row in r["runs"].itertuples():
        prov = r["run_provenance"][(row.model, row.seed)]
        lines.append(f"| {row.model} seed {row.seed} | `{prov['git']['commit'][:10]}` | {prov['git']['dirty']} | "
                     f"{prov['time_utc']} | {row.train_time_s:.0f} |")
    if len(r["failed"]):
        lines += ["", "Failed runs:", ""]
        lines += [f"- {f.model} seed {f.seed}: {f.error} (`{f.notebook}`)" for f in r["failed"].itertuples()]
    lines += ["", "Resolved parameters, configs and library versions of each run are in "
              f"`results/{r['study']}/models/<model>/seed<k>/` (`params.json`, `config.py`, `provenance.json`)."]
    return "\n".join(lines)
