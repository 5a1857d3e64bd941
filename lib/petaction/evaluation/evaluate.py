"""Cross-model evaluation of a study: every trained run, metrics from its saved scores, and
the decisions the report states (made by decide.py from the scored clips).

    papermill notebooks/evaluate.ipynb out.ipynb -p study default
    python -m petaction evaluate --study default

Writes results/<study>/[<target>/]evaluation/: summary.csv/.json (one row per model, ordered
by validation top-1, the selection), runs.csv (one row per model and seed; with k-fold
cross-validation, each over the test clips of all its folds pooled: every clip tested once,
by the fold that held it out), folds.csv (one row per model, seed and fold), per_class.csv,
confusion_<model>.csv, confusions.csv (the best model's commonest mistakes, each with its
most confident example clip), failed.csv (runs that did not finish, with their error), PNG
figures, and the decisions: decisions.json (best and recommended model, chosen on
validation; every claim with its test and Holm-corrected p-value), claims.csv (the same
claims as a table), transfer.csv (runs that differ only in init, paired: transfer.py) and
e2e.csv (the recommended model's test top-1 with the pet detector's boxes instead of the
labelled ones, paired: e2e.py), and gradcam/ (where each model looks: gradcam.py). The report
renders these files and decides nothing itself.
With trials prepared (study `trials: n`), the files above are trial 1's (the prepared split),
and trials.csv (each model over its trials) is added; decisions.json adds the confirm set (the
models trial 1's validation decisions involve, which the study trains on trials 2..n: confirm.py)
and over_trials (best, recommendation and paired claims over the trials of the confirmed models:
overtrials.py), whose claims are trial_claims.csv. Before anything is stated, leaks.check
refuses a run whose dependency chain (its init sources, the e2e detector) trained or selected on its test clips.

Selection uses the validation split only (each run's val_scores.npz: the selected
checkpoint's per-clip validation scores; log.csv's best validation top-1 where a run has
none); the test split is used for the claims, once. docs/statistics.md lists the methods.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import (checkpoint_rule, confirm, cost, costcache, diagnose, explore, figures, gradcam, leaks, overtrials, stats,
               transfer, trials)
from ..core import atomic, lock, metrics, paths
# the decisions (decide.py), by the names notebooks and tests use (evaluate.X)
from .decide import (ALPHA, MARGIN, Scored, balance_pairs, check_order_blind, decide,  # noqa: F401
                     recommend)

COST_COLUMNS = ["model", "params_m", "gflops", "cpu_latency_ms", "cpu_latency_p90_ms", "realtime", "headroom",
                "cpu_throughput_cps", "peak_mem_mb"]
E2E_COLUMNS = ["detector_ms", "e2e_latency_ms", "e2e_latency_p90_ms", "realtime_e2e", "headroom_e2e"]
METRIC_COLUMNS = ["top1", "top3", "top5", "mean_class_acc", "macro_f1", "top1_order_only"]
VAL_COLUMNS = ["val_top1", "val_mean_class_acc", "val_top1_order_only"]
BUDGET_COLUMNS = ["train_steps", "train_cpu_s"]


def find_runs(root: Path, k: int = 0, n: int = 0) -> tuple[list[Path], list[dict]]:
    """Finished runs (with metrics.json and test scores) and failed ones (with error.json):
    the runs on the prepared split, or with k folds prepared, the fold runs, or with n trials
    prepared, the trial runs."""
    done, failed = [], []
    for run in sorted((root / "models").glob("*/seed*")):
        try:
            seed, fold = paths.parse_run(run)
        except ValueError:
            continue
        if bool(fold) != bool(k) or bool(paths.run_trial(run)) != bool(n):
            continue
        if (run / "metrics.json").is_file() and (run / "test_scores.npz").is_file():
            bad = [f.name for f in (run / "metrics.json", run / "test_scores.npz") if not atomic.readable(f)]
            if not bad:
                done.append(run)
                continue
            print(f"[redo] {run}: {', '.join(bad)} cannot be read (a write was cut short): "
                  "its training is not done; re-run it")
            failed.append({"model": run.parent.name, "seed": seed, "fold": fold,
                           "error": f"{', '.join(bad)} cannot be read: re-run the training"})
        elif (err := atomic.read_json(run / "error.json")) is not None:
            failed.append({"model": run.parent.name, "seed": seed, "fold": fold, **err})
    return done, failed


def load_scores(run: Path, split: str = "test") -> dict:
    z = np.load(run / f"{split}_scores.npz")
    return {"ids": z["ids"], "labels": z["labels"], "scores": z["scores"], "classes": list(z["classes"])}


def pooled(done: list[Path], k: int) -> tuple[dict, list[dict]]:
    """Group runs by (model, seed). Without folds each group is one run; with k folds a group
    needs all k (pooling part of them would test on part of the data), and its scores are
    the folds' test scores joined, sorted by clip id. Returns ({(model, seed): [runs]}, failed)."""
    groups, failed = {}, []
    for run in done:
        seed, fold = paths.parse_run(run)
        groups.setdefault((run.parent.name, seed), []).append(run)
    if k:
        for (model, seed), runs in list(groups.items()):
            missing = sorted(set(range(1, k + 1)) - {paths.parse_run(r)[1] for r in runs})
            if missing:
                failed.append({"model": model, "seed": seed, "fold": missing[0],
                               "error": f"folds {missing} of {k} have not finished: pooled results need every fold"})
                del groups[(model, seed)]
    return groups, failed


