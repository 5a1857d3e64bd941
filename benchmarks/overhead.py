"""Does the project add overhead to mmaction2 training? Notebook path vs a bare Runner.

    .venv/bin/python benchmarks/overhead.py [--model tsn] [--repeats 2]

Prepares the default synthetic data in a scratch results folder, then alternately:
  notebook: papermill notebooks/train.ipynb -p model M -p epochs 1 (the project's path);
  bare:     mmengine's Runner.from_cfg on the very config.py that run saved, in a script.
Compares the training epoch's wall time (log.csv's epoch_time_s, written by the same hook in
both) and prints the ratio; writes benchmarks/results/overhead.json.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from petaction.core import paths, provenance
from petaction.data import prepare

BARE = """
import sys, time
import petaction.mmsetup  # noqa: F401  (runs petaction.setup(), as the config's custom_imports would)
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile(sys.argv[1]); cfg.work_dir = sys.argv[2]
t0 = time.perf_counter(); Runner.from_cfg(cfg).train(); print("WALL", time.perf_counter() - t0)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tsn")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    provenance.require_clean()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prepare.prepare(study="overhead", results_dir=tmp)
        run = paths.run_dir("overhead", a.model, 0, results_dir=tmp)
        for i in range(a.repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "papermill", str(paths.NOTEBOOKS / "train.ipynb"),
                            f"{tmp}/out.ipynb", "-p", "model", a.model, "-p", "epochs", "1", "-p", "study",
                            "overhead", "-p", "results_dir", tmp], check=True, capture_output=True)
            nb_wall = time.perf_counter() - t0
            nb_epoch = float(pd.read_csv(run / "log.csv")["epoch_time_s"].iloc[0])
            bare_dir = Path(tmp) / f"bare{i}"
            out = subprocess.run([sys.executable, "-c", BARE, str(run / "config.py"), str(bare_dir)],
                                 check=True, capture_output=True, text=True)
            bare_epoch = float(pd.read_csv(bare_dir / "log.csv")["epoch_time_s"].iloc[0])
            bare_train = float(out.stdout.split("WALL")[-1])
            rows.append({"notebook_epoch_s": round(nb_epoch, 2), "bare_epoch_s": round(bare_epoch, 2),
                         "notebook_wall_s": round(nb_wall, 1), "bare_train_s": round(bare_train, 1)})
            print(rows[-1])
    nb = statistics.median(r["notebook_epoch_s"] for r in rows)
    bare = statistics.median(r["bare_epoch_s"] for r in rows)
    result = {"model": a.model, "runs": rows, "median_notebook_epoch_s": nb, "median_bare_epoch_s": bare,
              "ratio": round(nb / bare, 3)}
    provenance.save_benchmark("overhead", result)
    print(f"one training epoch of {a.model}: notebook path {nb:.2f} s, bare Runner {bare:.2f} s, "
          f"ratio {nb / bare:.3f}")


if __name__ == "__main__":
    main()
