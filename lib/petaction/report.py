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
                 "top1_order_only": "Top-1 (order-only classes)", "top1_fold_std": "Top-1 s.d. over folds",
                 "n_seeds": "Seeds"}


def pct(x: float) -> str:
    return "n/a" if pd.isna(x) else f"{100 * x:.1f}%"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


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
    r["diagnosis"] = pd.read_csv(ev / "diagnosis.csv") if (ev / "diagnosis.csv").is_file() else pd.DataFrame()
    r["cost"] = json.loads((ev / "cost.json").read_text()) if (ev / "cost.json").is_file() else None
    r["detector"] = json.loads((ev / "detector.json").read_text()) if (ev / "detector.json").is_file() else None
    r["run_params"] = {}
    r["run_provenance"] = {}
    for row in r["runs"].itertuples():   # with folds: fold 1's run stands for the others (same settings)
        run = root / "models" / row.model / paths.run_name(row.seed, 1 if folds(r) else 0)
        r["run_params"][row.model] = json.loads((run / "params.json").read_text())
        r["run_provenance"][(row.model, row.seed)] = json.loads((run / "provenance.json").read_text())
    return r


def folds(r: dict) -> int:
    """k when the target was evaluated by k-fold cross-validation, else 0."""
    return int(r["prepare"]["params"].get("folds", 0))


def test_set(r: dict) -> str:
    n = int(r["summary"].iloc[0]["n_test"])
    if folds(r):
        return (f"by {folds(r)}-fold cross-validation: each of the {n} clips is tested once, by the "
                "fold that held it out, and the metrics pool the folds' test clips")
    return f"on a held-out test split of {n} clips"


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
            f"({counts_line(r)}) and compare them {test_set(r)}. ")
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
    if folds(r):
        text += (f" For cross-validation the clips were also dealt into {folds(r)} folds, stratified by class"
                 + (f" (whole `{p['group_by']}` groups)" if p["group_by"] else "") + "; each model trains "
                 f"{folds(r)} times, fold i held out as test and the rest split train/val in the same ratio, "
                 "and the tables pool the folds' test predictions (the s.d. column is the fold-to-fold spread).")
    if r["classes"]["order_only"]:
        text += (f" The classes {', '.join(r['classes']['order_only'])} visit the same poses in opposite order: "
                 "no single frame, nor an unordered set of frames, tells them apart.")
    return text


def methods(r: dict) -> str:
    lines = ["| Model | Recognizer | Backbone | Input | Epochs | lr | Batch |", "|---|---|---|---|---|---|---|"]
    for model in r["summary"]["model"]:
        p = r["run_params"][model]
        from . import detection, mmconfig
        build = detection.model_dict if detection.is_fast_rcnn(p) else mmconfig.model_dict   # no cls_head
        m = build(p, len(r["classes"]["classes"]))
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
                 f"Hardware: {hw['cpu']} ({hw['cpu_count']} CPUs; training on {hw['torch_threads']} torch "
                 f"thread(s) per run), {gpu}. "
                 f"Software: Python {v['python']}, torch {v['torch']}, mmaction2 {v['mmaction2']}, "
                 f"mmengine {v['mmengine']}, mmcv {v['mmcv']}.")
    subset = model_subset(r)
    if subset:
        lines.append(subset)
    return "\n".join(lines)


def model_subset(r: dict) -> str:
    """For a target other than action: which of the action comparison's models it trains
    (the study's target_models), so a reader does not take a missing row for a failure."""
    action = r["root"].parent / "evaluation" / "summary.csv"
    if r["target"] == "action" or not action.is_file():
        return ""
    all_models, here = list(pd.read_csv(action)["model"]), list(r["summary"]["model"])
    if set(here) == set(all_models):
        return ""
    return (f"\nThe {r['target']} comparison trains {', '.join(sorted(here))} (the study's `target_models`); "
            f"the action comparison trains {len(all_models)} models.")


def r_params(r: dict) -> list[dict]:
    return list(r["run_params"].values())


