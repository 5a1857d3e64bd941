"""How long the default study took, step by step: results/<study>/study_status.json -> a committed JSON.

    .venv/bin/python benchmarks/study_time.py [--study default]

`make study` writes study_status.json (every step's status and seconds, the whole wall time) into
the git-ignored results folder; this copies those figures, with the machine and commit, to
benchmarks/results/study_<study>.json so the docs can quote them (tools/docs.py, table
study-time). Run it right after a `make study` on a fresh results folder.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from petaction import setup
from petaction.core import paths, provenance
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default="default")
    a = ap.parse_args()
    provenance.require_clean()
    status = json.loads((paths.study_dir(a.study) / "study_status.json").read_text())
    steps = [{"step": s["step"], "status": s["status"], "seconds": s.get("seconds")} for s in status["steps"]]
    out = RESULTS / f"study_{a.study}.json"
    out.write_text(json.dumps({"command": "make study", "study": a.study, "wall_time_s": status["wall_time_s"],
                               "cpu_jobs": status["config"]["cpu_jobs"], "steps": steps,
                               "training_seconds": round(sum(s["seconds"] or 0 for s in steps
                                                             if s["step"].startswith("train ")), 1),
                               "time_left_halfway": halfway(status),
                               "provenance": provenance.collect()}, indent=1))
    print(f"{status['wall_time_s']:.0f} s -> {out}")
    return 0


def halfway(status: dict) -> dict | None:
    """The console's time left at the step end nearest the study's half-way point, against the
    time that actually remained then (None: the study's status holds no forecasts). Only a
    forecast that covers every step counts: one that still names a kind it cannot estimate
    ("+ the confirm set's trials" before the screening) is a lower bound, not a forecast."""
    wall = status["wall_time_s"]
    known = [(t, left) for t, left, unknown in status.get("time_left_forecasts", [])
             if left is not None and not unknown]
    if not known:
        return None
    t, left = min(known, key=lambda f: abs(f[0] - wall / 2))
    actual = wall - t
    return {"elapsed_s": t, "forecast_left_s": left, "actual_left_s": round(actual, 1),
            "relative_error": round((left - actual) / actual, 3) if actual > 0 else None}


if __name__ == "__main__":
    sys.exit(main())
