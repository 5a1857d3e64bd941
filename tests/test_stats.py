"""Statistics against known cases."""
import time

import numpy as np
import pandas as pd
import pytest

from petaction.evaluation import stats


def test_bootstrap_interval_covers_a_known_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(40):
        x = rng.random(200) < 0.7
        lo, hi = stats.bootstrap_ci(x, n_resamples=1000, seed=trial)
        covered += lo <= 0.7 <= hi
        assert 0.08 < hi - lo < 0.18          # about 2 * 1.96 * sqrt(.7 * .3 / 200) = 0.127
    assert covered >= 34                        # a 95% interval: about 38 of 40


def test_bootstrap_over_seeds_widens_when_seeds_disagree():
    rng = np.random.default_rng(0)
    clips = rng.random(300)
    agree = np.stack([clips < 0.7, clips < 0.7])
    disagree = np.stack([clips < 0.5, clips < 0.9])     # same mean over seeds, 40 points apart
    lo_a, hi_a = stats.bootstrap_ci(agree)
    lo_d, hi_d = stats.bootstrap_ci(disagree)
    assert hi_d - lo_d > 2 * (hi_a - lo_a)              # the seed spread is in the interval
    assert stats.bootstrap_ci(np.ones(10)) == (1.0, 1.0)


def test_wilson_interval_and_binomial_baseline_test():
    lo, hi = stats.wilson_ci(70, 100)
    assert (lo, hi) == pytest.approx((0.6041, 0.7811), abs=1e-4)
    assert stats.beats_rate(9, 10, 0.5) == pytest.approx(11 / 1024)      # P(X >= 9 | 10, 1/2)
    assert stats.beats_rate(5, 10, 0.5) > 0.5


def test_mcnemar_on_a_hand_made_table():
    # 10 clips only A gets right, 2 only B: exact p = 2 * P(X <= 2 | n=12, p=1/2) = 2 * 79 / 4096
    a = np.array([1] * 10 + [0] * 2 + [1] * 5 + [0] * 3, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 5 + [0] * 3, bool)
    r = stats.mcnemar(a, b)
    assert (r["a_only"], r["b_only"]) == (10, 2)
    assert r["p_value"] == pytest.approx(2 * 79 / 4096)
    assert stats.mcnemar(a, a)["p_value"] == 1.0
    t = stats.paired_test(a, b)
    assert t["direction"] == "a" and t["diff"] == pytest.approx(8 / 20) and t["test"] == "exact McNemar"
    assert stats.paired_test(b, a)["direction"] == "b"


def test_cmh_combines_seeds_with_clips_as_strata():
    a = np.array([1] * 10 + [0] * 2 + [1] * 5 + [0] * 3, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 5 + [0] * 3, bool)
    # the same result in both seeds: a stratum [[2, 0], [0, 2]] has E = 1, var = 1/3 per discordant
    # clip, so the corrected statistic is (|10 - 2| - 0.5)^2 / (12 / 3)
    r = stats.cmh(np.stack([a, a]), np.stack([b, b]))
    from scipy.stats import chi2
    assert r["p_value"] == pytest.approx(chi2.sf(7.5 ** 2 / 4, 1))
    # seed 0 favours A, seed 1 favours B by as much: no combined difference
    opposite = stats.paired_test(np.stack([a, b]), np.stack([b, a]))
    assert opposite["p_value"] > 0.5 and opposite["direction"] is None
    assert opposite["per_seed_diff"] == pytest.approx([0.4, -0.4])


def test_holm_on_a_hand_made_family():
    assert list(stats.holm([0.01, 0.04, 0.03])) == pytest.approx([0.03, 0.06, 0.06])


def test_latency_harness_excludes_warm_up():
    from petaction.evaluation import cost
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
    from petaction.evaluation import cost
    order = []
    fns = [lambda: order.append("a"), lambda: order.append("b")]
    times = cost.interleaved_times(fns, warmup=2, repeats=6, rounds=3)
    assert order[:4] == ["a", "a", "b", "b"]                      # warm-up of each, untimed
    assert order[4:] == ["a", "a", "b", "b"] * 3                  # then rounds: each model in turn
    assert [len(t) for t in times] == [6, 6]


def test_pareto_front():
    from petaction.evaluation import cost
    s = pd.DataFrame({"model": ["slow_good", "fast_bad", "dominated", "mid"], "top1": [0.9, 0.5, 0.4, 0.7],
                      "cpu_latency_ms": [100, 10, 50, 30]})
    assert cost.pareto_front(s) == ["fast_bad", "mid", "slow_good"]


def test_peak_memory_sees_a_temporary_allocation():
    from petaction.evaluation import cost

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
    from petaction.evaluation import cost
    assert cost.throughput(lambda: time.sleep(0.02), batch=8) == pytest.approx(400, rel=0.3)


def test_the_timing_budget_comes_from_the_environment_or_is_refused(monkeypatch):
    from petaction.core import timing
    monkeypatch.delenv("PETACTION_MIN_TIME_S", raising=False)
    assert timing.min_time_s() == 2.0
    monkeypatch.setenv("PETACTION_MIN_TIME_S", "0.25")
    assert timing.min_time_s() == 0.25
    for bad in ("0", "-1", "fast", "nan"):
        monkeypatch.setenv("PETACTION_MIN_TIME_S", bad)
        with pytest.raises(ValueError, match="PETACTION_MIN_TIME_S.*positive number of seconds"):
            timing.min_time_s()
