"""Preparation time and peak memory for 1x and 4x the default synthetic set.

    .venv/bin/python benchmarks/prepare_memory.py [--scales 1 4]

For each scale: one process generates the synthetic set at that scale, then a fresh
process times `prepare` alone and records the peak resident memory of its main process
and of its worker processes. Flat memory across scales = streaming preparation.
Writes benchmarks/results/prepare_memory.json.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
GENERATE = ("import sys; from petaction.data import synth; s = float(sys.argv[2]); "
            "synth.generate(sys.argv[1], seed=0, counts={k: max(1, round(v * s)) "
            "for k, v in synth.DEFAULT_COUNTS.items()})")


def prepare_only(src: str, out: str) -> dict:
    from petaction.data import prepare
    t0 = time.perf_counter()
    info = prepare.prepare(study="mem", results_dir=out, data_root=src)
    return {"clips": info["clips_kept"], "prepare_s": round(time.perf_counter() - t0, 1),
            "peak_rss_main_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=float, nargs="+", default=[1, 4])
    ap.add_argument("--prepare", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.prepare:
        print(json.dumps(prepare_only(*a.prepare)))
        return
    from petaction.core import provenance
    provenance.require_clean()
    rows = []
    for s in a.scales:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", GENERATE, f"{tmp}/src", str(s)], check=True)
            gen_s = time.perf_counter() - t0
            out = subprocess.run([sys.executable, str(HERE), "--prepare", f"{tmp}/src", f"{tmp}/res"],
                                 capture_output=True, text=True, check=True)
        r = {"scale": s, "generate_s": round(gen_s, 1), **json.loads(out.stdout.strip().splitlines()[-1])}
        rows.append(r)
        print(f"scale {s:g}: {r['clips']} clips, generate {r['generate_s']} s, prepare {r['prepare_s']} s, "
              f"peak RSS main {r['peak_rss_main_mb']} MB, per worker {r['peak_rss_worker_mb']} MB")
    provenance.save_benchmark("prepare_memory", {"runs": rows})


if __name__ == "__main__":
    main()