def majority_baseline(r: dict) -> tuple[str, float]:
    """The commonest test class and the top-1 of always predicting it."""
    c = r["counts"]
    row = c.loc[c["test"].idxmax()]
    return row["label"], float(row["test"]) / max(float(c["test"].sum()), 1.0)


def pair_row(r: dict, a: str, b: str):
    """The row of paired_tests.csv for models a and b (either order), or None."""
    paired = r.get("paired")
    if paired is None or not len(paired):
        return None
    hit = paired[((paired["model_a"] == a) & (paired["model_b"] == b)) | ((paired["model_a"] == b) & (paired["model_b"] == a))]
    return hit.iloc[0] if len(hit) else None


def paired_sentence(r: dict, alpha: float = 0.05) -> list[str]:
    """'A beats B' only when McNemar's paired test on the same test clips says so."""
    s = r["summary"]
    if len(s) < 2:
        return []
    a, b = s.iloc[0]["model"], s.iloc[1]["model"]
    t = pair_row(r, a, b)
    if t is None:
        return []
    if t["p_value"] < alpha:
        return [f"{a} beats {b} on the same {int(t['n_clips'])} test clips (McNemar's test, {p_text(t['p_value'])})."]
    return [f"The difference between {a} and {b} is not significant on {int(t['n_clips'])} test clips "
            f"(McNemar's test, {p_text(t['p_value'])}; top-1 95% interval of {a}: "
            f"{pct(s.iloc[0].get('top1_ci_low'))} to {pct(s.iloc[0].get('top1_ci_high'))})."]


def order_only_wins(r: dict, lead: str, ordered: pd.DataFrame, alpha: float = 0.05) -> list[tuple]:
    """(model, its order-only top-1, p) for every model ``lead`` beats on the order-only test clips."""
    wins = []
    for m, v in zip(ordered["model"], ordered["top1_order_only"]):
        t = pair_row(r, lead, m) if m != lead else None
        if t is None or pd.isna(t.get("p_value_order_only")):
            continue
        lead_only, other_only = ((t["a_only_order_only"], t["b_only_order_only"]) if t["model_a"] == lead
                                 else (t["b_only_order_only"], t["a_only_order_only"]))
        if lead_only > other_only and t["p_value_order_only"] < alpha:
            wins.append((m, v, float(t["p_value_order_only"])))
    return wins


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
            beaten = order_only_wins(r, lead["model"], ordered)
            if beaten:
                out.append(f"On those clips {lead['model']} beats " + ", ".join(
                    f"{m} ({pct(v)}, {p_text(p)})" for m, v, p in beaten) + " (McNemar's test on the same clips).")
        else:
            out.append("On the order-only classes no model beats another: "
                       + ", ".join(f"{m} {pct(v)}" for m, v in zip(ordered["model"], ordered["top1_order_only"])) + ".")
    if len(r["failed"]):
        out.append(f"{len(r['failed'])} run(s) failed and are not in the comparison (see the appendix).")
    return " ".join(out)


