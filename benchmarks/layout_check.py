"""Does a faster step setting leave a model's learning intact? Its study-pipeline run against today's.

    .venv/bin/python benchmarks/learnability.py --study speedcheck --results-dir '' --seeds 0 \
        --models x3d r2plus1d tsm_mobilenetv2 --out speedcheck
    .venv/bin/python benchmarks/layout_check.py [--new speedcheck] [--old learnability]

learnability.py trains the models through the study's own pool (the same notebooks, settings
and CPU slots as `make study`) with their model files as they are now (channels_last where
benchmarks/throughput.py measured it faster); this reads that result (--new) and the committed
one the models were trained with before (--old, seed 0 in the default study) and compares per
model: best validation top-1 (what checkpoint selection uses), its difference, and the
tolerance: the largest seed spread of best validation top-1 the seed study measured
(learnability_seeds.json, --seeds-result); the step settings that differ, the optimizer steps
and training CPU seconds of both. Test top-1 is shown beside, never used to decide.

Writes benchmarks/results/<out>.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def seed_spread(result: dict) -> dict:
    """Per model of a multi-seed result: the spread (max - min) of best validation top-1."""
    out = {}
    for m in {r["model"] for r in result["runs"]}:
        vals = [r["best_val_top1"] for r in result["runs"] if r["model"] == m]
        if len(vals) > 1:
            out[m] = round(max(vals) - min(vals), 4)
    return out


def compare(new: dict, old: dict, seeds: dict) -> dict:
    spread = seed_spread(seeds)
    tol = max(spread.values()) if spread else None
    rows = []
    for r in new["runs"]:
        before = next((o for o in old["runs"] if o["model"] == r["model"] and o["seed"] == r["seed"]), None)
        if before is None:
            continue
        diff = round(r["best_val_top1"] - before["best_val_top1"], 4)
        cpu_ratio = (round(before["train_cpu_s"] / r["train_cpu_s"], 3)
                     if r.get("train_cpu_s") and before.get("train_cpu_s") else None)
        rows.append({"model": r["model"], "seed": r["seed"],
                     "best_val_top1_before": before["best_val_top1"], "best_val_top1_now": r["best_val_top1"],
                     "difference": diff, "tolerance": spread.get(r["model"], tol),
                     "within_seed_spread_or_higher": bool(tol is not None and diff >= -spread.get(r["model"], tol)),
                     "test_top1_before": before["test_top1"], "test_top1_now": r["test_top1"],
                     "train_steps_before": before["train_steps"], "train_steps_now": r["train_steps"],
                     "train_cpu_s_before": before["train_cpu_s"], "train_cpu_s_now": r["train_cpu_s"],
                     "cpu_s_ratio_before_over_now": cpu_ratio})
    return {"cpu_s_note": "training CPU seconds of runs made at other times on a shared machine move with its "
                          "load (cache and memory contention count as CPU time); the step's ratio measured "
                          "side by side is throughput.json's",
            "tolerance_rule": "a model's own seed spread of best validation top-1 where measured, else the "
                              "largest measured (learnability_seeds.json)",
            "seed_spread": spread, "tolerance_default": tol, "models": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--new", default="speedcheck", help="benchmarks/results/<new>.json (learnability.py's)")
    ap.add_argument("--old", default="learnability", help="benchmarks/results/<old>.json, trained before")
    ap.add_argument("--seeds-result", default="learnability_seeds", help="the multi-seed result for the spread")
    ap.add_argument("--runs", help="read the finished runs of this study folder (results/<study>) instead of "
                                   "--new: while learnability.py still trains the last of them")
    ap.add_argument("--out", default="layout_check")
    a = ap.parse_args()
    from petaction.core import provenance
    provenance.require_clean()
    old, seeds = (json.loads((RESULTS / f"{n}.json").read_text()) for n in (a.old, a.seeds_result))
    if a.runs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from learnability import read_run
        new = {"runs": [read_run(m.parent) for m in sorted(Path(a.runs).glob("models/*/seed*/metrics.json"))]}
    else:
        new = json.loads((RESULTS / f"{a.new}.json").read_text())
    out = compare(new, old, seeds)
    out.update(command="python benchmarks/layout_check.py " + " ".join(sys.argv[1:]),
               new=a.runs or f"benchmarks/results/{a.new}.json", old=f"benchmarks/results/{a.old}.json")
    provenance.save_benchmark(a.out, out)
    for r in out["models"]:
        print(f"{r['model']}: best val {r['best_val_top1_before']:.3f} -> {r['best_val_top1_now']:.3f} "
              f"({r['difference']:+.3f}, tolerance {r['tolerance']}); CPU s {r['train_cpu_s_before']} -> "
              f"{r['train_cpu_s_now']}")
    return 0 if all(r["within_seed_spread_or_higher"] for r in out["models"]) else 1


if __name__ == "__main__":
    sys.exit(main())
