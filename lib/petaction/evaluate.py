"""Cross-model evaluation of a study: every trained run, metrics from its saved test scores.

    papermill notebooks/evaluate.ipynb out.ipynb -p study default
    python -m petaction evaluate --study default

Writes results/<study>/[<target>/]evaluation/: summary.csv/.json (one row per model),
runs.csv (one row per model and seed; with k-fold cross-validation, each over the test clips
of all its folds pooled: every clip tested once, by the fold that held it out), folds.csv (one
row per model, seed and fold), per_class.csv, confusion_<model>.csv, confusions.csv
(the best model's commonest mistakes, each with its most confident example clip),
failed.csv (runs that did not finish, with their error) and PNG figures.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import cost, diagnose, explore, figures, metrics, paths, stats

COST_COLUMNS = ["model", "params_m", "gflops", "cpu_latency_ms", "cpu_latency_p90_ms", "realtime", "headroom",
                "cpu_throughput_cps", "peak_mem_mb"]

E2E_COLUMNS = ["detector_ms", "e2e_latency_ms", "e2e_latency_p90_ms", "realtime_e2e", "headroom_e2e"]

METRIC_COLUMNS = ["top1", "top3", "top5", "mean_class_acc", "macro_f1", "top1_order_only"]


def find_runs(root: Path, k: int = 0) -> tuple[list[Path], list[dict]]:
    """Finished runs (with metrics.json and test scores) and failed ones (with error.json):
    the runs on the prepared split, or with k folds prepared, the fold runs."""
    done, failed = [], []
    for run in sorted((root / "models").glob("*/seed*")):
        try:
            seed, fold = paths.parse_run(run)
        except ValueError:
            continue
        if bool(fold) != bool(k):
            continue
        if (run / "metrics.json").is_file() and (run / "test_scores.npz").is_file():
            done.append(run)
        elif (run / "error.json").is_file():
            err = json.loads((run / "error.json").read_text())
            failed.append({"model": run.parent.name, "seed": seed, "fold": fold, **err})
    return done, failed


def load_scores(run: Path) -> dict:
    z = np.load(run / "test_scores.npz")
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
    """One run's scores, or several folds' joined (sorted by clip id)."""
    parts = [load_scores(r) for r in runs]
    if any(p["classes"] != parts[0]["classes"] for p in parts):
        raise ValueError("folds trained on different classes")
    ids = np.concatenate([p["ids"] for p in parts])
    order = np.argsort(ids, kind="stable")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("a clip is in the test set of two folds")
    return {"ids": ids[order], "labels": np.concatenate([p["labels"] for p in parts])[order],
            "scores": np.concatenate([p["scores"] for p in parts])[order], "classes": parts[0]["classes"]}


def run_row(model: str, seed: int, group: list[Path], s: dict, order_only: list[int], k: int) -> tuple[dict, list[dict]]:
    """runs.csv's row for one model and seed (its folds pooled, with the spread between folds)
    and, with folds, folds.csv's rows."""
    row = {"model": model, "seed": seed, **metrics.all_metrics(s["scores"], s["labels"], order_only)}
    trained = [json.loads((run / "metrics.json").read_text()) for run in group]
    best = [t["best_epoch"] for t in trained]
    row.update(best_epoch=best[0] if len(best) == 1 else float(np.mean(best)),
               train_time_s=sum(t["train_time_s"] for t in trained), n_folds=k)
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
             update_hz: float = 1.0, cost_repeats: int = 15) -> dict:
    root = paths.target_dir(study, target, results_dir)
    meta = json.loads((root / "data" / "classes.json").read_text())
    class_names, order_only = meta["classes"], [meta["classes"].index(c) for c in meta["order_only"]]
    out = root / "evaluation"
    out.mkdir(parents=True, exist_ok=True)
    k = n_folds(root)
    done, failed = find_runs(root, k)
    if models:
        done = [r for r in done if r.parent.name in models]
    groups, incomplete = pooled(done, k)
    failed += incomplete
    runs, fold_rows, per_class, logs, confusions, correct = [], [], {}, {}, {}, {}
    for (model, seed), group in groups.items():
        s = join_scores(group)
        if s["classes"] != class_names:
            failed.append({"model": model, "seed": seed, "fold": 0,
                           "error": "trained on other classes than the prepared data has: re-run it"})
            continue
        row, per_fold = run_row(model, seed, group, s, order_only, k)
        runs.append(row)
        fold_rows += per_fold
        run = group[0]
        preds = s["scores"].argmax(1)
        oo_mask = np.isin(s["labels"], order_only)  # the same test clips in every run
        correct.setdefault(row["model"], {})[row["seed"]] = preds == s["labels"]
        cm = metrics.confusion_matrix(s["labels"], preds, len(class_names))
        confusions.setdefault(row["model"], []).append(cm)
        if (run / "log.csv").is_file():
            logs.setdefault(row["model"], pd.read_csv(run / "log.csv"))
    pd.DataFrame(failed, columns=["model", "seed", "fold", "error", "notebook"]).to_csv(out / "failed.csv", index=False)
    pd.DataFrame(fold_rows).to_csv(out / "folds.csv", index=False)
    if not runs:
        raise RuntimeError(f"no finished run under {root / 'models'}; see {out / 'failed.csv'}")
    runs_df = pd.DataFrame(runs)
    runs_df.to_csv(out / "runs.csv", index=False)
    summary = summarise(runs_df)
    summary.insert(1, "target", target)
    ci = {m: stats.bootstrap_ci(np.mean(list(c.values()), axis=0)) for m, c in correct.items()}
    summary["top1_ci_low"] = [ci[m][0] for m in summary["model"]]
    summary["top1_ci_high"] = [ci[m][1] for m in summary["model"]]
    first_seed = {}  # cost depends on the architecture only: one run per model
    for (model, seed), group in groups.items():
        first_seed.setdefault(model, group[0])
    cost_df = cost.measure_runs([first_seed[m] for m in summary["model"]], out, update_hz, cost_repeats)
    det = detector_cost(study, results_dir, out)
    if det is not None:
        cost_df = cost.add_detector(cost_df, det, update_hz)
        cost_df.to_csv(out / "cost.csv", index=False)
    summary = summary.merge(cost_df[[c for c in COST_COLUMNS + E2E_COLUMNS if c in cost_df]], on="model", how="left")
    paired = paired_tests(list(summary["model"]), correct, oo_mask)
    paired.to_csv(out / "paired_tests.csv", index=False)
    summary.to_csv(out / "summary.csv", index=False)
    summary.to_json(out / "summary.json", orient="records", indent=1)
    for model, cms in confusions.items():
        cm = sum(cms)
        pd.DataFrame(cm, index=class_names, columns=class_names).to_csv(out / f"confusion_{model}.csv")
        per_class[model] = metrics.per_class_accuracy(cm)
    per_class_df = pd.DataFrame(per_class, index=class_names)
    per_class_df.index.name = "class"
    per_class_df.to_csv(out / "per_class.csv")
    diagnosis = diagnose.table(logs) if logs else pd.DataFrame()
    diagnosis.to_csv(out / "diagnosis.csv", index=False)
    best = summary.iloc[0]["model"]
    best_run = first_seed[best]
    confusions_df = explore.common_confusions(explore.predictions(study, best, paths.parse_run(best_run)[0], target, results_dir))
    confusions_df.insert(0, "model", best)
    confusions_df.to_csv(out / "confusions.csv", index=False)
    figs = {
        "curves": figures.training_curves(logs, out / "curves.png") if logs else None,
        "confusion": figures.confusion(sum(confusions[best]), class_names,
                                       f"Confusion matrix, {best} (test)", out / "confusion_best.png"),
        "per_class": figures.per_class(per_class_df, out / "per_class.png"),
        "pareto": figures.pareto(summary, out / "pareto.png"),
        "gallery": explore.gallery(root / "data", confusions_df, out / "confusion_gallery.png", id_col="example"),
    }
    if figs["gallery"] is None:   # no mistakes: no gallery (and none left from an earlier evaluation)
        (out / "confusion_gallery.png").unlink(missing_ok=True)
    return {"summary": summary, "runs": runs_df, "folds": pd.DataFrame(fold_rows), "paired": paired, "failed": pd.DataFrame(failed), "per_class": per_class_df,
            "diagnosis": diagnosis, "cost": cost_df,
            "best": best, "figures": figs, "dir": out}


