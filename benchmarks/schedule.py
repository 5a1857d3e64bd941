"""The schedule `strategy: parallel` produces for a study on N GPUs, predicted and measured.

    .venv/bin/python benchmarks/schedule.py [--profile full] [--gpus 4] [--seconds 8]

Predicted: each model's cost (GFLOPs per training clip of the resolved architecture and
input, from mmengine's FlopAnalyzer, x its epochs), placed longest first (schedule.plan);
makespan against total work / N, the best any split could do.
Measured: the study's own runner (schedule.run, the threads that start papermill runs) on N
fake GPUs, each job holding its GPU for its cost scaled so the whole study takes about
--seconds: what the placement and queueing cost on top of the plan.
Writes benchmarks/results/schedule_<profile>_<N>gpu.json.
"""
from __future__ import annotations

import argparse
import time

from petaction import setup
from petaction import params as P
from petaction.core import provenance
from petaction import schedule
from petaction.core.paths import PARAMS
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="full")
    ap.add_argument("--gpus", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0, help="measured run: wall time of the whole study")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    provenance.require_clean()
    models = P.load_yaml(PARAMS / "study.yaml")["models"]
    rows = []
    for m in models:
        p = P.resolve_train({"model": m, "profile": a.profile})
        g = schedule.gflops_per_clip(p)
        rows.append({"model": m, "gflops_per_clip": round(g, 2), "epochs": p["epochs"], "cost": round(g * p["epochs"], 1)})
        print(f"{m:16s} {g:8.2f} GFLOPs x {p['epochs']:3d} epochs = {g * p['epochs']:9.1f}", flush=True)
    costs = [r["cost"] for r in rows]
    pl = schedule.plan(costs, a.gpus)
    scale = a.seconds / pl["makespan"]
    gpus = schedule.resolve_gpus(list(range(a.gpus)))
    _, timeline = schedule.run(costs, schedule.slots(gpus, "parallel"), lambda i, slot: time.sleep(costs[i] * scale))
    measured = max(end for _, _, end in timeline) / scale
    for r, (s, b, e), (ms, mb, me) in zip(rows, pl["jobs"], timeline):
        r.update(planned_gpu=s, planned_start=round(b, 1), planned_end=round(e, 1),
                 measured_gpu=ms, measured_start=round(mb / scale, 1), measured_end=round(me / scale, 1))
    out = {"profile": a.profile, "gpus": a.gpus, "unit": "GFLOP-epochs per training clip", "jobs": rows,
           "total": round(pl["total"], 1), "per_gpu": round(pl["per_slot"], 1),
           "predicted_makespan": round(pl["makespan"], 1), "predicted_over_per_gpu": round(pl["over_per_slot"], 4),
           "measured_makespan": round(measured, 1), "measured_over_per_gpu": round(measured / pl["per_slot"] - 1, 4),
           "measured_wall_s": round(max(end for _, _, end in timeline), 2)}
    print(f"total {pl['total']:.0f}; total/{a.gpus} = {pl['per_slot']:.0f}; predicted makespan {pl['makespan']:.0f} "
          f"({100 * pl['over_per_slot']:+.1f}%); measured on {a.gpus} fake GPUs {measured:.0f} "
          f"({100 * out['measured_over_per_gpu']:+.1f}%)")
    for s in range(a.gpus):
        lane = sorted((r["planned_start"], r["model"]) for r in rows if r["planned_gpu"] == s)
        print(f"GPU {s}: " + " -> ".join(m for _, m in lane))
    provenance.save_benchmark(a.out or f"schedule_{a.profile}_{a.gpus}gpu", out)
    return out


if __name__ == "__main__":
    main()