def cost_table(summary: pd.DataFrame, cost: dict) -> str:
    """Accuracy beside what each model costs (evaluation/cost.csv); GPU columns where one was present."""
    by_model = {row["model"]: row for row in cost["rows"]}
    batch = cost["rows"][0].get("throughput_batch", "") if cost["rows"] else ""
    gpu = any("gpu_latency_ms" in row for row in cost["rows"])
    e2e = "e2e_latency_p90_ms" in summary and summary["e2e_latency_p90_ms"].notna().any()
    head = (f"| Model | Top-1 | Params (M) | GFLOPs / clip | CPU latency, median (p90) ms | Keeps up at "
            f"{cost['update_hz']:g}/s | Headroom | CPU clips/s (batch {batch}) | Peak memory, MB (batch 1 / {batch}) |")
    head += " With detector, p90 ms | Keeps up with detector |" if e2e else ""
    lines = [head + (" GPU latency ms | GPU clips/s |" if gpu else ""), "|---" * (9 + 2 * gpu + 2 * e2e) + "|"]
    for row in summary.itertuples():
        c = by_model.get(row.model, {})
        line = (f"| {row.model} | {pct(row.top1)} | {row.params_m:.2f} | {row.gflops:.3f} | "
                f"{row.cpu_latency_ms:.1f} ({row.cpu_latency_p90_ms:.1f}) | {'yes' if row.realtime else 'no'} | "
                f"{row.headroom:.1f}x | {c.get('cpu_throughput_cps', float('nan')):.0f} | "
                f"{c.get('peak_mem_mb', float('nan')):.0f} / {c.get('peak_mem_batch_mb', float('nan')):.0f} |")
        if e2e:
            line += f" {row.e2e_latency_p90_ms:.1f} | {'yes' if row.realtime_e2e else 'no'} |"
        if gpu:
            line += f" {c.get('gpu_latency_ms', float('nan')):.2f} | {c.get('gpu_throughput_cps', float('nan')):.0f} |"
        lines.append(line)
    return "\n".join(lines)


def detector_text(r: dict) -> str:
    """The pet detector: its box AP on the test frames and what it adds to every prediction."""
    d = r.get("detector")
    if not d:
        return ("No pet detector was trained in this study (`detector: true` in the study's parameters): "
                "the latencies are the networks' alone, with the pet's box given.")
    return (f"In real use nobody hands the model the pet's box: the study's pet detector ({d['detector']}, "
            f"trained from scratch on the whole frames' boxes, {d['img_size']} px) finds it with test box AP "
            f"{d['box_ap']:.3f} (AP50 {d['box_ap50']:.3f}, AP75 {d['box_ap75']:.3f}; COCO metric on "
            f"{d['n_images']['test']} test frames) in {d['cpu_latency_ms']:.1f} ms (p90 {d['cpu_latency_p90_ms']:.1f} ms) "
            "per frame. Every model here needs that box: a recogniser was trained on frames each cropped to "
            "its own box, so every frame it sees needs a detection; fast_rcnn needs one, its key frame's RoI. "
            "The end-to-end column adds those detections to the model's latency, and the real-time verdict "
            "and the recommendation use it.")


def recommendation(r: dict, alpha: float = 0.05) -> str:
    """Which model to run in real time, from the measured accuracy and cost (never typed in)."""
    from .cost import pareto_front
    s, c = r["summary"], r["cost"]
    if c is None or "cpu_latency_ms" not in s or s["cpu_latency_ms"].isna().all():
        return "No cost measurements."
    hz, hw = c["update_hz"], c["hardware"]
    e2e = "realtime_e2e" in s and s["realtime_e2e"].notna().any()   # the pet detector was measured
    s = s.assign(realtime=s["realtime_e2e"], headroom=s["headroom_e2e"]) if e2e else s
    ok = s[s["realtime"].astype(bool)]
    best = s.iloc[0]
    out = [f"At {hz:g} prediction(s) per second on {hw['cpu']} ({c['torch_threads']} torch threads, batch 1, "
           f"{'the pet detector included' if e2e else 'network only'}), {len(ok)} of {len(s)} models keep up."]
    front = pareto_front(s)
    out.append("The accuracy-latency Pareto front, fastest first: " + " → ".join(
        f"{m} ({pct(s.set_index('model').loc[m, 'top1'])}, {s.set_index('model').loc[m, 'cpu_latency_ms']:.0f} ms)"
        for m in front) + ".")
    per_gflop = s.assign(acc_per_gflop=s["top1"] / s["gflops"]).sort_values("acc_per_gflop", ascending=False).iloc[0]
    out.append(f"The most accurate model is {best['model']} ({pct(best['top1'])}, {best['cpu_latency_ms']:.0f} ms); "
               f"the most accuracy per GFLOP is {per_gflop['model']}'s ({pct(per_gflop['top1'])} for "
               f"{per_gflop['gflops']:.3f} GFLOPs).")
    if not len(ok):
        out.append("Recommendation: none of these keeps up on this machine; lower the update rate or use a GPU.")
        return " ".join(out)
    pick = ok.iloc[0]  # summary is sorted by top-1: the most accurate model that keeps up
    # a faster real-time model that is not significantly worse (McNemar) is the better choice
    faster = ok[(ok["cpu_latency_ms"] < pick["cpu_latency_ms"]) & (ok["model"] != pick["model"])]
    for row in faster.sort_values("top1", ascending=False, kind="stable").itertuples():
        t = pair_row(r, pick["model"], row.model)
        p = None if t is None else float(t["p_value"])
        if p is not None and p >= alpha:
            out.append(f"Recommendation: {row.model}. It keeps up with {row.headroom:.1f}x headroom, and "
                       f"{pick['model']}'s higher top-1 ({pct(pick['top1'])} against {pct(row.top1)}) is not a "
                       f"significant difference on these test clips (McNemar's test, {p_text(p)}) while costing "
                       f"{pick['cpu_latency_ms'] / row.cpu_latency_ms:.1f} times the latency.")
            return " ".join(out)
    out.append(f"Recommendation: {pick['model']}, the most accurate model that keeps up "
               f"({pick['headroom']:.1f}x headroom); no faster model comes within a non-significant "
               "difference of it.")
    return " ".join(out)


