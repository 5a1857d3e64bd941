"""The paper-style report: every sentence with a number is generated from the study's files.

notebooks/report.ipynb calls these functions and shows their Markdown; render.py turns the
executed notebook into report/<study>.html and .pdf (code hidden). The report decides
nothing: which model is best, which is recommended and which claims hold (with their tests
and corrected p-values) are read from the evaluation's decisions.json (evaluate.decide).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..core import paths
from ..core.fmt import num, p_text, pct, pts  # noqa: F401  (report.pct etc.: the tests' and notebooks' names)
from ..evaluation import transfer
from ..models import pretrained
from . import checkpoint_section, effort, gradcam_section, overtrials, trialtext

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


def load(study: str = "default", results_dir=None, target: str = "action") -> dict:
    """Everything the report shows, read from the study's files."""
    root = paths.target_dir(study, target, results_dir)
    data, ev = root / "data", root / "evaluation"
    if not (ev / "decisions.json").is_file():
        raise FileNotFoundError(f"{ev / 'decisions.json'} is missing: run the evaluation again "
                                f"(papermill notebooks/evaluate.ipynb out.ipynb -p study {study})")
    r = {"study": study, "target": target, "root": root, "data": data, "eval": ev, "results_dir": results_dir,
         "prepare": json.loads((data / "prepare.json").read_text()),
         "classes": json.loads((data / "classes.json").read_text()),
         "counts": pd.read_csv(data / "summary.csv"),
         "summary": pd.read_csv(ev / "summary.csv"),
         "runs": pd.read_csv(ev / "runs.csv"),
         "per_class": pd.read_csv(ev / "per_class.csv", index_col="class"),
         "failed": pd.read_csv(ev / "failed.csv"),
         "decisions": json.loads((ev / "decisions.json").read_text())}
    r["diagnosis"] = pd.read_csv(ev / "diagnosis.csv") if (ev / "diagnosis.csv").is_file() else pd.DataFrame()
    r["cost"] = json.loads((ev / "cost.json").read_text()) if (ev / "cost.json").is_file() else None
    r["detector"] = json.loads((ev / "detector.json").read_text()) if (ev / "detector.json").is_file() else None
    r["transfer"] = pd.read_csv(ev / "transfer.csv") if (ev / "transfer.csv").is_file() else None
    r["trials"] = pd.read_csv(ev / "trials.csv") if (ev / "trials.csv").is_file() else None
    r["run_params"], r["run_config"], r["run_provenance"], r["init"] = {}, {}, {}, {}
    trial = 1 if r["prepare"]["params"].get("trials") else 0   # runs.csv holds trial 1's runs (the prepared split)
    for row in r["runs"].itertuples():   # with folds: fold 1's run stands for the others (same settings)
        run = root / "models" / row.model / paths.run_name(row.seed, 1 if folds(r) else 0, trial)
        r["run_params"][row.model] = json.loads((run / "params.json").read_text())
        r["init"].setdefault(row.model, pretrained.load_report(run))
        r["run_config"].setdefault(row.model, run_config(run))
        r["run_provenance"][(row.model, row.seed)] = json.loads((run / "provenance.json").read_text())
    return r


def run_config(run) -> dict:
    """The parts of a run's resolved config.py the methods section describes."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(run / "config.py"), import_custom_modules=False)
    return {"param_scheduler": [dict(s) for s in cfg.get("param_scheduler", [])],
            "optimizer": dict(cfg.optim_wrapper.optimizer), "max_epochs": int(cfg.train_cfg.max_epochs)}


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


def table(summary: pd.DataFrame) -> str:
    """The comparison table as Markdown (mean over seeds; ± std where several seeds), in the
    selection order, with each model's training budget beside its accuracy."""
    cols = [c for c in TABLE_COLUMNS if c in summary.columns and summary[c].notna().any()
            or (c == "top1_ci" and "top1_ci_low" in summary) or c in ("train_steps", "train_cpu_s")]
    rows = []
    for _, row in summary.iterrows():
        cells = {}
        for c in cols:
            v = row.get(c)
            if c == "model":
                cells[c] = str(v)
            elif c == "n_seeds":
                cells[c] = num(v)
            elif c in ("train_steps", "train_cpu_s"):
                cells[c] = num(v)
            elif c == "top1_ci":
                cells[c] = f"{pct(row['top1_ci_low'])} to {pct(row['top1_ci_high'])}"
            else:
                sd = row.get(c + "_std")
                cells[c] = pct(v) + (f" ± {100 * sd:.1f}" if sd is not None and pd.notna(sd) else "")
        rows.append(cells)
    return md_table(pd.DataFrame(rows, columns=cols).rename(columns=TABLE_COLUMNS))


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


