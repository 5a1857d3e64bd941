"""DDP against one process at the same global batch, on the tiny synthetic set (CPU, gloo).

    .venv/bin/python benchmarks/ddp_check.py [--model tsn] [--epochs 3] [--seeds 0 1]

Prepares the test suite's tiny set, then trains each seed twice through train.run: nproc 1,
and nproc 2 (torchrun, two gloo processes, batch_size 4 = 2 per process). Reports test top-1
and mean class accuracy per run, each run's best validation top-1, and the 95% bootstrap
interval of one-process top-1 over the test clips: the noise a difference is judged against.
Writes benchmarks/results/ddp_check.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from petaction import setup
from petaction import params as P
from petaction.data import prepare
from petaction.core import provenance
from petaction.evaluation import stats
from petaction.training import train
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)

TINY_PREPARE = {"synth_scale": 0.4, "synth_frames": 10, "short_side": 32, "workers": 1}   # = tests/conftest.py


def bootstrap_ci(correct: np.ndarray) -> list[float]:
    return [round(x, 3) for x in stats.bootstrap_ci(correct)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tsn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    a = ap.parse_args(argv)
    provenance.require_clean()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(prepare.prepare(study="tiny", results_dir=tmp / "n1", **TINY_PREPARE)["data_dir"])
        shutil.copytree(data, tmp / "n2" / "tiny" / "data")
        for seed in a.seeds:
            for nproc in (1, 2):
                p = P.resolve_train({"model": a.model, "profile": "tiny", "study": "tiny", "seed": seed,
                                     "epochs": a.epochs, "nproc": nproc, "results_dir": str(tmp / f"n{nproc}")})
                m = train.run(p, log=lambda *_: None)
                run = tmp / f"n{nproc}" / "tiny" / "models" / a.model / f"seed{seed}"
                z = np.load(run / "test_scores.npz")
                correct = (z["scores"].argmax(1) == z["labels"]).astype(float)
                log = pd.read_csv(run / "log.csv")
                rows.append({"seed": seed, "nproc": nproc, "top1": round(m["test"]["top1"], 4),
                             "mean_class_acc": round(m["test"]["mean1"], 4), "top1_ci95": bootstrap_ci(correct),
                             "best_val_top1": round(float(log["val_top1"].max()), 4),
                             "final_train_loss": round(float(log["train_loss"].iloc[-1]), 4),
                             "train_time_s": m["train_time_s"]})
                print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    out = {"model": a.model, "profile": "tiny", "epochs": a.epochs, "global_batch": 4, "runs": rows,
           "mean_top1": {int(k): round(float(v), 4) for k, v in df.groupby("nproc")["top1"].mean().items()},
           "n_test": int(len(correct))}
    print(f"mean test top-1: 1 process {out['mean_top1'][1]:.3f}, 2 processes {out['mean_top1'][2]:.3f} "
          f"({out['n_test']} test clips)")
    provenance.save_benchmark("ddp_check", out)
    return out


if __name__ == "__main__":
    main()