def join_scores(runs: list[Path]) -> dict:
    """One run's test scores, or several folds' joined (sorted by clip id)."""
    parts = [load_scores(r) for r in runs]
    if any(p["classes"] != parts[0]["classes"] for p in parts):
        raise ValueError("folds trained on different classes")
    ids = np.concatenate([p["ids"] for p in parts])
    order = np.argsort(ids, kind="stable")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("a clip is in the test set of two folds")
    return {"ids": ids[order], "labels": np.concatenate([p["labels"] for p in parts])[order],
            "scores": np.concatenate([p["scores"] for p in parts])[order], "classes": parts[0]["classes"]}


def join_val(runs: list[Path]) -> dict | None:
    """The runs' validation scores (val_scores.npz) in fold order, or None when one lacks them.
    Folds' validation sets overlap (each is carved from the other folds), so a clip may come
    once per fold: the units are (fold, clip), the same for every model."""
    runs = sorted(runs, key=lambda r: paths.parse_run(r)[1])
    if not all(atomic.readable(r / "val_scores.npz") for r in runs):
        return None
    parts = [load_scores(r, "val") for r in runs]
    return {"ids": np.concatenate([p["ids"] for p in parts]), "labels": np.concatenate([p["labels"] for p in parts]),
            "scores": np.concatenate([p["scores"] for p in parts]), "classes": parts[0]["classes"]}


def logged_val_top1(run: Path, best_epoch: int) -> float:
    """The selected epoch's validation top-1 from log.csv (NaN without the log)."""
    if not (run / "log.csv").is_file():
        return float("nan")
    log = pd.read_csv(run / "log.csv")
    hit = log.loc[log["epoch"] == best_epoch, "val_top1"]
    return float(hit.iloc[0]) if len(hit) else float("nan")


def budget(trained: list[dict]) -> dict:
    """Optimizer steps and training CPU seconds (summed over folds; NaN where a run lacks them)."""
    out = {}
    for key in BUDGET_COLUMNS:
        vals = [t.get(key) for t in trained]
        out[key] = float(sum(vals)) if all(v is not None for v in vals) else float("nan")
    return out


