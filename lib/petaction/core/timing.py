"""Timing a callable: wall-time calls and torch.utils.benchmark measurements, interleaved so that
the machine's load falls on every candidate alike (cost and the detector time with these)."""
from __future__ import annotations

import os
import time

import numpy as np
import torch


def min_time_s(default: float = 2.0) -> float:
    """Timed seconds per latency figure, at least (Timer's min_run_time; time_calls): 2 s, or
    PETACTION_MIN_TIME_S. The test suite sets 0.1: its tiny studies check that the figures are
    made and used, not what they are, and 2 s per figure per model was minutes of every run."""
    raw = os.environ.get("PETACTION_MIN_TIME_S", "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"PETACTION_MIN_TIME_S={raw!r}: set it to a positive number of seconds, or unset it "
                         f"for the default {default} s")
    return value


MIN_TIME_S = min_time_s()
ROUNDS = 10        # interleaved rounds of the batch-1 latencies (interleaved_measurements)


def time_calls(fn, warmup: int = 3, repeats: int = 15, min_time_s: float = 0.0) -> list[float]:
    """Wall times (ms) of fn() calls after ``warmup`` untimed calls: at least ``repeats`` calls
    and, with ``min_time_s``, as many more as fill that many seconds. A 10 ms model timed 15
    times is timed for 0.15 s, and one burst of another process moves its 90th percentile
    (two passes differed by up to 1.5x); timed for 2 s, its median and 90th percentile
    average over whatever else the machine does (timeit's autorange, for the same reason)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        fn()
        times.append(1000.0 * (time.perf_counter() - t0))
    return times


def interleaved_times(fns: list, warmup: int = 3, repeats: int = 15, min_time_s: float = 0.0,
                      rounds: int = 10) -> list[list[float]]:
    """Wall times (ms) of each fn's calls, timed in ``rounds`` rounds that visit every fn in turn
    (after ``warmup`` untimed calls of each): per fn at least ``repeats`` calls and at least
    ``min_time_s`` seconds in all, spread evenly over the rounds."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times = [[] for _ in fns]
    calls_per_round = -(-repeats // rounds)   # ceil: the repeats are reached by the last round
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            times[i] += time_calls(fn, warmup=0, repeats=calls_per_round, min_time_s=min_time_s / rounds)
    return times


def latency_stats(times_ms: list[float]) -> dict:
    return {"median_ms": float(np.median(times_ms)), "p90_ms": float(np.percentile(times_ms, 90)),
            "repeats": len(times_ms)}


def timer(fn) -> "torch.utils.benchmark.Timer":
    """A torch.utils.benchmark Timer of fn() at the process's torch threads (Timer's default is
    one thread; on a CUDA machine it synchronises the device around each block)."""
    from torch.utils import benchmark
    return benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())


def interleaved_measurements(fns: list, warmup: int = 3, repeats: int = 15, min_time_s: float = MIN_TIME_S,
                             rounds: int = ROUNDS) -> list:
    """One torch.utils.benchmark Measurement per fn (Measurement.merge of its rounds), timed
    in ``rounds`` rounds that visit every fn in turn, each round Timer.blocked_autorange for
    min_time_s / rounds seconds, after ``warmup`` untimed calls of each fn. A fn with fewer
    than ``repeats`` timed blocks after the rounds (a slow model: one call fills a round) gets
    more rounds until it has them. Each measurement has ``calls`` set: the calls it timed."""
    from torch.utils.benchmark import Measurement
    for fn in fns:
        for _ in range(warmup):
            fn()
    timers = [timer(fn) for fn in fns]
    parts = [[] for _ in fns]
    r = 0
    while r < rounds or any(sum(len(m.raw_times) for m in ps) < repeats for ps in parts):
        for t, ps in zip(timers, parts):
            if r < rounds or sum(len(m.raw_times) for m in ps) < repeats:
                ps.append(t.blocked_autorange(min_run_time=min_time_s / rounds))
        r += 1
    out = []
    for ps in parts:
        (merged,) = Measurement.merge(ps)
        merged.calls = sum(len(m.raw_times) * m.number_per_run for m in ps)
        out.append(merged)
    return out


def measurement_stats(m) -> dict:
    """Median and 90th percentile (ms) over a Measurement's blocks (a block is number_per_run
    calls, averaged: one call once Timer's overhead is under 1e-4 of it, about 10 ms and up)."""
    return {"median_ms": 1000.0 * m.median, "p90_ms": float(np.percentile(m.times, 90)) * 1000.0,
            "repeats": len(m.times), "calls": m.calls}
