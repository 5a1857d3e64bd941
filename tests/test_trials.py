"""Claims over trials (evaluation/trials.py): the mean over trials with an interval holding the
clip and the trial variance, the paired test stratified by trial and clip, and P(A > B)."""
import numpy as np
import pytest

from petaction.evaluation import stats, trials


def trial_results(rates, n=200, seed=0):
    """{trial: (ids, correct)}: trial t's clips t:<i>, exactly rates[t] of them right, at random places."""
    rng = np.random.default_rng(seed)
    return {t: (np.array([f"{t}:{i}" for i in range(n)]), rng.permutation(n) < round(r * n))
            for t, r in enumerate(rates, 1)}


def test_the_interval_holds_the_trial_spread_as_well_as_the_clips():
    steady, spread = trial_results([0.7, 0.7, 0.7]), trial_results([0.6, 0.7, 0.8])
    s, w = trials.summary(steady), trials.summary(spread)
    assert s["n_trials"] == 3 and not s["single_network"]
    assert s["top1_mean"] == pytest.approx(np.mean([c.mean() for _, c in steady.values()]))
    assert (w["top1_ci_high"] - w["top1_ci_low"]) > 1.5 * (s["top1_ci_high"] - s["top1_ci_low"])
    assert s["top1_trial_std"] == pytest.approx(0, abs=1e-12) and w["top1_trial_std"] == pytest.approx(0.1)
    assert s["top1_ci_low"] < s["top1_mean"] < s["top1_ci_high"]
    one = trials.summary(trial_results([0.7]))
    assert one["single_network"] and np.isnan(one["top1_trial_std"])


def test_cmh_over_trial_and_clip_strata_is_mcnemar_on_the_pooled_pairs():
    """One result per model in each (trial, clip) stratum: the CMH statistic is the continuity-corrected
    McNemar chi-square of the discordant pairs pooled over trials."""
    from scipy.stats import chi2
    a, b = trial_results([0.8, 0.75, 0.8], seed=1), trial_results([0.7, 0.72, 0.6], seed=2)
    c = trials.compare(a, b)
    n10, n01 = c["a_only"], c["b_only"]
    assert c["p_value"] == pytest.approx(chi2.sf((abs(n10 - n01) - 1) ** 2 / (n10 + n01), 1))
    assert c["direction"] == "a" and c["p_a_beats_b"] == 1.0 and c["comparable"] and c["n_trials"] == 3


def test_p_outperforms_counts_trials_and_its_interval_spans_their_disagreement():
    a = trial_results([0.8, 0.6, 0.8, 0.8], seed=3)
    b = {t: (ids, c) for t, (ids, c) in trial_results([0.7, 0.7, 0.7, 0.7], seed=4).items()}
    c = trials.compare(a, b)
    assert c["p_a_beats_b"] == pytest.approx(np.mean([d > 0 for d in c["per_trial_diff"]]))
    assert c["p_a_beats_b_ci_low"] < c["p_a_beats_b"] <= c["p_a_beats_b_ci_high"]
    assert trials.p_outperforms([0.1, 0.0, -0.1]) == 0.5


def test_two_trials_are_not_comparable_and_mismatched_clips_are_refused():
    a, b = trial_results([0.8, 0.8]), trial_results([0.7, 0.7], seed=5)
    assert trials.compare(a, b)["comparable"] is False
    assert trials.compare(a, {9: b[1]}) is None
    b[2] = (b[1][0], b[2][1])   # trial 2 scored on trial 1's clips
    with pytest.raises(ValueError, match="trial 2: the two models were tested on different clips"):
        trials.compare(a, b)


def test_one_trial_matches_the_seed_machinery():
    a, b = trial_results([0.8], seed=6), trial_results([0.7], seed=7)
    c, ref = trials.compare(a, b), stats.paired_test(a[1][1], b[1][1])
    assert (c["a_only"], c["b_only"], c["diff"]) == (ref["a_only"], ref["b_only"], pytest.approx(ref["diff"]))