def run_row(model: str, seed: int, group: list[Path], s: dict, order_only: list[int], k: int,
            v: dict | None = None) -> tuple[dict, list[dict]]:
    """runs.csv's row for one model and seed (its folds pooled, with the spread between folds)
    and, with folds, folds.csv's rows. ``v``: the joined validation scores (join_val), if any."""
    row = {"model": model, "seed": seed, **metrics.all_metrics(s["scores"], s["labels"], order_only)}
    trained = [json.loads((run / "metrics.json").read_text()) for run in group]
    best = [t["best_epoch"] for t in trained]
    row.update(best_epoch=best[0] if len(best) == 1 else float(np.mean(best)),
               train_time_s=sum(t["train_time_s"] for t in trained), n_folds=k, **budget(trained))
    if v is not None:
        vm = metrics.all_metrics(v["scores"], v["labels"], order_only)
        row.update(val_top1=vm["top1"], val_mean_class_acc=vm["mean_class_acc"],
                   val_top1_order_only=vm["top1_order_only"], val_source="val_scores.npz")
    else:
        row.update(val_top1=float(np.mean([logged_val_top1(r, b) for r, b in zip(group, best)])),
                   val_mean_class_acc=float("nan"), val_top1_order_only=float("nan"), val_source="log.csv")
    per_fold = []
    if k:
        for run in group:
            f = load_scores(run)
            per_fold.append({"model": model, "seed": seed, "fold": paths.parse_run(run)[1],
                             **metrics.all_metrics(f["scores"], f["labels"], order_only)})
        spread = pd.DataFrame(per_fold)
        row.update({f"{c}_fold_std": spread[c].std(ddof=1) for c in ("top1", "mean_class_acc", "macro_f1")})
    return row, per_fold


def n_folds(root: Path) -> int:
    """k when the prepared data holds k cross-validation folds, else 0."""
    info = root / "data" / "prepare.json"
    return int(json.loads(info.read_text())["params"].get("folds", 0)) if info.is_file() else 0


def evaluate(study: str = "default", target: str = "action", results_dir=None, models: list | None = None,
             update_hz: float = 1.0, cost_repeats: int = 15, margin: float = MARGIN, alpha: float = ALPHA,
             e2e_models="recommended", order_blind: str = "tsn") -> dict:
    """``e2e_models``: whose test accuracy is measured again on the detector's boxes (end_to_end):
    "recommended", "all", a list of models, or "none". ``order_blind``: the model blind to frame
    order by design (TSN averages its segments' scores) that every other model is tested against
    on the order-only clips: what temporal modelling buys ("" for none). Under the results
    folder's lock (a study's, or its own when run by hand)."""
    with lock.hold(study, results_dir, what=f"evaluate {study} ({target})"):
        return evaluate_locked(study, target, results_dir, models, update_hz, cost_repeats, margin, alpha,
                               e2e_models, order_blind)