def confusions_text(r: dict) -> str:
    """The best model's commonest mistakes (evaluation/confusions.csv), shown with the gallery."""
    path = r["eval"] / "confusions.csv"
    c = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if c.empty:
        return "The best model made no mistakes on the test clips."
    pairs = "; ".join(f"{row.label} taken for {row.pred} ({row.n_clips} clips)" for row in c.itertuples())
    return (f"{c.iloc[0]['model']}'s commonest mistakes on the test clips: {pairs}. "
            "Each row below shows frames of that mistake's most confident example, as the model saw them "
            "(`evaluation/confusion_gallery.png`; `notebooks/explore.ipynb` browses all of them):")


def balance_pairs(r: dict) -> list[tuple[str, str]]:
    """(plain, balanced) model pairs whose settings differ only in class_balance."""
    params = r["run_params"]
    pairs = []
    for a, pa in params.items():
        for b, pb in params.items():
            if a != b and pa["class_balance"] == "none" and pb["class_balance"] != "none" and \
                    {k for k in pa if pa[k] != pb.get(k)} <= {"model", "class_balance"}:
                pairs.append((a, b))
    return pairs


def balance_comparison(r: dict, alpha: float = 0.05) -> str:
    """The default (no balancing) against class-balanced training of the same model."""
    pairs = balance_pairs(r)
    if not pairs:
        return ("No run in this study differs from another only in class balancing "
                "(add e.g. `tsm_balanced` to the study's models for the comparison).")
    s = r["summary"].set_index("model")
    out = []
    for a, b in pairs:
        t = pair_row(r, a, b)
        how = r["run_params"][b]["class_balance"]
        text = (f"{b} is {a} trained with class balancing by {'sampling' if how == 'sampler' else 'loss weighting'}: "
                f"top-1 {pct(s.loc[b, 'top1'])} against {pct(s.loc[a, 'top1'])}, mean class accuracy "
                f"{pct(s.loc[b, 'mean_class_acc'])} against {pct(s.loc[a, 'mean_class_acc'])}, macro-F1 "
                f"{pct(s.loc[b, 'macro_f1'])} against {pct(s.loc[a, 'macro_f1'])}.")
        if t is not None:
            verdict = ("a significant difference" if t["p_value"] < alpha else "not a significant difference")
            text += f" On the same {int(t['n_clips'])} test clips that is {verdict} in top-1 (McNemar's test, {p_text(t['p_value'])})."
        out.append(text)
    return " ".join(out)