def detector_cost(study: str, results_dir, out: Path) -> dict | None:
    """The study's pet detector (notebooks/detector.ipynb, trained on the action target's frames):
    its test box AP from its metrics.json and its latency timed again now, beside the models;
    written to evaluation/detector.json. None when the study has no trained detector."""
    from . import detector
    det_dir = detector.out_dir(study, "action", results_dir)
    (out / "detector.json").unlink(missing_ok=True)
    if not (det_dir / "metrics.json").is_file():
        return None
    trained = json.loads((det_dir / "metrics.json").read_text())
    det = {k: trained[k] for k in ("detector", "box_ap", "box_ap50", "box_ap75", "n_images", "img_size")}
    det.update(detector.measure(det_dir), source=str(det_dir / "metrics.json"))
    (out / "detector.json").write_text(json.dumps(det, indent=1))
    return det


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the mean over its seeds (and the std where there are several)."""
    g = runs.groupby("model")
    summary = g[METRIC_COLUMNS + ["n_test", "train_time_s"]].mean()
    summary["n_seeds"] = g.size()
    summary["n_folds"] = g["n_folds"].first() if "n_folds" in runs else 0
    for c in [c for c in runs if c.endswith("_fold_std")]:
        summary[c] = g[c].mean()   # the spread between folds, averaged over seeds
    for c in METRIC_COLUMNS:
        summary[c + "_std"] = g[c].std(ddof=1)
    summary = summary.reset_index().sort_values(["top1", "mean_class_acc"], ascending=False, kind="stable")
    return summary.reset_index(drop=True)


def paired_tests(models: list[str], correct: dict, subset=None) -> pd.DataFrame:
    """McNemar's test for every pair of models, on the first seed both ran (same test clips);
    with ``subset`` (a mask over the test clips: the order-only classes) also on those clips."""
    rows = []
    for i, a in enumerate(models):
        for b in models[i + 1:]:
            common = sorted(set(correct[a]) & set(correct[b]))
            if not common:
                continue
            ca, cb = correct[a][common[0]], correct[b][common[0]]
            row = {"model_a": a, "model_b": b, "seed": common[0], "top1_a": float(ca.mean()),
                   "top1_b": float(cb.mean()), "n_clips": int(len(ca)), **stats.mcnemar(ca, cb)}
            if subset is not None and subset.any():
                sub = stats.mcnemar(ca[subset], cb[subset])
                row.update(n_clips_order_only=int(subset.sum()), a_only_order_only=sub["a_only"],
                           b_only_order_only=sub["b_only"], p_value_order_only=sub["p_value"])
            rows.append(row)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


PAIRED_COLUMNS = ["model_a", "model_b", "seed", "top1_a", "top1_b", "n_clips", "a_only", "b_only", "p_value",
                  "n_clips_order_only", "a_only_order_only", "b_only_order_only", "p_value_order_only"]
