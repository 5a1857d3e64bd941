"""Does every model learn within its quick-profile budget? The benchmark the recipe is chosen by.

    .venv/bin/python benchmarks/learnability.py [--models tsn tsm] [--seeds 0 1 2] [--out NAME]

Trains the default study's models (params/study.yaml, action target, no detector) for each seed
through the study's own training pool (the same notebooks, settings and CPU slots as
`make study`) into a scratch study `learnability` under --results-dir (or, with --study
default --results-dir '', the default study's own runs), then reads every run:

- ``first_below_step``: the first optimizer step at which the training loss (mmengine's
  logged mean over its last 10 iterations, vis_data/scalars.json) falls below 0.8 x ln(K),
  the class prior's loss: where the model starts to learn;
- ``val_top1`` per epoch (log.csv) and the best epoch, which checkpoint selection uses;
- test top-1 of the selected checkpoint (metrics.json), read here for the table only:
  the recipe is chosen on validation, never on test;
- the budget as spent: optimizer steps and training CPU seconds (metrics.json).

Writes benchmarks/results/<out>.json (per run and per model: mean, std and spread of top-1
over seeds) with the command, machine, commit and time.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from petaction import setup
from petaction import params as P
from petaction.core import paths, provenance
from petaction import study
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)

RESULTS = Path(__file__).resolve().parent / "results"


def first_below(run: Path, threshold: float) -> int | None:
    """The first logged step whose training loss is below ``threshold`` (None: never)."""
    for f in sorted(run.glob("*/vis_data/scalars.json")):
        for line in f.read_text().splitlines():
            rec = json.loads(line)
            if "loss" in rec and "step" in rec and "acc/top1" not in rec and rec["loss"] < threshold:
                return int(rec["step"])
    return None


def read_run(run: Path) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    log = pd.read_csv(run / "log.csv")
    k = len(m["classes"])
    return {
        "model": m["model"], "seed": m["seed"], "classes": k,
        "first_below_step": first_below(run, 0.8 * math.log(k)),
        "val_top1": [round(float(v), 4) for v in log["val_top1"]],
        "best_epoch": m["best_epoch"], "best_val_top1": round(float(log["val_top1"].max()), 4),
        "test_top1": round(m["test"]["top1"], 4), "n_test": m["n_test"],
        "train_steps": m.get("train_steps"), "train_cpu_s": m.get("train_cpu_s"),
        "train_wall_s": m["train_time_s"],
    }


def per_model(rows: list[dict]) -> list[dict]:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        rs = [r for r in rows if r["model"] == model]
        top1 = np.array([r["test_top1"] for r in rs])
        out.append({"model": model, "seeds": [r["seed"] for r in rs],
                    "test_top1_mean": round(float(top1.mean()), 4),
                    "test_top1_std": round(float(top1.std(ddof=1)) if len(rs) > 1 else 0.0, 4),
                    "test_top1_spread": round(float(top1.max() - top1.min()), 4),
                    "test_top1_min": round(float(top1.min()), 4),
                    "best_val_top1_mean": round(float(np.mean([r["best_val_top1"] for r in rs])), 4),
                    "first_below_step_max": max((r["first_below_step"] or 10 ** 9) for r in rs),
                    "train_steps": sorted({r["train_steps"] for r in rs}),
                    "train_cpu_s_mean": round(float(np.mean([r["train_cpu_s"] or 0 for r in rs])), 1)})
    return out


def main() -> int:
    default = P.load_yaml(paths.PARAMS / "study.yaml")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=default["models"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--study", default="learnability",
                    help="the study to train into; 'default' with --results-dir '' reads the default study's "
                         "runs where `make study` already trained them (same settings: nothing retrains)")
    ap.add_argument("--results-dir", default="/tmp/petaction-learnability")
    ap.add_argument("--out", default="learnability", help="benchmarks/results/<out>.json")
    ap.add_argument("--force", action="store_true", help="retrain runs whose settings are unchanged")
    a = ap.parse_args()
    provenance.require_clean()
    cfg = study.load_study(paths.PARAMS / "study.yaml", dict(
        study=a.study, results_dir=a.results_dir, models=a.models, seeds=a.seeds,
        targets=["action"], detector=False, target_models={}))
    t0 = time.time()
    if study.prepare_target(cfg, "action", False, print)["status"] == "failed":
        return 1
    steps, resolved, _ = study.train_steps(cfg, "action")
    status = study.train_all(steps, resolved, cfg, a.force, print)
    wall = time.time() - t0
    rows, failed = [], []
    for st, s in zip(steps, status):
        run = st.done.parent
        if (run / "metrics.json").is_file():
            rows.append(read_run(run))
        else:
            failed.append({"step": st.name, "error": s.get("error")})
    result = {"command": "python benchmarks/learnability.py " + " ".join(sys.argv[1:]),
              "profile": cfg["profile"], "cpu_jobs": cfg["cpu_jobs"], "wall_s": round(wall, 1),
              "models": per_model(rows) if rows else [], "runs": rows, "failed": failed,
              "provenance": provenance.collect()}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{a.out}.json"
    out.write_text(json.dumps(result, indent=1))
    print(pd.DataFrame(result["models"]).to_string(index=False))
    print(f"-> {out} ({wall:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
