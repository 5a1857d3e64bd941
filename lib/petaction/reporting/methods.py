"""The report's dataset and methods: the split, each model's architecture, input, init and
schedule, the tuning effort, the checkpoint kept, how the numbers were tested (Holm's family),
and the runs that differ only in where their weights started."""
from __future__ import annotations

import json

import pandas as pd

from ..core.fmt import num
from ..evaluation import transfer
from ..models import pretrained
from . import effort, trialtext
from .common import counts_line, decisions, folds, md_table, r_params


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


def kept_text(r: dict) -> str:
    """Which checkpoint the runs report (the checkpoint train parameter)."""
    rules = sorted({q.get("checkpoint", "best") for q in r_params(r)})
    words = {"best": "the checkpoint with the best validation top-1", "last": "the last checkpoint of its schedule"}
    return " or ".join(words[k] for k in rules) + (" (it differs between models)" if len(rules) > 1 else "")
