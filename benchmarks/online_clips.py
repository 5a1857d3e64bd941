"""Online TSM on the study's own test clips: accuracy at each clip's end against the offline TSM.

    .venv/bin/python benchmarks/online_clips.py --run results/<study>/models/tsm/seed0_trial1 \\
        [--gap G] [--backend onnx|torch] [--threads 2] [--no-detector] [--max-clips N]

petaction.deploy.online_eval.evaluate: every clip of the run's test split streamed frame by
frame through `infer`'s online path (exact shift, gap = the test sampling's spacing unless
--gap), the prediction about the clip's last test-sampled frame taken after the clip's end,
against the run's test_scores.npz (the offline TSM on the same clips) and the labels: online
and offline top-1 with Wilson intervals, their paired difference (bootstrap interval, exact
McNemar), the agreement rate (Wilson), predictions per second (median over clips), and, when
the study has a trained pet detector, predictions per second with it every 5 frames.
Writes benchmarks/results/<name>.json (default online_clips) with the command line and the
provenance; refuses (exit 2) on a git tree with uncommitted changes.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")      # as `infer` sets it (see benchmarks/infer_speed.py)

import torch  # noqa: E402

from petaction import setup  # noqa: E402
setup()   # before online_eval imports mmaction2's models (petaction.setup: the pinned packages work)
from petaction.core import provenance  # noqa: E402
from petaction.deploy import online_eval  # noqa: E402


def fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a trained TSM-family run folder (results/<study>/models/tsm/seed0_trial1)")
    ap.add_argument("--gap", type=int, help="the online shift's gap (default: the test sampling's spacing)")
    ap.add_argument("--backend", choices=("torch", "onnx"), default="onnx", help="the online step's backend")
    ap.add_argument("--threads", type=int, default=2, help="torch (and ONNX Runtime) threads")
    ap.add_argument("--no-detector", action="store_true", help="skip the pass with the pet detector")
    ap.add_argument("--max-clips", type=int, help="only the first N test clips (a quick check; not for a result)")
    ap.add_argument("--name", default="online_clips", help="benchmarks/results/<name>.json")
    a = ap.parse_args(argv)
    if a.threads < 1 or (a.gap is not None and a.gap < 1) or (a.max_clips is not None and a.max_clips < 1):
        fail(f"--threads ({a.threads}), --gap ({a.gap}) and --max-clips ({a.max_clips}) must be >= 1")
    provenance.require_clean()
    torch.set_num_threads(a.threads)
    load_before = os.getloadavg()
    try:
        res = online_eval.evaluate(a.run, a.gap, a.backend, not a.no_detector, a.max_clips)
    except (FileNotFoundError, ValueError) as e:
        fail(str(e).splitlines()[0])
    s, v = res["summary"], res["variant"]
    result = {"command": " ".join(["benchmarks/online_clips.py",
                                   *map(shlex.quote, argv if argv is not None else sys.argv[1:])]),
              "threads": a.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
              "max_clips": a.max_clips, "loadavg_1min_before_after": [load_before[0], os.getloadavg()[0]], **res}
    provenance.save_benchmark(a.name, result)
    d, ag = s["difference"], s["agreement"]
    print(f"online TSM (exact shift, gap {v['gap']}: the test-sampled frames on {s['same_frames_clips']} of "
          f"{s['clips']} clips, equal to the offline scores on {s['exact_expected_clips']}) on {s['clips']} test clips: "
          f"online top-1 {s['online']['top1']:.3f}, offline {s['offline']['top1']:.3f}, "
          f"difference {d['online_minus_offline']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]; "
          f"agreement {ag['rate']:.3f} [{ag['ci_low']:.3f}, {ag['ci_high']:.3f}]; "
          f"{s['predictions_per_s_median']:.1f} predictions/s (median over clips)"
          + (f", {res['detector']['predictions_per_s_median']:.1f}/s with the detector every "
             f"{res['detector']['detect_every']} frames" if res["detector"]["available"] else ""))
    return result


if __name__ == "__main__":
    main()