def evaluate_locked(study, target, results_dir, models, update_hz, cost_repeats, margin, alpha, e2e_models,
                    order_blind) -> dict:
    check_order_blind(order_blind)
    root = paths.target_dir(study, target, results_dir)
    meta = json.loads((root / "data" / "classes.json").read_text())
    class_names, order_only = meta["classes"], [meta["classes"].index(c) for c in meta["order_only"]]
    out = root / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    k, n = n_folds(root), trials.n_trials(root)
    done, failed = find_runs(root, k, n)
    if models:
        done = [r for r in done if r.parent.name in models]
    groups, incomplete = pooled(done, k)
    failed += incomplete
    every_trial, groups = groups, trials.first_trial(groups) if n else groups   # trial 1: the prepared split
    # nothing is stated about a run whose chain (init sources, the e2e detector) saw its test clips
    leak_check = leaks.check([r for g in every_trial.values() for r in g], leaks.detector_used(
        study, results_dir, e2e_models, k), detector_runs=[r for g in groups.values() for r in g])
    runs, fold_rows, per_class, logs, confusions = [], [], {}, {}, {}
    test, val = Scored(), Scored()
    for (model, seed), group in groups.items():
        s = join_scores(group)
        if s["classes"] != class_names:
            failed.append({"model": model, "seed": seed, "fold": 0,
                           "error": "trained on other classes than the prepared data has: re-run it"})
            continue
        v = join_val(group)
        row, per_fold = run_row(model, seed, group, s, order_only, k, v)
        runs.append(row)
        fold_rows += per_fold
        test.add(model, seed, s)
        if v is not None:
            val.add(model, seed, v)
        cm = metrics.confusion_matrix(s["labels"], s["scores"].argmax(1), len(class_names))
        confusions.setdefault(model, []).append(cm)
        if (group[0] / "log.csv").is_file():
            logs.setdefault(model, pd.read_csv(group[0] / "log.csv"))
    atomic.to_csv(pd.DataFrame(failed, columns=["model", "seed", "fold", "error", "notebook"]), out / "failed.csv", index=False)
    atomic.to_csv(pd.DataFrame(fold_rows), out / "folds.csv", index=False)
    if not runs:
        raise RuntimeError(f"no finished run under {root / 'models'}; see {out / 'failed.csv'}")
    runs_df = pd.DataFrame(runs)
    atomic.to_csv(runs_df, out / "runs.csv", index=False)
    summary = summarise(runs_df)
    summary.insert(1, "target", target)
    ci = {m: stats.bootstrap_ci(test.matrix(m)) for m in summary["model"]}
    summary["top1_ci_low"] = [ci[m][0] for m in summary["model"]]
    summary["top1_ci_high"] = [ci[m][1] for m in summary["model"]]
    first_seed = {}  # cost depends on the architecture only: one run per model
    for (model, seed), group in groups.items():
        first_seed.setdefault(model, group[0])
    cost_df = cost.measure_runs([first_seed[m] for m in summary["model"]], out, update_hz, cost_repeats)
    det = detector_cost(study, results_dir, out)
    if det is not None:
        cost_df = cost.add_detector(cost_df, det, update_hz)
        atomic.to_csv(cost_df, out / "cost.csv", index=False)
    summary = summary.merge(cost_df[[c for c in COST_COLUMNS + E2E_COLUMNS if c in cost_df]], on="model", how="left")
    run_params = {m: json.loads((r / "params.json").read_text()) for m, r in first_seed.items()
                  if (r / "params.json").is_file()}
    decisions = decide(summary, test, val, class_names, meta["order_only"], run_params, margin, alpha, order_blind)
    decisions["detector"] = det is not None
    decisions["leak_check"] = leak_check
    e2e_df = end_to_end(study, target, results_dir, decisions, first_seed, run_params, e2e_models, k)
    atomic.to_csv(e2e_df, out / "e2e.csv", index=False)
    claims = pd.DataFrame(decisions["claims"])
    atomic.to_csv(claims, out / "claims.csv", index=False)
    if n:   # the models to confirm on trials 2..n (trial 1's validation decisions), and the decisions
        # over the trials of the confirmed ones, their claims one Holm family (trial_claims.csv)
        decisions["confirm"] = confirm.confirm_set(decisions)
        res = trials.results(every_trial, load_scores)
        atomic.to_csv(trials.table(res, alpha), out / "trials.csv", index=False)
        over = overtrials.decide(res, overtrials.val_results(every_trial, load_scores), summary, decisions,
                                 oo_index(class_names, meta), order_blind, margin, alpha, recommend)
        if over is not None:
            decisions["over_trials"] = over
        decisions["trial_claims"] = over["claims"] if over else []
        print(f"over trials: {len(over['confirmed']) if over else 0} confirmed model(s); Holm family of "
              f"{len(decisions['trial_claims'])} paired test(s) (trial_claims.csv)")
        tc = decisions["trial_claims"]
        atomic.to_csv(pd.DataFrame(tc) if tc else pd.DataFrame(columns=["kind", "a", "b", "p_value", "p_holm"]),
                      out / "trial_claims.csv", index=False)
    decisions["checkpoint_rule"] = checkpoint_rule.write([r for g in every_trial.values() for r in g], out)
    atomic.write_json(out / "decisions.json", decisions, indent=1, default=atomic.plain)
    transfer_df = transfer.compare(run_params, test.correct, transfer.records(first_seed), decisions["claims"])
    atomic.to_csv(transfer_df, out / "transfer.csv", index=False)   # the columns alone when no two runs differ in init
    (out / "paired_tests.csv").unlink(missing_ok=True)   # an earlier evaluation's uncorrected table
    atomic.to_csv(summary, out / "summary.csv", index=False)
    atomic.write_text(out / "summary.json", summary.to_json(orient="records", indent=1))
    for model, cms in confusions.items():
        cm = sum(cms)
        atomic.to_csv(pd.DataFrame(cm, index=class_names, columns=class_names), out / f"confusion_{model}.csv")
        per_class[model] = metrics.per_class_accuracy(cm)
    per_class_df = pd.DataFrame(per_class, index=class_names)
    per_class_df.index.name = "class"
    atomic.to_csv(per_class_df, out / "per_class.csv")
    diagnosis = diagnose.table(logs) if logs else pd.DataFrame()
    atomic.to_csv(diagnosis, out / "diagnosis.csv", index=False)
    best = decisions["best"]
    best_run = first_seed[best]
    confusions_df = explore.common_confusions(explore.predictions(study, best, paths.parse_run(best_run)[0], target,
                                                                  results_dir, paths.run_trial(best_run)))
    confusions_df.insert(0, "model", best)
    atomic.to_csv(confusions_df, out / "confusions.csv", index=False)
    figs = {
        "curves": figures.training_curves(logs, out / "curves.png") if logs else None,
        "confusion": figures.confusion(sum(confusions[best]), class_names,
                                       f"Confusion matrix, {best} (test)", out / "confusion_best.png"),
        "per_class": figures.per_class(per_class_df, out / "per_class.png"),
        "pareto": figures.pareto(summary, out / "pareto.png", x=decisions["recommendation"]["latency_column"]),
        "gallery": explore.gallery(root / "data", confusions_df, out / "confusion_gallery.png", id_col="example"),
    }
    if figs["gallery"] is None:   # no mistakes: no gallery (and none left from an earlier evaluation)
        (out / "confusion_gallery.png").unlink(missing_ok=True)
    figs["gradcam"] = gradcam.run(root, {m: first_seed[m] for m in summary["model"]}, out / "gradcam")   # gradcam.json
    return {"summary": summary, "runs": runs_df, "folds": pd.DataFrame(fold_rows), "paired": claims,
            "claims": claims, "decisions": decisions, "failed": pd.DataFrame(failed), "per_class": per_class_df,
            "diagnosis": diagnosis, "cost": cost_df, "transfer": transfer_df, "e2e": e2e_df, "best": best, "figures": figs, "dir": out}