def abstract(r: dict) -> str:
    s, p, d = r["summary"].set_index("model"), r["prepare"], decisions(r)
    best = d["best"]
    source = "the embedded synthetic set in the AI-Hub format" if not p["params"]["data_root"] else \
        f"the AI-Hub data at `{p['params']['data_root']}`"
    text = (f"We train {len(s)} mmaction2 video recognisers ({inits_short(r)}) on {source} "
            f"({counts_line(r)}) and compare them {test_set(r)}. ")
    if trialtext.over(r):   # the study ran trials: the conclusions are the confirmed models' over them
        return trialtext.abstract(r, text)
    chosen = "validation top-1" if d["selection"] == "validation" else "test top-1 (no validation scores were saved)"
    text += (f"Selected by {chosen}, {best} reaches test top-1 {pct(s.loc[best, 'top1'])} and mean class "
             f"accuracy {pct(s.loc[best, 'mean_class_acc'])}")
    c = claim(r, "leader")
    if c is not None:
        other = c["b"] if c["a"] == best else c["a"]
        if c["winner"]:
            loser = other if c["winner"] == best else best
            text += f"; {c['winner']} beats {loser} on test ({test_name(c)})"
        else:
            text += (f"; its difference from {other} ({pct(s.loc[other, 'top1'])}) is not significant "
                     f"({test_name(c)})")
    return text + "." + budget_note(r, [m for m in (best, d.get("runner_up")) if m])


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
    used = ("models are selected on validation and the test split is used once, for the claims"
            if decisions(r)["selection"] == "validation" else
            "no validation scores were saved, so the models are ranked on the test split: nothing here is a held-out test")
    text = (f"The prepared dataset has {counts_line(r)}. Clips were split {policy}; {used}. "
            f"{r['prepare']['rejected']} clips or files were "
            f"rejected during preparation (each with its reason in `data/rejected.csv`), and "
            f"{r['prepare']['text_mismatch']} kept clips have a Korean action text that does not match their code. "
            f"Frames were cropped to the labelled pet box (margin {p['margin']}) and resized to "
            f"{p['short_side']} px.")
    if folds(r):
        text += (f" For cross-validation the clips were also dealt into {folds(r)} folds, stratified by class"
                 + (f" (whole `{p['group_by']}` groups)" if p["group_by"] else "") + "; each model trains "
                 f"{folds(r)} times, fold i held out as test and the rest split train/val in the same ratio, "
                 "and the tables pool the folds' test predictions (the s.d. column is the fold-to-fold spread).")
    oo = decisions(r)["order_only"]
    if oo["classes"]:
        text += (f" The classes {', '.join(oo['classes'])} visit the same poses in opposite order: "
                 "no single frame, nor an unordered set of frames, tells them apart.")
    return text


def schedule_text(cfg: dict) -> str:
    """The learning-rate schedule, read from a run's resolved param_scheduler."""
    opt, epochs = cfg["optimizer"], cfg["max_epochs"]
    parts, at = [], 0
    for s in sorted(cfg["param_scheduler"], key=lambda s: s.get("begin", 0)):
        b, e = int(s.get("begin", 0)), int(min(s.get("end", epochs), epochs))
        if b > at:
            parts.append(f"held at the peak over epochs {at} to {b}")
        if s["type"] == "LinearLR":
            parts.append(f"linear warm-up from {s.get('start_factor', 1 / 3):g} to {s.get('end_factor', 1.0):g} "
                         f"times the peak over epochs {b} to {e}")
        elif s["type"] == "CosineAnnealingLR":
            parts.append(f"cosine decay to {s.get('eta_min') or 0:g} over epochs {b} to {e}")
        else:
            parts.append(f"{s['type']} over epochs {b} to {e}")
        at = e
    if at < epochs:
        parts.append(f"held over epochs {at} to {epochs}")
    step = "per iteration" if any(s.get("convert_to_iter_based") for s in cfg["param_scheduler"]) else "per epoch"
    how = ", then ".join(parts) + f" (stepped {step})" if parts else "a constant rate"
    return f"{opt['type']} at peak lr {opt['lr']:g}: {how}"


def schedules(r: dict) -> str:
    """One sentence per distinct schedule, naming the models that share it."""
    groups = {}
    for model in r["summary"]["model"]:
        if model in r.get("run_config", {}):
            groups.setdefault(schedule_text(r["run_config"][model]), []).append(model)
    if len(groups) == 1:
        return f"Every model trains with {next(iter(groups))}."
    return " ".join(f"{', '.join(ms)}: {text}." for text, ms in groups.items())


