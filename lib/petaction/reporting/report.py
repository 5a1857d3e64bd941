"""The paper-style report: every sentence with a number is generated from the study's files.
This module reads them (load), writes the abstract, results and conclusion, and lays out the
sections; methods.py and realtime.py write the methods and the real-time parts, common.py
holds what they share (their names are importable from here too).

notebooks/report.ipynb calls these functions and shows their Markdown; render.py turns the
executed notebook into report/<study>.html and .pdf (code hidden). The report decides
nothing: which model is best, which is recommended and which claims hold (with their tests
and corrected p-values) are read from the evaluation's decisions.json (evaluate.decide).
"""
from __future__ import annotations

import json

import pandas as pd

from ..core import paths
from ..core.fmt import num, p_text, pct, pts  # noqa: F401  (report.pct etc.: the tests' and notebooks' names)
from ..models import pretrained
from . import checkpoint_section, gradcam_section, overtrials, trialtext
from .common import (MAX_COLUMNS, TABLE_COLUMNS, budget_note, claim, counts_line, decisions,  # noqa: F401
                     folds, majority_baseline, md_table, test_name, test_set)
# the methods' and the real-time parts' writers, by the names notebooks and tests use (report.X)
from .methods import (dataset, holm_text, init_text, inits_short, methods, schedule_text,  # noqa: F401
                      statistics_text, transfer_section)
from .realtime import cost_table, detector_text, e2e_text, recommendation  # noqa: F401


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
