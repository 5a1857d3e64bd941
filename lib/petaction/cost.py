"""What each trained model costs to run, and whether it keeps up in real time.

evaluate.evaluate (so evaluate.ipynb) calls measure_runs; benchmarks/latency_repeat.py calls
measure_run twice to check the figures repeat.

For a finished run (the architecture of its saved ``config.py``): parameters,
GFLOPs per clip (mmengine's FlopAnalyzer), CPU latency of one clip at batch 1 (median and 90th
percentile over timed repeats, after warm-up, torch thread count recorded), and the
real-time verdict: at ``update_hz`` predictions per second, a model keeps up when its
90th-percentile latency fits in 1 / update_hz seconds; headroom is that budget over the latency.
Latency covers the network only (frames already decoded and cropped), which the report states.

Writes ``results/<study>/[<target>/]evaluation/cost.csv`` and ``cost.json`` (the same plus the
machine, threads and library versions).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import provenance

FRAME_MS = 200  # one cached frame per 200 ms of video (prepare keeps the AI-Hub frame rate)


def time_calls(fn, warmup: int = 3, repeats: int = 15) -> list[float]:
    """Wall times (ms) of ``repeats`` calls of fn(), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - t0))
    return times


def latency_stats(times_ms: list[float]) -> dict:
    return {"median_ms": float(np.median(times_ms)), "p90_ms": float(np.percentile(times_ms, 90)),
            "repeats": len(times_ms)}


def clip_input(p: dict, batch: int = 1) -> torch.Tensor:
    """A dummy clip shaped as the model's test pipeline feeds it (one view)."""
    s = p["img_size"]
    if p["sampling"] == "clip":
        return torch.randn(batch, 1, 3, p["clip_len"], s, s)
    return torch.randn(batch, p["num_segments"], 3, s, s)


def window_s(p: dict) -> float:
    """Seconds of video one prediction looks at (3D: its dense clip; 2D: the whole clip it samples)."""
    if p["sampling"] == "clip":
        return p["clip_len"] * p["frame_interval"] * FRAME_MS / 1000.0
    return float("nan")  # segment models spread their frames over the whole clip, whatever its length


def build_model(run: Path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    import petaction.mmcompat  # noqa: F401  (registers this project's modules)
    from mmaction.registry import MODELS
    init_default_scope("mmaction")
    cfg = Config.fromfile(str(run / "config.py"))
    model = MODELS.build(cfg.model)
    model.eval()
    return model


def gflops(model, x: torch.Tensor) -> float:
    from mmengine.analysis import FlopAnalyzer
    an = FlopAnalyzer(model, (x,))
    an.unsupported_ops_warnings(False)
    an.uncalled_modules_warnings(False)
    return an.total() / 1e9


def measure_run(run: Path, update_hz: float = 1.0, warmup: int = 3, repeats: int = 15) -> dict:
    p = json.loads((run / "params.json").read_text())
    model = build_model(run)
    x = clip_input(p)
    with torch.no_grad():
        lat = latency_stats(time_calls(lambda: model(x), warmup, repeats))
        flops = gflops(model, x)
    budget = 1000.0 / update_hz
    return {"model": p["model"], "seed": p["seed"], "params_m": sum(t.numel() for t in model.parameters()) / 1e6,
            "gflops": flops, "cpu_latency_ms": lat["median_ms"], "cpu_latency_p90_ms": lat["p90_ms"],
            "repeats": lat["repeats"], "warmup": warmup, "window_s": window_s(p), "update_hz": update_hz,
            "realtime": bool(lat["p90_ms"] <= budget), "headroom": budget / lat["p90_ms"]}


def measure_runs(runs: list[Path], out: Path, update_hz: float = 1.0, repeats: int = 15) -> pd.DataFrame:
    """cost.csv / cost.json in ``out`` for the given finished runs (one per model)."""
    rows = [measure_run(run, update_hz, repeats=repeats) for run in runs]
    df = pd.DataFrame(rows)
    df.to_csv(out / "cost.csv", index=False)
    prov = provenance.collect()
    (out / "cost.json").write_text(json.dumps({"rows": rows, "update_hz": update_hz, "batch": 1, "device": "cpu",
                                               "torch_threads": torch.get_num_threads(),
                                               "hardware": prov["hardware"], "versions": prov["versions"],
                                               "git": prov["git"]}, indent=1, default=str))
    return df


def pareto_front(summary: pd.DataFrame, x: str = "cpu_latency_ms", y: str = "top1") -> list[str]:
    """Models no other model beats on both axes (lower ``x`` and higher ``y``), fastest first."""
    df = summary.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False], kind="stable")
    front, best = [], -np.inf
    for row in df.itertuples():
        if getattr(row, y) > best:
            front.append(row.model)
            best = getattr(row, y)
    return front