def methods(r: dict) -> str:
    from ..training import detection
    from ..models import mmconfig
    rows = []
    for model in r["summary"]["model"]:
        p = r["run_params"][model]
        build = detection.model_dict if detection.is_fast_rcnn(p) else mmconfig.model_dict   # no cls_head
        m = build(p, len(r["classes"]["classes"]))
        bb = m["backbone"]
        depth = f"-{bb['depth']}" if "depth" in bb else ""
        inp = (f"{p['num_segments']} segments" if p["sampling"] == "segments"
               else f"{p['clip_len']} frames x{p['frame_interval']}") + f", {p['img_size']} px"
        rows.append({"Model": model, "Recognizer": m["type"], "Backbone": f"{bb['type']}{depth}", "Input": inp,
                     "Init": p.get("init", pretrained.SCRATCH), "Epochs": p["epochs"], "lr": p["lr"],
                     "Batch": p["batch_size"]})
    extra = effort.columns(r["run_params"], list(r["summary"]["model"]))   # unequal settings and tuning effort
    lines = [md_table(pd.DataFrame([{**row, **extra[row["Model"]]} for row in rows])), effort.note(), ""]
    prov = next(iter(r["run_provenance"].values()))
    hw, v = prov["hardware"], prov["versions"]
    gpu = ", ".join(hw["gpus"]) or "no GPU"
    balance = sorted({q["class_balance"] for q in r_params(r)})
    lines.append(f"{init_text(r)} Every model trains with mmengine's Runner "
                 f"(class balancing: {', '.join(balance)}) and keeps {kept_text(r)}. {schedules(r)} "
                 f"Hardware: {hw['cpu']} ({hw['cpu_count']} CPUs; training on {hw['torch_threads']} torch "
                 f"thread(s) per run), {gpu}. "
                 f"Software: Python {v['python']}, torch {v['torch']}, mmaction2 {v['mmaction2']}, "
                 f"mmengine {v['mmengine']}, mmcv {v['mmcv']}.")
    lines += ["", statistics_text(r)]
    subset = model_subset(r)
    if subset:
        lines.append(subset)
    return "\n".join(lines)


def inits_short(r: dict) -> str:
    """'from scratch', or e.g. '2 from scratch, 1 from the study's action run', for the abstract."""
    words = [transfer.init_words(r["run_params"][m].get("init", pretrained.SCRATCH)) for m in r["summary"]["model"]]
    groups = {w: words.count(w) for w in dict.fromkeys(words)}
    if len(groups) == 1:
        return "all " + next(iter(groups))
    return ", ".join(f"{n} {w}" for w, n in groups.items())


def loaded_text(rec: dict | None) -> str:
    """What an init loaded, from the run's init.json (pretrained.load_report)."""
    if rec is None:
        return "its init record (init.json) is missing or from another init: what loaded is unknown"
    head = "the classifier head re-initialised" if rec["head_reinitialised"] else "the classifier head loaded too"
    text = (f"{rec['loaded']} of its {rec['loaded'] + rec['missing']} tensors loaded from {rec['source']}, "
            f"{rec['missing']} kept fresh, {rec['unexpected']} of the checkpoint's not used; {head}")
    ft = rec.get("finetune") or {}
    if ft:
        text += "; fine-tuning settings " + ", ".join(f"{k} {v}" for k, v in ft.items())
    return text


def init_text(r: dict) -> str:
    """Where each run's first weights came from (params.json's init, init.json's counts)."""
    scratch, loaded = [], []
    for m in r["summary"]["model"]:
        init = r["run_params"][m].get("init", pretrained.SCRATCH)
        if pretrained.parse(init).kind == pretrained.SCRATCH:
            scratch.append(m)
        else:
            loaded.append(f"{m} starts {transfer.init_words(init)} (init `{init}`: {loaded_text(r['init'].get(m))})")
    if not loaded:
        return "All models train from scratch (mmaction2's own initialisation, no pretrained weights)."
    out = [f"{', '.join(scratch)} train{'s' if len(scratch) == 1 else ''} from scratch (mmaction2's own "
           "initialisation)."] if scratch else []
    return " ".join(out + [x + "." for x in loaded])


def transfer_section(r: dict) -> list[tuple[str, str]]:
    """The paired comparison of runs that differ only in init (evaluation/transfer.csv), as its own
    section; nothing when the target has no such pair."""
    t = r.get("transfer")
    if t is None or not len(t):
        return []
    title = ("behaviour -> emotion transfer" if r["target"] == "emotion" and any(transfer.is_transfer(x)
             for _, x in t.iterrows()) else "starting from learned weights")
    where = f"results/{r['study']}/{'' if r['target'] == 'action' else r['target'] + '/'}evaluation/transfer.csv"
    return [("md", f"## {r['target'].capitalize()}: {title}"),
            ("md", f"Runs that differ only in where their weights started, on the same test clips (`{where}`); "
                   f"each test is in the {r['target']} target's Holm family:"),
            ("md", transfer.section(t, r["target"], decisions(r)["alpha"])),
            *[("md", x) for x in [source_budgets(r, t)] if x]]


def source_budgets(r: dict, t: pd.DataFrame) -> str:
    """Equal footing: a run started from another run of the study trained on top of that run's
    budget (its metrics.json), which the pair's comparison should not hide."""
    s, out = r["summary"].set_index("model"), []
    for row in t.itertuples():
        p = r["run_params"][row.model_b]
        src = pretrained.source_run({**p, "results_dir": str(r["results_dir"] or "")})
        if src is None or not (src / "metrics.json").is_file():
            continue
        m = json.loads((src / "metrics.json").read_text())
        out.append(f"{row.model_b} trained {num(s.loc[row.model_b].get('train_steps'))} optimizer steps on "
                   f"{r['target']} after the {num(m.get('train_steps'))} its backbone had trained on "
                   f"{pretrained.parse(p['init']).target} ({m['model']} seed {m['seed']}); {row.model_a} trained "
                   f"{num(s.loc[row.model_a].get('train_steps'))} from scratch, so the transferred model has had "
                   "more training in all.")
    return " ".join(out)


