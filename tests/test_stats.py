"""Statistics against known cases."""
import time

import numpy as np
import pandas as pd
import pytest

from petaction import stats


def test_bootstrap_interval_covers_a_known_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(40):
        x = rng.random(200) < 0.7
        lo, hi = stats.bootstrap_ci(x, n_boot=1000, seed=trial)
        covered += lo <= 0.7 <= hi
        assert 0.04 < hi - lo < 0.18          # about 2 * 1.96 * sqrt(.7 * .3 / 200) = 0.127
    assert covered >= 34                        # a 95% interval: about 38 of 40


def test_mcnemar_on_a_hand_made_table():
    # 10 clips only A gets right, 2 only B: exact p = 2 * P(X <= 2 | n=12, p=1/2) = 2 * 79 / 4096
    a = np.array([1] * 10 + [0] * 2 + [1] * 5 + [0] * 3, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 5 + [0] * 3, bool)
    r = stats.mcnemar(a, b)
    assert (r["a_only"], r["b_only"]) == (10, 2)
    assert r["p_value"] == pytest.approx(2 * 79 / 4096)
    assert stats.mcnemar(a, a)["p_value"] == 1.0


def test_latency_harness_excludes_warm_up():
    from petaction import cost
    calls = []

    def fn():  # the first three calls are slow (warm-up), the rest fast
        calls.append(1)
        time.sleep(0.05 if len(calls) <= 3 else 0.001)
    times = cost.time_calls(fn, warmup=3, repeats=5)
    assert len(calls) == 8 and len(times) == 5
    assert max(times) < 40  # ms: no warm-up call was timed
    # a time budget adds calls until it is filled (a fast model is timed long enough to be stable)
    calls.clear()
    times = cost.time_calls(lambda: time.sleep(0.005), warmup=1, repeats=2, min_time_s=0.1)
    assert len(times) > 2 and sum(times) >= 100 * 0.9



def test_interleaved_timing_visits_every_model_each_round():
    from petaction import cost
    order = []
    fns = [lambda: order.append("a"), lambda: order.append("b")]
    times = cost.interleaved_times(fns, warmup=2, repeats=6, rounds=3)
    assert order[:4] == ["a", "a", "b", "b"]                      # warm-up of each, untimed
    assert order[4:] == ["a", "a", "b", "b"] * 3                  # then rounds: each model in turn
    assert [len(t) for t in times] == [6, 6]


def test_pareto_front():
    from petaction import cost
    s = pd.DataFrame({"model": ["slow_good", "fast_bad", "dominated", "mid"], "top1": [0.9, 0.5, 0.4, 0.7],
                      "cpu_latency_ms": [100, 10, 50, 30]})
    assert cost.pareto_front(s) == ["fast_bad", "mid", "slow_good"]


def test_peak_memory_sees_a_temporary_allocation():
    from petaction import cost

    def big():   # 200 MB of fresh pages (an anonymous map, never recycled memory), touched, then freed
        import mmap
        m = mmap.mmap(-1, 200 * 2**20)
        for i in range(0, len(m), 4096):
            m[i] = 1
        m.close()
    peak = cost.peak_memory_mb(big)
    if np.isnan(peak):
        pytest.skip("this kernel offers no resettable peak RSS")
    assert 150 < peak < 400
    assert cost.peak_memory_mb(lambda: None) < 50   # the mark was reset, not carried over


def test_throughput_counts_clips_per_second():
    from petaction import cost
    assert cost.throughput(lambda: time.sleep(0.02), batch=8) == pytest.approx(400, rel=0.3)
