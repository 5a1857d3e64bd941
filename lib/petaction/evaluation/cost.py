"""What each trained model costs to run, and whether it keeps up in real time.

evaluate.evaluate (so evaluate.ipynb) calls measure_runs; benchmarks/latency_repeat.py calls
measure twice to check the figures repeat. Every figure is taken on forward.build(model), the
whole test-time forward from the packed clips of all test views to the class scores (data
preprocessor, backbone, neck, head, consensus and view averaging; fast_rcnn with its RoI),
the same callable export.py writes as ONNX (docs/cost.md).

For a finished run (the architecture of its saved ``config.py``): parameters, GFLOPs per
prediction (mmengine's FlopAnalyzer on that forward), CPU latency of one prediction at batch 1
(median and 90th percentile over torch.utils.benchmark blocked measurements, at the process's
torch thread count), CPU throughput at a larger batch (clips/s), the peak memory a forward
pass adds (batch 1 and the larger batch), GPU latency, throughput and memory where a GPU is
present, and the real-time verdict: at ``update_hz`` predictions per second, a model keeps up
when its 90th-percentile latency fits in 1 / update_hz seconds; headroom is that budget over
the latency. The batch-1 latencies are timed interleaved (interleaved_measurements): round
after round, each model in turn, so that a slow minute of a shared machine falls on every
model alike rather than on whichever was being timed. Decoding and cropping are not timed
(add_detector adds the pet detector per box).

Writes ``results/<study>/[<target>/]evaluation/cost.csv`` and ``cost.json`` (the same plus the
machine, threads and library versions).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import forward
from ..core import atomic, provenance
from ..core.timing import (MIN_TIME_S, ROUNDS, interleaved_measurements, interleaved_times,  # noqa: F401
                           latency_stats, measurement_stats, time_calls, timer)

FRAME_MS = 200  # one cached frame per 200 ms of video (prepare keeps the AI-Hub frame rate)


def window_s(p: dict) -> float:
    """Seconds of video one prediction looks at (3D: its dense clip; 2D: the whole clip it samples)."""
    if p["sampling"] == "clip":
        return p["clip_len"] * p["frame_interval"] * FRAME_MS / 1000.0
    return float("nan")  # segment models spread their frames over the whole clip, whatever its length


def build_model(run: Path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmaction.registry import MODELS
    init_default_scope("mmaction")
    cfg = Config.fromfile(str(run / "config.py"), import_custom_modules=False)   # petaction.setup() has registered ours
    model = MODELS.build(cfg.model)
    model.eval()
    return model


def gflops(net, inputs) -> float:
    """GFLOPs (multiply-adds, mmengine's FlopAnalyzer convention) of net(*inputs)."""
    from mmengine.analysis import FlopAnalyzer
    an = FlopAnalyzer(net, tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,))
    an.unsupported_ops_warnings(False)
    an.uncalled_modules_warnings(False)
    with forward.fixed_shape_trace():
        return an.total() / 1e9


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _rss_kb() -> int | None:
    try:   # /proc/self/statm: sizes in pages; the second is the resident set
        return int(Path("/proc/self/statm").read_text().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except (OSError, ValueError, IndexError):
        return None


def peak_memory_mb(fn, interval_s: float = 0.001) -> float:
    """Peak resident memory (MB) that fn() adds to the process, Linux only (NaN elsewhere).

    Two readings, the larger wins: the kernel's high-water mark (VmHWM, reset first through
    /proc/self/clear_refs; some kernels only update it lazily) and the resident set sampled by
    a thread every ``interval_s`` while fn runs."""
    import gc
    import threading
    gc.collect()
    try:   # hand freed heap memory back to the OS, so the call's buffers count again (glibc)
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    before = _rss_kb()
    if before is None:
        return float("nan")
    try:
        Path("/proc/self/clear_refs").write_text("5")   # 5: reset the peak RSS to the current RSS
    except OSError:
        pass
    sampled, done = [before], threading.Event()

    def sample():
        while not done.is_set():
            sampled.append(_rss_kb() or 0)
            time.sleep(interval_s)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    peak = max(max(sampled), _status_kb("VmHWM") or 0)
    return max(peak - before, 0) / 1024.0


def throughput(fn, batch: int, min_time_s: float = MIN_TIME_S) -> float:
    """Clips per second of fn() processing ``batch`` clips (median of Timer.blocked_autorange)."""
    return batch / timer(fn).blocked_autorange(min_run_time=min_time_s).median


def gpu_figures(net, x: tuple, xb: tuple, min_time_s: float = MIN_TIME_S) -> dict:
    """GPU latency (batch 1), throughput (batch of xb) and peak memory, where a GPU is present
    (Timer synchronises the device, so the kernels' completion is timed)."""
    if not torch.cuda.is_available():
        return {}
    net = net.cuda()
    x, xb = tuple(t.cuda() for t in x), tuple(t.cuda() for t in xb)
    torch.cuda.reset_peak_memory_stats()
    (m,) = interleaved_measurements([lambda: net(*x)], min_time_s=min_time_s, rounds=1)
    lat = measurement_stats(m)
    out = {"gpu": torch.cuda.get_device_name(0), "gpu_latency_ms": lat["median_ms"], "gpu_latency_p90_ms": lat["p90_ms"],
           "gpu_throughput_cps": throughput(lambda: net(*xb), len(xb[0]), min_time_s),
           "gpu_peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20}
    net.cpu()
    return out


def timing_inputs(run: Path, batch: int) -> dict:
    """A run's whole test-time forward (forward.build on its config.py's model, eval mode) and
    example inputs at batch 1 and ``batch`` (all test views; fast_rcnn: its whole frames and
    one RoI per clip)."""
    from ..training import detection
    p = json.loads((run / "params.json").read_text())
    net = forward.build(build_model(run))
    shape = detection.frame_shape(run) if forward.is_fast_rcnn_params(p) else None
    return {"p": p, "net": net, "x": forward.example_inputs(p, 1, frame_shape=shape),
            "xb": forward.example_inputs(p, batch, frame_shape=shape)}


def measure(runs: list[Path], update_hz: float = 1.0, warmup: int = 3, repeats: int = 15, batch: int = 8,
            min_time_s: float = MIN_TIME_S, rounds: int = ROUNDS) -> list[dict]:
    """Cost of each run's whole test-time forward: size, FLOPs, CPU latency at batch 1 (the
    real-time case; all runs timed interleaved), CPU throughput at ``batch`` clips per call,
    peak memory of each; GPU figures when present."""
    items = [timing_inputs(run, batch) for run in runs]
    with torch.no_grad():
        # memory first, on cold calls: once warm, the allocator reuses its buffers and a call adds nothing
        mems = [(peak_memory_mb(lambda: it["net"](*it["x"])), peak_memory_mb(lambda: it["net"](*it["xb"])))
                for it in items]
        times = interleaved_measurements([lambda it=it: it["net"](*it["x"]) for it in items], warmup, repeats,
                                         min_time_s, rounds)
        rows = []
        for it, (mem1, memb), m in zip(items, mems, times):
            p, net, x, xb = it["p"], it["net"], it["x"], it["xb"]
            lat = measurement_stats(m)
            budget = 1000.0 / update_hz
            rows.append({
                "model": p["model"], "seed": p["seed"], "params_m": sum(q.numel() for q in net.parameters()) / 1e6,
                "gflops": gflops(net, x), "views": forward.views(p),
                "cpu_latency_ms": lat["median_ms"], "cpu_latency_p90_ms": lat["p90_ms"],
                "repeats": lat["repeats"], "calls": lat["calls"], "min_time_s": min_time_s, "warmup": warmup,
                "window_s": window_s(p),
                "update_hz": update_hz, "realtime": bool(lat["p90_ms"] <= budget), "headroom": budget / lat["p90_ms"],
                "cpu_throughput_cps": throughput(lambda: net(*xb), batch, min_time_s), "throughput_batch": batch,
                "peak_mem_mb": mem1, "boxes_per_prediction": boxes_per_prediction(p), "peak_mem_batch_mb": memb,
                **gpu_figures(net, x, xb, min_time_s)})
    return rows


def run_cost_key(run: Path, settings: dict) -> str:
    """What a run's cost row depends on (costcache.key): the architecture its config.py builds,
    the inputs its parameters give (fast_rcnn: its frames' shape too), the timing code and
    settings, the machine. Not the weights: a recogniser's time does not depend on them."""
    from mmengine.config import Config
    from . import costcache
    p = json.loads((run / "params.json").read_text())
    model = Config.fromfile(str(run / "config.py"), import_custom_modules=False).model.to_dict()
    shape = [list(x.shape) for x in forward.example_inputs(p, 1)]
    if forward.is_fast_rcnn_params(p):
        from ..training import detection
        shape.append(list(detection.frame_shape(run)))
    return costcache.key({"model": model, "inputs": shape, "boxes": boxes_per_prediction(p),
                          "window_s": window_s(p), "views": forward.views(p), "model_name": p["model"],
                          "seed": p["seed"]}, settings=settings)


def measure_cached(runs: list[Path], out: Path, update_hz: float = 1.0, repeats: int = 15) -> list[dict]:
    """measure()'s rows, each from evaluation/cost_cache/ when it was timed under the same
    inputs (costcache), so that an evaluation re-run for another reason (the report's code,
    the docs) re-times nothing; the runs not cached are timed together, interleaved."""
    from . import costcache
    settings = {"update_hz": update_hz, "repeats": repeats, "batch": 8, "min_time_s": MIN_TIME_S, "rounds": ROUNDS,
                "threads": torch.get_num_threads()}
    keys = [run_cost_key(run, settings) for run in runs]
    names = [run.parent.name for run in runs]
    rows = [costcache.load(out, n, k) for n, k in zip(names, keys)]
    todo = [i for i, r in enumerate(rows) if r is None]
    for i, row in zip(todo, measure([runs[i] for i in todo], update_hz, repeats=repeats) if todo else []):
        costcache.save(out, names[i], keys[i], row)
        rows[i] = row
    return rows


def measure_runs(runs: list[Path], out: Path, update_hz: float = 1.0, repeats: int = 15) -> pd.DataFrame:
    """cost.csv / cost.json in ``out`` for the given finished runs (one per model); a run whose
    cost inputs have not changed since it was last timed keeps its figures (measure_cached)."""
    rows = measure_cached(runs, out, update_hz, repeats)
    df = pd.DataFrame(rows)
    atomic.to_csv(df, out / "cost.csv", index=False)
    prov = provenance.collect()
    atomic.write_text(out / "cost.json", json.dumps({"rows": rows, "update_hz": update_hz, "batch": 1, "device": "cpu",
                                               "torch_threads": torch.get_num_threads(),
                                               "forward": "forward.build: preprocessor, backbone, neck, head, "
                                                          "consensus, all test views (fast_rcnn: its RoI)",
                                               "timing": "torch.utils.benchmark blocked_autorange, interleaved "
                                                         f"rounds ({ROUNDS}; cost.interleaved_measurements); "
                                                         "median and p90 over blocks",
                                               "hardware": prov["hardware"], "versions": prov["versions"],
                                               "git": prov["git"]}, indent=1, default=str))
    return df


def boxes_per_prediction(p: dict) -> int:
    """Pet boxes one prediction needs: fast_rcnn takes one RoI (its key frame); a crop model was
    trained on frames each cropped to its own box, so every frame it sees needs a detection."""
    from ..training.detection import is_fast_rcnn
    if is_fast_rcnn(p):
        return 1
    return p["clip_len"] * p["test_clips"] if p["sampling"] == "clip" else p["num_segments"]


def add_detector(df: pd.DataFrame, det: dict, update_hz: float) -> pd.DataFrame:
    """End-to-end cost with the pet detector: every model here needs the pet's box (crops for
    the recognisers, the RoI for fast_rcnn), and a camera gives none. A prediction costs the
    model's latency plus one detection per box it needs (boxes_per_prediction); the verdict is
    taken on the sum of the 90th percentiles."""
    budget = 1000.0 / update_hz
    out = df.copy()
    n = out["boxes_per_prediction"] if "boxes_per_prediction" in out else 1
    out["detector_ms"] = det["cpu_latency_ms"] * n
    out["e2e_latency_ms"] = out["cpu_latency_ms"] + det["cpu_latency_ms"] * n
    out["e2e_latency_p90_ms"] = out["cpu_latency_p90_ms"] + det["cpu_latency_p90_ms"] * n
    out["realtime_e2e"] = out["e2e_latency_p90_ms"] <= budget
    out["headroom_e2e"] = budget / out["e2e_latency_p90_ms"]
    return out


def pareto_front(summary: pd.DataFrame, x: str = "cpu_latency_ms", y: str = "top1") -> list[str]:
    """Models no other model beats on both axes (lower ``x`` and higher ``y``), fastest first."""
    df = summary.dropna(subset=[x, y]).sort_values([x, y], ascending=[True, False], kind="stable")
    front, best = [], -np.inf
    for row in df.itertuples():
        if getattr(row, y) > best:
            front.append(row.model)
            best = getattr(row, y)
    return front