def statistics_text(r: dict) -> str:
    """How the numbers were tested, and the family Holm's correction runs over."""
    d = decisions(r)
    seeds = int(r["summary"]["n_seeds"].max())
    chosen = ("on the validation split (each run's selected checkpoint scored on it once)"
              if d["selection"] == "validation" else "on the test split, as no validation scores were saved")
    paired = ("exact McNemar tests on the same test clips" if seeds == 1 else
              f"Cochran-Mantel-Haenszel tests on the same test clips, one stratum per clip holding its "
              f"{seeds} seeds (seeds combined into one test)")
    return (f"Statistics. The best model, the runner-up, the order-only leader and the recommendation are chosen "
            f"{chosen}. Paired comparisons of top-1 are two-sided {paired}; a model is said to have "
            "learned the task only when an exact one-sided binomial test puts its test top-1 above "
            f"always predicting the commonest class. {holm_text(r)}, at "
            f"α = {d['alpha']:g}; a claim holds "
            "only when its corrected test rejects, in the direction of the observed difference. Intervals "
            "are 95% percentile bootstraps over test clips" + (" and seeds" if seeds > 1 else "") +
            " (scipy). docs/statistics.md describes each method.")


def holm_text(r: dict) -> str:
    """The family Holm's correction runs over: with trials, the paired claims over the confirmed
    models' trials (trial_claims.csv); else trial 1's (or the only split's) claims (claims.csv)."""
    d = decisions(r)
    if trialtext.over(r):
        return (f"Holm's correction runs over one family per target: the {len(d.get('trial_claims') or [])} "
                f"paired tests over trials the abstract and conclusion state for the {r['target']} target "
                "(trial_claims.csv; the per-split tests of trial 1 in claims.csv form their own family)")
    return (f"Holm's correction runs over one family per target: the {family_size(d)} tests the report states "
            f"for the {r['target']} target ({d['family']})")


def family_size(d: dict) -> int:
    """The tests Holm's correction ran over: the claims with a corrected p-value (claims.csv's rows)."""
    return sum(c.get("p_holm") is not None for c in d["claims"])


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


def kept_text(r: dict) -> str:
    """Which checkpoint the runs report (the checkpoint train parameter)."""
    rules = sorted({q.get("checkpoint", "best") for q in r_params(r)})
    words = {"best": "the checkpoint with the best validation top-1", "last": "the last checkpoint of its schedule"}
    return " or ".join(words[k] for k in rules) + (" (it differs between models)" if len(rules) > 1 else "")


def majority_baseline(r: dict) -> tuple[str, float]:
    """The commonest class among the scored test clips (pooled over folds) and the top-1 of
    always predicting it."""
    b = decisions(r)["baseline"]["test"]
    return b["class"], float(b["rate"])


def paired_sentence(r: dict) -> list[str]:
    """'A beats B' only when the combined, Holm-corrected paired test says so, in that direction."""
    c = claim(r, "leader")
    if c is None:
        return []
    n = f"the same {c['n_clips']} test clips" + (f" and {c['n_seeds']} seeds" if c["n_seeds"] > 1 else "")
    diff = (f"top-1 difference {c['a']} - {c['b']} {pts(c['diff'])} points, 95% interval "
            f"{pts(c['diff_ci_low'])} to {pts(c['diff_ci_high'])}")
    if c["winner"]:
        loser = c["b"] if c["winner"] == c["a"] else c["a"]
        out = f"{c['winner']} beats {loser} on {n} ({test_name(c)}; {diff})."
    else:
        out = f"The difference between {c['a']} and {c['b']} on {n} is not significant ({test_name(c)}; {diff})."
    per_seed = c.get("per_seed_diff") or []
    if len(per_seed) > 1 and (min(per_seed) < 0 < max(per_seed)):
        out += (" The seeds disagree on its sign (" + ", ".join(pts(x) for x in per_seed) +
                " points by seed).")
    return [out]


def baseline_sentences(r: dict) -> list[str]:
    label, base = majority_baseline(r)
    claims = [c for c in decisions(r)["claims"] if c["kind"] == "baseline"]
    fail = [c for c in claims if c["winner"] != c["a"]]
    each = ", ".join(f"{c['a']} {p_text(c['p_holm'])}" for c in claims)
    if claims and len(fail) == len(claims):
        return [f"No model beats always predicting the commonest test class ({label}, {pct(base)}; "
                f"exact one-sided binomial tests, Holm-corrected {each}): on this data and profile the models "
                "have not learned the task, and the ranking says little."]
    if not fail:
        return [f"Every model beats always predicting the commonest test class ({label}, {pct(base)}; "
                f"exact one-sided binomial tests, Holm-corrected {each})."]
    return [f"{', '.join(c['a'] for c in fail)} do{'es' if len(fail) == 1 else ''} not beat always predicting "
            f"the commonest test class ({label}, {pct(base)}; exact one-sided binomial test, Holm-corrected "
            + ", ".join(f"{c['a']} {p_text(c['p_holm'])}" for c in fail) +
            f"): {'it has' if len(fail) == 1 else 'they have'} not learned the task, whatever the rank."]


