"""Screen on trial 1, confirm the deciding models: the confirm set (evaluation/confirm.py), the
study's confirm parameter (phases.py) and the decisions over trials (evaluation/overtrials.py)."""
import numpy as np
import pandas as pd
import pytest

from petaction import phases, study
from petaction.core.errors import ParamError
from petaction.evaluation import confirm, evaluate, overtrials, trials


def trial1_decisions():
    """decide()'s decisions on trial 1: seven models, five of which a comparison involves."""
    return {"ranking": ["tsm", "i3d", "x3d", "tsm_balanced", "tsn", "slowfast", "resnext"], "best": "tsm",
            "runner_up": "i3d",
            "recommendation": {"pick": "tsm", "instead": None, "model": None, "reason": "fails_test_baseline",
                               "candidates": [{"model": "x3d", "non_inferior": False}]},
            "order_only": {"leader": "tsm", "blind_model": "tsn"},
            "claims": [{"kind": "baseline", "a": "slowfast", "b": "majority"},
                       {"kind": "leader", "a": "tsm", "b": "i3d"},
                       {"kind": "balance", "a": "tsm", "b": "tsm_balanced"},
                       {"kind": "order_only", "a": "tsm", "b": "resnext"}]}


def test_the_confirm_set_is_the_models_the_validation_decisions_involve():
    d = trial1_decisions()
    c = confirm.confirm_set(d)
    assert [x["model"] for x in c] == ["tsm", "i3d", "tsm_balanced", "tsn"]   # in trial 1's ranking order
    why = {x["model"]: x["why"] for x in c}
    assert "best on validation" in why["tsm"] and "class-balance pair with tsm" in why["tsm_balanced"]
    assert why["tsn"] == ["order-blind reference"]
    # not slowfast (a baseline claim only) nor resnext (compared with the leader, never deciding),
    # nor x3d: faster than the pick but not non-inferior to it on trial 1, so screened out
    assert confirm.models({"confirm": c}) == [x["model"] for x in c] and confirm.models({}) == []
    assert confirm.screened_out({**d, "confirm": c}) == ["x3d"]
    # a faster candidate that was non-inferior is confirmed, and then not screened out
    d["recommendation"]["candidates"].append({"model": "slowfast", "non_inferior": True})
    c = confirm.confirm_set(d)
    assert "slowfast" in confirm.models({"confirm": c}) and confirm.screened_out({**d, "confirm": c}) == ["x3d"]


def test_confirm_is_checked_like_every_other_key():
    base = {"trials": 3, "targets": ["action", "emotion"], "target_models": {"emotion": ["tsn", "tsm", "tsm@action"]}}
    assert study.load_study(None, base)["confirm"] == "auto"
    for bad, msg in (("some", "unknown confirm 'some'"), ({"cat": "auto"}, "confirm names target 'cat'"),
                     ({"emotion": ["x3d"]}, r"confirm.emotion names \['x3d'\], which the study does not train"),
                     ({"emotion": "most"}, "unknown confirm.emotion 'most'"), (3, "confirm is 3")):
        with pytest.raises(ParamError, match=msg):
            study.load_study(None, {**base, "confirm": bad})
    with pytest.raises(ParamError, match="chooses the models of trials 2..n, and this study has trials: 0"):
        study.load_study(None, {"confirm": "all"})


def test_a_confirmed_transfer_brings_its_source_on_the_same_trials():
    cfg = study.load_study(None, {"trials": 3, "profile": "tiny", "targets": ["action", "emotion"],
                                  "target_models": {"emotion": ["tsn", "tsm", "tsm@action"]},
                                  "confirm": {"action": ["tsn"], "emotion": ["tsm@action"]}})
    sets = {t: phases.known(cfg, t, study.models_for) for t in cfg["targets"]}
    assert phases.with_sources(cfg, sets, study.step_params) == {"action": ["tsn", "tsm"], "emotion": ["tsm@action"]}
    assert not phases.screens(cfg, cfg["targets"]) and phases.screens({**cfg, "confirm": "auto"}, ["action"])


