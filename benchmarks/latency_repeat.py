"""Is the CPU latency benchmark repeatable? Two full passes over a study's trained models.

    .venv/bin/python benchmarks/latency_repeat.py [--study default] [--repeats 15] [--min-time 2]

Runs petaction.evaluation.cost.measure (what evaluate.ipynb runs, with its settings: the whole test-time
forward of forward.build, torch.utils.benchmark blocked measurements, at least 15 timed blocks
and 2 s per model, every model timed interleaved) twice over every finished run of the study,
and the study's pet detector (detector.measure) likewise, and reports each latency figure's
ratio between the passes (target: within 10% on an idle machine).
Writes benchmarks/results/latency_repeat.json.
"""
from __future__ import annotations

import argparse

from petaction import setup
from petaction.training import detector
from petaction.core import paths, provenance
from petaction.evaluation.cost import MIN_TIME_S, measure
from petaction.evaluation.evaluate import find_runs
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--study", default="default")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=MIN_TIME_S, help="timed seconds per figure, at least")
    a = ap.parse_args()
    provenance.require_clean()
    done, _ = find_runs(paths.target_dir(a.study))
    runs = [r for r in done if r.name in (paths.run_name(0), paths.run_name(0, trial=1))]   # each model's first run (with trials: trial 1's)
    det_dir = detector.out_dir(a.study, "action", None)
    passes = []
    for _ in range(2):
        one = {row["model"]: row for row in measure(runs, repeats=a.repeats, min_time_s=a.min_time)}
        if (det_dir / "metrics.json").is_file():
            one["detector"] = detector.measure(det_dir)
        passes.append(one)
    rows, worst = [], 0.0
    for model in passes[0]:
        row = {"model": model}
        for key in ("cpu_latency_ms", "cpu_latency_p90_ms"):
            x, y = passes[0][model][key], passes[1][model][key]
            row[key] = [round(x, 2), round(y, 2)]
            row[key + "_ratio"] = round(max(x, y) / min(x, y), 3)
            worst = max(worst, row[key + "_ratio"])
        rows.append(row)
        print(row)
    print(f"largest ratio between the two passes: {worst:.3f} (target <= 1.10)")
    provenance.save_benchmark("latency_repeat", {"study": a.study, "repeats": a.repeats, "min_time_s": a.min_time, "rows": rows,
                                                 "worst_ratio": worst})


if __name__ == "__main__":
    main()