def order_only_sentences(r: dict) -> list[str]:
    oo, s = decisions(r)["order_only"], r["summary"].set_index("model")
    if not oo["classes"] or not oo["n_test"]:
        return []
    counts = ", ".join(f"{c} {n}" for c, n in oo["counts"].items())
    out = [f"On the order-only classes ({counts} test clips), a model blind to frame order reaches at best "
           f"{pct(oo['blind_ceiling'])}: it can tell the group from the other classes and then name its commonest "
           "class."]
    lead = oo["leader"]
    if lead is None:
        out.append("No order-only leader was chosen (it needs per-clip validation scores and two models).")
        return out
    out.append(f"The leader on the validation split's order-only clips is {lead}; on the test ones it reaches "
               f"{pct(s.loc[lead, 'top1_order_only'])}.")
    claims = [c for c in decisions(r)["claims"] if c["kind"] == "order_only"]
    won = [c for c in claims if c["winner"] == lead]
    lost = [c for c in claims if c["winner"] and c["winner"] != lead]
    if won:
        out.append(f"On those clips {lead} beats " + ", ".join(
            f"{c['b']} ({pct(c['top1_b'])}, {test_name(c)})" for c in won) + ".")
    if lost:
        out.append(f"On those clips {lead} is beaten by " + ", ".join(
            f"{c['winner']} ({pct(c['top1_b'])}, {test_name(c)})" for c in lost) + ".")
    if not won and not lost:
        out.append(f"On those clips {lead} beats no other model after Holm's correction.")
    return out + order_blind_sentences(r)


def order_blind_sentences(r: dict) -> list[str]:
    """What temporal modelling buys: each model against the order-blind one on the order-only
    clips (the leader's pair comes from the leader's family, see evaluate.decide)."""
    d = decisions(r)
    blind = d["order_only"].get("blind_model")   # None when evaluate made no such family
    if not blind:
        return []
    claims = [c for c in d["claims"] if c["kind"] in ("order_blind", "order_only") and c["b"] == blind]
    beat = [c for c in claims if c["winner"] == c["a"]]
    rest = [c["a"] for c in claims if c["winner"] != c["a"]]
    top1 = r["summary"].set_index("model").loc[blind, "top1_order_only"]
    out = f"{blind} averages its frames' scores and so cannot see their order ({pct(top1)} on those clips)"
    if beat:
        out += "; " + ", ".join(f"{c['a']} ({pct(c['top1_a'])}, {test_name(c)})" for c in beat) + \
            f" beat{'s' if len(beat) == 1 else ''} it there"
    if rest:
        out += "; " + ", ".join(rest) + f" do{'es' if len(rest) == 1 else ''} not, after Holm's correction"
    return [out + "."]


def conclusion(r: dict) -> str:
    """Sentences derived from the numbers and decisions.json: who was selected, which claims
    hold, where models fail."""
    s, pc, d = r["summary"].set_index("model"), r["per_class"], decisions(r)
    if trialtext.over(r):
        return trialtext.conclusion(r, baseline_sentences(r) + [
            f"{len(r['failed'])} run(s) failed and are not in the comparison (see the appendix)."] * bool(len(r["failed"])))
    best = d["best"]
    chosen = "validation" if d["selection"] == "validation" else "test (no validation scores were saved)"
    out = [f"{best} has the highest {chosen} top-1 ({pct(s.loc[best, 'val_top1' if chosen == 'validation' else 'top1'])}) "
           f"and reaches {pct(s.loc[best, 'top1'])} on test."]
    out += paired_sentence(r)
    note = budget_note(r)
    if note:
        out.append(note.strip())
    out += baseline_sentences(r)
    if len(s) > 1:
        worst = d["ranking"][-1]
        out.append(f"The weakest model on {chosen.split(' ')[0]} is {worst} ({pct(s.loc[worst, 'top1'])} test top-1).")
    if best in pc:
        col = pc[best].dropna()
        if len(col):
            hardest = col.sort_values(kind="stable").index[:2].tolist()
            out.append(f"{best}'s hardest classes are " + " and ".join(f"{c} ({pct(col[c])})" for c in hardest) + ".")
    out += order_only_sentences(r)
    if len(r["failed"]):
        out.append(f"{len(r['failed'])} run(s) failed and are not in the comparison (see the appendix).")
    return " ".join(out)