def oo_index(class_names: list[str], meta: dict) -> list[int]:
    return [class_names.index(c) for c in meta["order_only"]]


def detector_cost(study: str, results_dir, out: Path) -> dict | None:
    """The study's pet detector (notebooks/detector.ipynb, trained on the action target's frames):
    its test box AP and how its checkpoint was chosen (on validation) from its metrics.json, and its
    latency, timed again when one of its cost inputs changed (costcache), beside the models;
    written to evaluation/detector.json. None when the study has no trained detector."""
    from ..training import detector
    det_dir = detector.out_dir(study, "action", results_dir)
    (out / "detector.json").unlink(missing_ok=True)
    if not (det_dir / "metrics.json").is_file():
        return None
    trained = json.loads((det_dir / "metrics.json").read_text())
    det = {k: trained[k] for k in ("detector", "box_ap", "box_ap50", "box_ap75", "n_images", "img_size")}
    det["selection"] = trained.get("selection")   # None: a detector run from before it was recorded
    det.update(costcache.cached(out, "detector", costcache.detector_key(det_dir), lambda: detector.measure(det_dir)),
               source=str(det_dir / "metrics.json"))
    atomic.write_json(out / "detector.json", det, indent=1)
    return det


def e2e_choice(which, decisions: dict) -> list[str]:
    """The models whose accuracy end_to_end measures on the detector's boxes."""
    if which in (None, "none", [], ()):
        return []
    if which == "all":
        return list(decisions["ranking"])
    if which == "recommended":
        rec = decisions["recommendation"]
        chosen = rec["model"] or rec.get("pick") or decisions["best"]   # none recommended: the pick, else the best
        return [chosen]
    return [m for m in which if m in decisions["ranking"]]


