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


def test_trials_go_alone():
    from petaction import study
    from petaction.core.errors import ParamError
    with pytest.raises(ParamError, match="leave seeds out"):
        study.load_study(None, {"trials": 3, "seeds": [0, 1]})
    with pytest.raises(ParamError, match="folds and trials both redraw the split"):
        study.load_study(None, {"trials": 3, "folds": 2})
    with pytest.raises(ParamError, match="set trials at the study's top level"):
        study.load_study(None, {"prepare": {"trials": 3}})
    assert study.runs(study.load_study(None, {"trials": 3})) == [(0, 0, 1), (1, 0, 2), (2, 0, 3)]


@pytest.mark.slow
def test_study_with_three_trials_screens_on_trial_1_and_confirms_the_deciding_models(tmp_path):
    """trials: 3 on the tiny profile, confirm auto: every model trains on trial 1, trial 1's evaluation
    names the confirm set, only those train trials 2 and 3 (each on its trial's own split and seed), and
    the report's abstract speaks over the trials of the confirmed models."""
    import json
    import re
    import pandas as pd
    from conftest import TINY_PREPARE
    from petaction import study
    from petaction.core import paths
    from petaction.evaluation import leaks
    cfg = study.load_study(None, {"study": "trialtest", "results_dir": str(tmp_path), "profile": "tiny",
                                  "models": ["tsn", "tsm", "x3d"], "trials": 3, "prepare": TINY_PREPARE,
                                  "detector": False, "evaluate": {"cost_repeats": 2, "order_blind": ""}})
    log, fresh = [], []
    try:
        status = study.run(cfg, log=log.append)
        again = study.run(cfg, log=fresh.append)   # a re-run skips everything: both evaluations included
    finally:
        for suffix in ("html", "pdf"):
            (paths.REPO / "report" / f"trialtest.{suffix}").unlink(missing_ok=True)
    assert {s["status"] for s in status} == {"done"}, log
    assert {s["status"] for s in again} == {"skipped"}, fresh
    root = tmp_path / "trialtest"
    ev = root / "evaluation"
    d = json.loads((ev / "decisions.json").read_text())
    confirmed = [c["model"] for c in d["confirm"]]
    assert confirmed and all(c["why"] for c in d["confirm"])
    assert f"[conf] action: trials 2..3 of {', '.join(confirmed)}" in "\n".join(log)   # the console names them
    assert [s["step"] for s in status].index("screen (action)") < [s["step"] for s in status].index(
        f"train {confirmed[0]} seed 1 trial 2 (action)")
    for m in ("tsn", "tsm", "x3d"):   # trials 2..3 for the confirm set only
        runs = sorted(p.name for p in (root / "models" / m).iterdir())
        assert runs == (["seed0_trial1", "seed1_trial2", "seed2_trial3"] if m in confirmed else ["seed0_trial1"])
    tests = [leaks.list_ids(root / "data" / f"test.trial{t}.txt") for t in (1, 2, 3)]
    assert tests[0] != tests[1] != tests[2]
    for t, run in enumerate(("seed0_trial1", "seed1_trial2", "seed2_trial3")):
        for m in confirmed:
            assert leaks.test_ids(root / "models" / m / run) == tests[t]
    table = pd.read_csv(ev / "trials.csv").set_index("model")
    for m in confirmed:
        top1 = [json.loads((root / "models" / m / r / "metrics.json").read_text())["test"]["top1"]
                for r in ("seed0_trial1", "seed1_trial2", "seed2_trial3")]
        assert table.loc[m, "n_trials"] == 3 and not table.loc[m, "single_network"]
        assert table.loc[m, "top1_mean"] == pytest.approx(np.mean(top1), abs=1e-4)
    assert all(table.loc[m, "single_network"] for m in table.index if m not in confirmed)
    o = d["over_trials"]
    assert set(o["confirmed"]) == set(confirmed)
    assert o["best"] in confirmed and all({c["a"], c["b"]} <= set(confirmed) for c in d["trial_claims"])
    claims = pd.read_csv(ev / "trial_claims.csv")
    assert len(claims) == len(d["trial_claims"]) == o["family_size"]
    from petaction.reporting import report
    r = report.load("trialtest", str(tmp_path), "action")
    text = " ".join(x for kind, x in report.sections(r) if kind == "md")
    printed = re.search(r"Holm's correction over these (\d+) paired tests", text)
    assert printed and int(printed.group(1)) == len(claims)   # the family size printed == the rows tested
    abstract = report.abstract(r)
    named = re.findall(r"P\((\S+) > (\S+)\) across trials [0-9.]+, 95% interval [0-9.]+ to [0-9.]+", abstract)
    if len(confirmed) > 1:
        assert named and all({a, b} <= set(confirmed) for a, b in named), abstract
        assert "Holm-corrected p" in abstract
    assert f"Selected by mean validation top-1 over its trials, {o['best']}" in abstract


def test_the_report_section_names_single_networks_and_claims_only_over_three_trials():
    import pandas as pd
    from petaction.reporting import overtrials
    res = {"a": trial_results([0.9, 0.85, 0.9], seed=8), "b": trial_results([0.6, 0.62, 0.6], seed=9),
           "c": trial_results([0.5], seed=10)}
    res = {m: {t: (ids, c, np.zeros(len(ids), int)) for t, (ids, c) in r.items()} for m, r in res.items()}
    claims = trials.claims(res, [{"kind": "leader", "a": "a", "b": "b"}, {"kind": "leader", "a": "c", "b": "a"},
                                 {"kind": "baseline", "a": "a", "b": "majority"}], [])
    assert [(c["a"], c["b"]) for c in claims] == [("a", "b"), ("c", "a")]   # baselines are not paired claims
    assert claims[0]["p_holm"] >= claims[0]["p_value"] and claims[0]["winner"] == "a"
    r = {"study": "s", "target": "action", "trials": trials.table(res), "decisions": {"trial_claims": claims}}
    text = " ".join(x for _, x in overtrials.section(r))
    assert "a beats b over the trials (P(a > b) across trials 1.00" in text
    assert "c and a share 1 trial(s), fewer than three: single networks, no claim" in text
    assert "c beats" not in text and "beats c" not in text
    assert "single network" in overtrials.table(r["trials"]) and overtrials.section({**r, "trials": None}) == []
    assert list(pd.DataFrame(claims)["kind"]) == ["leader", "leader"]