def results(rates, seed, labels=2):
    rng = np.random.default_rng(seed)
    return {t: (np.array([f"{t}:{i}" for i in range(120)]), rng.permutation(120) < round(r * 120),
                np.arange(120) % labels) for t, r in enumerate(rates, 1)}


def test_decisions_over_trials_speak_of_confirmed_models_only():
    """Three models over three trials, one screened on trial 1 only (and best there): the best is by
    the mean validation top-1 over trials, and no claim names the single network."""
    test = {"a": results([0.8, 0.8, 0.8], 1), "b": results([0.6, 0.62, 0.6], 2), "c": results([0.5, 0.5, 0.5], 3),
            "d": results([0.95], 4)}
    val = {"a": results([0.7, 0.72, 0.7], 5), "b": results([0.75, 0.74, 0.75], 6), "c": results([0.4, 0.4, 0.4], 7),
           "d": results([0.99], 8)}
    summary = pd.DataFrame({"model": ["d", "b", "a", "c"], "cpu_latency_ms": [50.0, 30.0, 10.0, 5.0],
                            "realtime": [True] * 4, "headroom": [20.0, 30.0, 100.0, 200.0]})
    first = {"claims": [{"kind": "baseline", "a": m, "winner": m} for m in "abcd"],
             "val_baseline": [{"kind": "baseline", "a": m, "winner": m} for m in "abcd"]}
    o = overtrials.decide(test, val, summary, first, [1], "c", margin=0.15, alpha=0.05, recommend=evaluate.recommend)
    assert o["confirmed"] == ["a", "b", "c"] and o["single_network"] == ["d"]
    assert (o["best"], o["runner_up"]) == ("b", "a")   # on validation, not test (a is better there)
    assert o["recommendation"]["pick"] == "b" and o["recommendation"]["model"] == "a"   # faster, non-inferior
    assert all("d" not in (c["a"], c["b"]) for c in o["claims"])
    kinds = [(c["kind"], c["a"], c["b"]) for c in o["claims"]]
    assert ("leader", "b", "a") in kinds and not any(k[0] == "recommendation" for k in kinds)   # same pair, once
    assert o["family_size"] == len(o["claims"]) and all(c["p_holm"] >= c["p_value"] for c in o["claims"])
    assert overtrials.claim(o, None, "a", "b")["kind"] == "leader"
    assert overtrials.decide({"d": test["d"]}, {"d": val["d"]}, summary, first, [1], "c", 0.05, 0.05,
                             evaluate.recommend) is None


def test_the_study_screens_then_trains_trials_2_to_n_of_the_confirm_set_and_its_sources(tmp_path, monkeypatch):
    """The order of a study with trials (no training here: the pools and evaluations are recorded):
    trial 1 of every model in one pool, each target's screening evaluation, trials 2..3 of the
    confirm sets (the action source of a confirmed tsm@action joining them) in a second pool, the
    final evaluations; with confirm: all, one pool and no screening."""
    cfg = study.load_study(None, {"study": "s", "results_dir": str(tmp_path), "profile": "tiny", "trials": 3,
                                  "models": ["tsn", "tsm", "x3d"], "targets": ["action", "emotion"],
                                  "target_models": {"emotion": ["tsn", "tsm@action"]}, "detector": False})
    pools, steps = [], []
    monkeypatch.setattr(study, "prepare_target", lambda cfg, t, force, log: {"step": f"prepare ({t})", "status": "done"})
    monkeypatch.setattr(study, "data_inputs", lambda *a, **k: "")
    monkeypatch.setattr(study, "train_all", lambda s, r, cfg, force, log: pools.append(sorted(x.name for x in s)) or [])
    monkeypatch.setattr(study.Step, "run", lambda self, force, log, env=None: steps.append(self.name)
                        or {"step": self.name, "status": "done"})
    monkeypatch.setattr(phases, "from_decisions", lambda cfg, t: {"action": ["x3d"], "emotion": ["tsm@action"]}[t])

    def names(target, models, trials):
        return sorted(f"train {m} seed {t - 1} trial {t} ({target})" for m in models for t in trials)

    study.run_targets(cfg, False, lambda line: None)
    assert steps == ["screen (action)", "screen (emotion)", "evaluate (action)", "evaluate (emotion)"]
    assert pools == [sorted(names("action", ["tsn", "tsm", "x3d"], [1]) + names("emotion", ["tsn", "tsm@action"], [1])),
                     sorted(names("action", ["x3d", "tsm"], [2, 3]) + names("emotion", ["tsm@action"], [2, 3]))]
    pools.clear(), steps.clear()
    study.run_targets({**cfg, "confirm": "all"}, False, lambda line: None)
    assert steps == ["evaluate (action)", "evaluate (emotion)"]
    assert pools == [sorted(names("action", ["tsn", "tsm", "x3d"], [1, 2, 3]) + names("emotion", ["tsn", "tsm@action"], [1, 2, 3]))]