def cost_table(summary: pd.DataFrame, cost: dict) -> str:
    """Accuracy beside what each model costs (evaluation/cost.csv); GPU columns where one was present."""
    by_model = {row["model"]: row for row in cost["rows"]}
    batch = cost["rows"][0].get("throughput_batch", "") if cost["rows"] else ""
    gpu = any("gpu_latency_ms" in row for row in cost["rows"])
    e2e = "e2e_latency_p90_ms" in summary and summary["e2e_latency_p90_ms"].notna().any()
    hz = f"{cost['update_hz']:g}/s"
    rows = []
    for row in summary.to_dict("records"):
        c = by_model.get(row["model"], {})
        cells = {"Model": row["model"], "Top-1": pct(row["top1"])}
        if e2e:
            cells.update({"With detector, median (p90) ms": f"{num(row['e2e_latency_ms'], '{:.1f}')} "
                                                           f"({num(row['e2e_latency_p90_ms'], '{:.1f}')})",
                          f"Keeps up with detector at {hz}": verdict(row.get("realtime_e2e")),
                          "Headroom with detector": num(row.get("headroom_e2e"), "{:.1f}x")})
        cells.update({"Network latency, median (p90) ms": f"{num(row['cpu_latency_ms'], '{:.1f}')} "
                                                          f"({num(row['cpu_latency_p90_ms'], '{:.1f}')})",
                      f"Network alone keeps up at {hz}": verdict(row.get("realtime")),
                      "Params (M)": num(row["params_m"], "{:.2f}"), "GFLOPs / clip": num(row["gflops"], "{:.3f}"),
                      f"CPU clips/s (batch {batch})": num(c.get("cpu_throughput_cps")),
                      f"Peak memory, MB (batch 1 / {batch})": f"{num(c.get('peak_mem_mb'))} / "
                                                              f"{num(c.get('peak_mem_batch_mb'))}"})
        if gpu:
            cells.update({"GPU latency ms": num(c.get("gpu_latency_ms"), "{:.2f}"),
                          "GPU clips/s": num(c.get("gpu_throughput_cps"))})
        rows.append(cells)
    return md_table(pd.DataFrame(rows))


def verdict(v) -> str:
    """yes / no / not measured: a missing verdict is never read as keeping up."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "not measured"
    return "yes" if v is True or str(v) == "True" or v == 1 else "no"


def has_fast_rcnn(r: dict) -> bool:
    from ..training.detection import is_fast_rcnn
    return any(is_fast_rcnn(p) for p in r.get("run_params", {}).values())


def detector_text(r: dict) -> str:
    """The pet detector: its box AP on the test frames and what it adds to every prediction."""
    d = r.get("detector")
    if not d:
        return ("No pet detector was trained in this study (`detector: true` in the study's parameters): "
                "the latencies are the networks' alone, with the pet's box given.")
    text = (f"In real use nobody hands the model the pet's box: the study's pet detector ({d['detector']}, "
            f"trained from scratch on the whole frames' boxes, {d['img_size']} px) finds it with test box AP "
            f"{d['box_ap']:.3f} (AP50 {d['box_ap50']:.3f}, AP75 {d['box_ap75']:.3f}; COCO metric on "
            f"{d['n_images']['test']} test frames) in {d['cpu_latency_ms']:.1f} ms (p90 {d['cpu_latency_p90_ms']:.1f} ms) "
            f"per frame. {detector_selection(d)} A recogniser here was trained on frames each cropped to its own box, "
            "so every frame it sees needs a detection")
    if has_fast_rcnn(r):
        text += "; fast_rcnn needs one, its key frame's RoI"
    return text + (". The end-to-end columns add those detections to the model's latency; the real-time "
                   "verdict, the Pareto front and the recommendation use them. " + accuracy_source(r))


def detector_selection(d: dict) -> str:
    """How the detector's tested weights were chosen (its metrics.json's selection, via detector.json)."""
    sel = d.get("selection")
    if not sel:
        return ("Which of its epochs was kept is not recorded (a detector run from before it was): train the "
                "detector again for a checkpoint chosen on validation.")
    split = {"val": "validation"}.get(sel["split"], sel["split"])
    return (f"Its weights are those of the epoch with the best {split} box AP ({sel['metric']}: epoch "
            f"{sel['best_epoch']} of {sel['epochs']}, {split} AP {sel['val_box_ap']:.3f}), tested once on the test frames.")


def e2e_info(r: dict) -> dict:
    """decisions.json's record of the accuracy measured with the detector's boxes (evaluate.end_to_end)."""
    return (r.get("decisions") or {}).get("e2e") or {"models": [], "skipped": {}, "rows": []}


def accuracy_source(r: dict) -> str:
    """Where the accuracy and the cost come from (labelled boxes against a cost with the detector)."""
    text = ("Every accuracy in the tables was measured on the labelled (ground-truth) pet boxes, while the "
            "end-to-end cost includes the detector")
    if e2e_info(r)["rows"]:
        return text + ": the recommendation below also gives the accuracy with the detector's own boxes."
    return text + (": no model's accuracy was measured with the detector's boxes, so the deployed pipeline's "
                   "accuracy may be lower than these.")


def e2e_row_text(x: dict) -> str:
    return (f"{x['model']} reaches {pct(x['top1_detector'])} top-1 on the same {x['n_clips']} test clips against "
            f"{pct(x['top1_labelled'])} on the labelled boxes (seed {x['seed']}): a paired difference of "
            f"{pts(x['diff'])} points (95% bootstrap interval {pts(x['diff_ci_low'])} to {pts(x['diff_ci_high'])}; "
            f"{x['test']} {p_text(x['p_value'])})")


def e2e_text(r: dict, model: str | None) -> str:
    """The accuracy of the deployed pipeline (evaluation/e2e.csv): the test clips cut around the
    detector's boxes and scored by the same model; said for the recommended model first."""
    info = e2e_info(r)
    rows = sorted(info["rows"], key=lambda x: x["model"] != model)
    out = []
    if rows:
        first = rows[0]
        out.append(f"With the pet detector's boxes instead of the labelled ones (`evaluation/e2e.csv`), "
                   + e2e_row_text(first) + ". The detector's boxes overlap the labelled ones with mean IoU "
                   f"{first['mean_iou']:.2f} ({pct(first['frames_iou50'])} of the test frames at IoU 0.5 or more"
                   + (f"; {first['frames_no_box']} frames before its first box, seen whole" if first["frames_no_box"] else "")
                   + ")." + (" This accuracy and the verdict's cost describe the same pipeline." if first["model"] == model else ""))
        out += [e2e_row_text(x) + "." for x in rows[1:]]
        out.append("These paired differences describe one model's pipeline each and are not in the Holm family.")
    for m, why in info["skipped"].items():
        out.append(f"{m}'s accuracy with the detector's boxes was not measured: {why}.")
    return " ".join(out)