def diagnosis_table(d: pd.DataFrame) -> str:
    lines = ["| Model | Epochs | s / epoch | Train loss, first → last | Best val epoch (top-1) | Verdict |",
             "|---|---|---|---|---|---|"]
    for row in d.itertuples():
        lines.append(f"| {row.model} | {row.epochs} | {row.epoch_time_s:.1f} | {row.loss_first:.2f} → {row.loss_last:.2f} | "
                     f"{row.best_epoch} ({pct(row.best_val_top1)}) | {row.verdict} |")
    return "\n".join(lines)


def model_story(r: dict, model: str) -> str:
    """What one model's curves say about its score (used for SlowFast and the weakest model)."""
    from .diagnose import VERDICTS
    d = r["diagnosis"].set_index("model")
    s = r["summary"].reset_index(drop=True)
    if model not in d.index or model not in set(s["model"]):
        return ""
    f, rank = d.loc[model], int(s.index[s["model"] == model][0]) + 1
    p = r["run_params"][model]
    text = (f"{model} ranks {rank} of {len(s)} ({pct(s.loc[rank - 1, 'top1'])} test top-1). Its curves say: "
            f"{VERDICTS[f['verdict']]} (training loss {f['loss_first']:.2f} → {f['loss_last']:.2f} over "
            f"{int(f['epochs'])} epochs; best validation top-1 {pct(f['best_val_top1'])} at epoch {int(f['best_epoch'])}). ")
    fastest = d["epoch_time_s"].idxmin()
    if fastest != model:
        text += (f"An epoch cost it {f['epoch_time_s']:.1f} s, {f['epoch_time_s'] / d.loc[fastest, 'epoch_time_s']:.1f} times "
                 f"{fastest}'s; {p['profile']} gave it {int(f['epochs'])} epochs at lr {p['lr']} "
                 f"(batch {p['batch_size']}, {p['clip_len'] if p['sampling'] == 'clip' else p['num_segments']} "
                 f"{'frames per clip' if p['sampling'] == 'clip' else 'segments'}). ")
    return text


def discussion(r: dict) -> str:
    """SlowFast (the original study's worst) and the weakest model, explained from their curves."""
    if r["diagnosis"].empty:
        return ""
    s = r["summary"]
    picks = [m for m in ("slowfast",) if m in set(s["model"])]
    if s.iloc[-1]["model"] not in picks and len(s) > 1:
        picks.append(s.iloc[-1]["model"])
    return " ".join(t for t in (model_story(r, m) for m in picks) if t)


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
        ("md", confusions_text(r)),
        *([("img", str(r["eval"] / "confusion_gallery.png"))] if (r["eval"] / "confusion_gallery.png").is_file() else []),
        ("md", f"## {t}: class imbalance"), ("md", balance_comparison(r)),
        ("md", f"## {t}: compute cost and the real-time verdict"),
        ("md", cost_table(r["summary"], r["cost"]) if r["cost"] else "No cost measurements."),
        ("md", detector_text(r)),
        ("img", str(r["eval"] / "pareto.png")),
        ("md", recommendation(r)),
        ("md", f"## {t}: what the training curves say"),
        ("md", "Read from each run's `log.csv` (`evaluation/diagnosis.csv`):"),
        ("md", diagnosis_table(r["diagnosis"]) if not r["diagnosis"].empty else "No training logs."),
        ("md", discussion(r)),
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
        for f in r["failed"].itertuples():
            fold = getattr(f, "fold", 0)   # a column since k-fold; NaN/0: the prepared split
            lines.append(f"- {f.model} seed {f.seed}" + (f" fold {int(fold)}" if pd.notna(fold) and fold else "")
                         + f": {f.error} (`{f.notebook}`)")
    lines += ["", "Resolved parameters, configs and library versions of each run are in "
              f"`results/{r['study']}/{'' if r['target'] == 'action' else r['target'] + '/'}models/<model>/"
              f"{'seed<k>_fold<i>' if folds(r) else 'seed<k>'}/` (`params.json`, `config.py`, `provenance.json`)."]
    return "\n".join(lines)