def test_the_report_speaks_over_trials_of_confirmed_models_only():
    """With over_trials, the abstract, conclusion and recommendation name the over-trials best and
    recommendation, and each comparison prints P(A > B) with its interval and the Holm p-value; the
    transfer pair is stated whatever its direction; without it, the report's own text is kept."""
    import re
    from petaction.reporting import trialtext
    test = {"a": results([0.8, 0.8, 0.8], 1), "b": results([0.6, 0.62, 0.6], 2), "a@action": results([0.7] * 3, 9),
            "d": results([0.95], 4)}
    val = {"a": results([0.7, 0.72, 0.7], 5), "b": results([0.75, 0.74, 0.75], 6), "a@action": results([0.6] * 3, 10),
           "d": results([0.99], 8)}
    summary = pd.DataFrame({"model": ["d", "b", "a", "a@action"], "cpu_latency_ms": [50.0, 30.0, 10.0, 10.0],
                            "realtime": [True] * 4, "headroom": [20.0, 30.0, 100.0, 100.0]})
    first = {"claims": [{"kind": "baseline", "a": m, "winner": m} for m in test] +
             [{"kind": "init", "a": "a", "b": "a@action"}],
             "val_baseline": [{"kind": "baseline", "a": m, "winner": m} for m in test]}
    o = overtrials.decide(test, val, summary, first, [1], "", 0.15, 0.05, evaluate.recommend)
    tables = pd.DataFrame([{"model": m, **trials.summary(trials.restrict(test[m]))} for m in test])
    r = {"decisions": {"over_trials": o}, "trials": tables, "summary": summary,
         "run_params": {"a@action": {"init": "action:a"}, "a": {}}}
    abstract = trialtext.abstract(r, "We train four models.")
    assert "Selected by mean validation top-1 over its trials, b reaches" in abstract
    pairs = re.findall(r"P\((\S+) > (\S+)\) across trials [0-9.]+, 95% interval [0-9.]+ to [0-9.]+", abstract)
    assert ("b", "a") in pairs and ("a", "a@action") in pairs and all("d" not in p for p in pairs)
    assert "Behaviour -> emotion transfer (a@action against a)" in abstract and "Holm-corrected p" in abstract
    assert "d ran fewer than 3 trials (a single network)" in abstract
    rec = trialtext.recommendation(r)
    assert rec.startswith("Recommendation (over trials): a.") and "non-inferior to it within 15 points" in rec
    assert "Screened out" not in rec
    r["decisions"]["recommendation"] = {"candidates": [{"model": "d", "non_inferior": False}]}
    assert trialtext.recommendation(r).endswith("no claim made): d.")
    del r["decisions"]["recommendation"]
    assert "P(b > a) across trials" in rec   # the pair's claim (the leader's: tested once)
    assert "On trial 1" in trialtext.conclusion(r, ["On that trial, x."]) and "b has the highest" in trialtext.conclusion(r, [])
    assert trialtext.over({"decisions": {}}) is None
    from petaction.reporting import report
    r["decisions"]["trial_claims"] = o["claims"]
    r["target"] = "action"
    assert f"the {len(o['claims'])} paired tests over trials" in report.holm_text(r) and len(o["claims"]) >= 2
    plain = {"decisions": {"claims": [{"p_holm": 0.1}, {"p_holm": 0.2}, {}], "family": "x"}, "target": "action"}
    assert "the 2 tests the report states" in report.holm_text(plain)