def recommendation(r: dict) -> str:
    """Which model to run in real time: decisions.json's recommendation, in words."""
    from ..evaluation.cost import pareto_front
    s, c, rec = r["summary"], r["cost"], decisions(r)["recommendation"]
    if c is None or rec["reason"] == "no_cost":
        return "No cost measurements."
    hz, hw = c["update_hz"], c["hardware"]
    lat, head = rec["latency_column"], rec["headroom_column"]
    e2e = lat.startswith("e2e")
    by = s.set_index("model")
    out = [f"At {hz:g} prediction(s) per second on {hw['cpu']} ({c['torch_threads']} torch threads, batch 1, "
           f"{'end to end, the pet detector included' if e2e else 'network only'}), {len(rec['keeps_up'])} of "
           f"{len(s)} models keep up" + (f" ({', '.join(rec['unknown'])} not measured)" if rec["unknown"] else "") + "."]
    front = pareto_front(s, x=lat)
    out.append("The test accuracy-latency Pareto front, fastest first: " + " → ".join(
        f"{m} ({pct(by.loc[m, 'top1'])}, {by.loc[m, lat]:.0f} ms)" for m in front) + ".")
    if trialtext.over(r):
        return " ".join(out + [trialtext.recommendation(r)])
    margin = f"{100 * rec['margin']:g} points"
    reason = rec["reason"]
    if reason == "none_keep_up":
        out.append("Recommendation: none of these keeps up on this machine; lower the update rate or use a GPU.")
    elif reason == "no_val_scores":
        out.append("Recommendation: none. No run saved per-clip validation scores (`val_scores.npz`; runs "
                   "trained before it existed), so none can be chosen on validation: train them again.")
    elif reason == "none_learned":
        out.append("Recommendation: none. No model that keeps up beats the majority baseline on validation.")
    elif reason == "fails_test_baseline":
        out.append(f"Recommendation: none. {rec['vetoed']} was chosen on validation, but on test it does not "
                   "beat always predicting the commonest class, so it has not learned the task.")
    else:
        m, pick = rec["model"], rec["pick"]
        why = (f"It keeps up with {by.loc[m, head]:.1f}x headroom ({by.loc[m, lat]:.0f} ms per prediction"
               f"{', the detector included' if e2e else ''})")
        if reason == "faster_non_inferior":
            cand = next(x for x in rec["candidates"] if x["model"] == m)
            out.append(f"Recommendation: {m}. {why}, {by.loc[pick, lat] / by.loc[m, lat]:.1f} times faster than "
                       f"{pick} (the best on validation among the models that keep up), and is non-inferior to it "
                       f"within {margin} on validation: top-1 difference {pts(cand['val_diff'])} points, 95% "
                       f"bootstrap interval {pts(cand['val_diff_ci_low'])} to {pts(cand['val_diff_ci_high'])}, "
                       f"above -{100 * rec['margin']:g}.")
        else:
            out.append(f"Recommendation: {m}, the best on validation among the models that keep up and beat the "
                       f"majority baseline. {why}.")
            worse = [x for x in rec["candidates"] if not x["non_inferior"]]
            if worse:
                out.append(f"No faster model is non-inferior within {margin} on validation: " + "; ".join(
                    f"{x['model']} {pts(x['val_diff'])} points (95% interval {pts(x['val_diff_ci_low'])} to "
                    f"{pts(x['val_diff_ci_high'])})" for x in worse) + ".")
        note = budget_note(r, [x for x in dict.fromkeys([m, pick] + [x["model"] for x in rec["candidates"]])])
        if note:
            out.append(note.strip())
    if e2e:
        out.append(e2e_text(r, rec["model"]) or accuracy_source(r))
    return " ".join(t for t in out if t)


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