def end_to_end(study: str, target: str, results_dir, decisions: dict, first_seed: dict, run_params: dict,
               which, k: int) -> pd.DataFrame:
    """e2e.csv: the chosen models' test top-1 with the study's pet detector's boxes (e2e.py) beside
    their labelled-box top-1 on the same clips (their first seed), paired; decisions["e2e"] says
    what was measured and what not, and why; the recommendation's row is repeated in it."""
    from . import e2e
    from ..training import detection, detector
    models = e2e_choice(which, decisions)
    info = {"models": models, "skipped": {}, "rows": []}
    decisions["e2e"], decisions["recommendation"]["e2e"] = info, None
    det_dir = detector.out_dir(study, "action", results_dir)
    root = paths.target_dir(study, target, results_dir)
    cropped = json.loads((root / "data" / "prepare.json").read_text())["params"]["crop"]
    why = ("no pet detector was trained" if not decisions["detector"] else
           "k-fold cross-validation (each clip's model is its fold's)" if k else
           None if cropped else "the study trains on whole frames (crop: false): no box to detect")
    rows = []
    for m in models:
        reason = why or ("fast_rcnn takes whole frames and a key-frame RoI" if detection.is_fast_rcnn(run_params.get(m, {}))
                         else None)
        if reason:
            info["skipped"][m] = reason
            continue
        run = first_seed[m]
        try:
            cache = e2e.detected_cache(root, det_dir)
            rows.append(e2e.compare(m, paths.parse_run(run)[0], load_scores(run), e2e.score(run, cache), cache))
        except (OSError, RuntimeError, ValueError) as err:   # e.g. the source frames moved: said, not fatal
            info["skipped"][m] = f"it failed ({type(err).__name__}: {err})"
    info["rows"] = rows
    rec = decisions["recommendation"]["model"]
    decisions["recommendation"]["e2e"] = next((r for r in rows if r["model"] == rec), None)
    return pd.DataFrame(rows, columns=e2e.COLUMNS)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the mean over its seeds (and the std where there are several),
    ordered by validation top-1 (the selection; test top-1 only where no validation figure
    was saved, which decisions.json then says)."""
    g = runs.groupby("model")
    cols = [c for c in METRIC_COLUMNS + VAL_COLUMNS + BUDGET_COLUMNS + ["n_test", "train_time_s"] if c in runs]
    summary = g[cols].mean()
    summary["n_seeds"] = g.size()
    summary["n_folds"] = g["n_folds"].first() if "n_folds" in runs else 0
    if "val_source" in runs:
        summary["val_source"] = g["val_source"].agg(lambda s: "/".join(sorted(set(s))))
    for c in [c for c in runs if c.endswith("_fold_std")]:
        summary[c] = g[c].mean()   # the spread between folds, averaged over seeds
    for c in METRIC_COLUMNS:
        summary[c + "_std"] = g[c].std(ddof=1)
    keys = ["val_top1", "val_mean_class_acc"] if "val_top1" in summary and summary["val_top1"].notna().all() \
        else ["top1", "mean_class_acc"]
    summary = summary.reset_index().sort_values(keys + ["model"], ascending=[False, False, True], kind="stable")
    return summary.reset_index(drop=True)