def balance_comparison(r: dict) -> str:
    """The default (no balancing) against class-balanced training of the same model."""
    claims = [c for c in decisions(r)["claims"] if c["kind"] == "balance"]
    if not claims:
        return ("No run in this study differs from another only in class balancing "
                "(add e.g. `tsm_balanced` to the study's models for the comparison).")
    s = r["summary"].set_index("model")
    out = []
    for c in claims:
        a, b = c["a"], c["b"]
        how = r["run_params"][b]["class_balance"]
        text = (f"{b} is {a} trained with class balancing by {'sampling' if how == 'sampler' else 'loss weighting'}: "
                f"top-1 {pct(s.loc[b, 'top1'])} against {pct(s.loc[a, 'top1'])}, mean class accuracy "
                f"{pct(s.loc[b, 'mean_class_acc'])} against {pct(s.loc[a, 'mean_class_acc'])}, macro-F1 "
                f"{pct(s.loc[b, 'macro_f1'])} against {pct(s.loc[a, 'macro_f1'])}.")
        verdict_ = (f"{c['winner']} is better" if c["winner"] else "not a significant difference")
        text += f" On the same {c['n_clips']} test clips that is {verdict_} in top-1 ({test_name(c)})."
        out.append(text)
    return " ".join(out)


def diagnosis_table(d: pd.DataFrame) -> str:
    rows = [{"Model": row.model, "Epochs": row.epochs, "s / epoch": f"{row.epoch_time_s:.1f}",
             "Train loss, first → last": f"{row.loss_first:.2f} → {row.loss_last:.2f}",
             "Best val epoch (top-1)": f"{row.best_epoch} ({pct(row.best_val_top1)})", "Verdict": row.verdict}
            for row in d.itertuples()]
    return md_table(pd.DataFrame(rows))


def model_story(r: dict, model: str) -> str:
    """What one model's curves say about its score (used for SlowFast and the weakest model)."""
    from ..evaluation.diagnose import VERDICTS
    d = r["diagnosis"].set_index("model")
    ranking = decisions(r)["ranking"]
    s = r["summary"].set_index("model")
    if model not in d.index or model not in ranking:
        return ""
    f, rank = d.loc[model], ranking.index(model) + 1
    p = r["run_params"][model]
    text = (f"{model} ranks {rank} of {len(ranking)} on validation ({pct(s.loc[model, 'top1'])} test top-1). "
            f"Its curves say: {VERDICTS[f['verdict']]} (training loss {f['loss_first']:.2f} → {f['loss_last']:.2f} over "
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
    ranking = decisions(r)["ranking"]
    picks = [m for m in ("slowfast",) if m in ranking]
    if ranking[-1] not in picks and len(ranking) > 1:
        picks.append(ranking[-1])
    return " ".join(t for t in (model_story(r, m) for m in picks) if t)


def sections(r: dict) -> list[tuple[str, str]]:
    """The body of one target's part of the report: ("md", text) or ("img", PNG path) items."""
    t = r["target"].capitalize()
    where = f"results/{r['study']}/{'' if r['target'] == 'action' else r['target'] + '/'}evaluation"
    return [
        ("md", f"## {t}: dataset"), ("md", dataset(r)), ("img", str(r["data"] / "class_counts.png")),
        ("md", f"## {t}: methods"), ("md", methods(r)), *checkpoint_section.section(r),
        ("md", f"## {t}: results"),
        ("md", "Test-split metrics, recomputed from each run's saved per-clip scores "
               f"(`{where}/summary.csv`), in the order of validation top-1 (the selection), with each model's "
               "training budget; the interval is a bootstrap over test clips"
               + (" and seeds" if r["summary"]["n_seeds"].max() > 1 else "") +
               f"; the claims and their tests are in `{where}/claims.csv`:"),
        ("md", table(r["summary"])),
        ("md", "Training loss and validation top-1 per epoch, the best model's confusion matrix, and "
               "per-class test accuracy:"),
        ("img", str(r["eval"] / "curves.png")), ("img", str(r["eval"] / "confusion_best.png")),
        ("img", str(r["eval"] / "per_class.png")),
        ("md", confusions_text(r)),
        *([("img", str(r["eval"] / "confusion_gallery.png"))] if (r["eval"] / "confusion_gallery.png").is_file() else []),
        *gradcam_section.section(r),
        ("md", f"## {t}: class imbalance"), ("md", balance_comparison(r)),
        *transfer_section(r),
        *overtrials.section(r),
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
    rows = []
    for row in r["runs"].itertuples():
        prov = r["run_provenance"][(row.model, row.seed)]
        rows.append({"Run": f"{row.model} seed {row.seed}", "Commit": f"`{prov['git']['commit'][:10]}`",
                     "Dirty tree": prov["git"]["dirty"], "Time (UTC)": prov["time_utc"],
                     "Train time (s)": f"{row.train_time_s:.0f}"})
    lines = [md_table(pd.DataFrame(rows))]
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
