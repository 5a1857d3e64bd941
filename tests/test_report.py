"""The report's generated sentences follow the numbers (and only claim what holds)."""
import pandas as pd
import pytest

from petaction import report


def fake(top1, order_only, counts_test=(10, 2, 2)):
    summary = pd.DataFrame({"model": ["a", "b"], "top1": top1, "mean_class_acc": [0.5, 0.4],
                            "top1_order_only": order_only, "n_test": [14, 14]})
    counts = pd.DataFrame({"label": ["X", "U", "D"], "train": [50, 10, 10], "val": [5, 1, 1],
                           "test": list(counts_test), "total": [65, 13, 13]})
    per_class = pd.DataFrame({"a": [0.9, 0.5, 0.0], "b": [0.9, 0.0, 0.0]}, index=["X", "U", "D"])
    return {"summary": summary, "counts": counts, "per_class": per_class, "failed": pd.DataFrame(),
            "classes": {"classes": ["X", "U", "D"], "order_only": ["U", "D"]}}


def test_no_claim_of_learning_below_the_majority_baseline():
    text = report.conclusion(fake([0.70, 0.60], [0.5, 0.25]))     # majority: 10/14 = 71.4%
    assert "No model beats always predicting the commonest test class (X, 71.4%)" in text


def test_order_only_sentence_follows_the_numbers():
    text = report.conclusion(fake([0.90, 0.80], [0.75, 0.25]))
    assert "a reaches 75.0% against b's 25.0%" in text
    tied = report.conclusion(fake([0.90, 0.80], [0.5, 0.5]))
    assert "no model beats another" in tied and "reaches" not in tied


def test_leader_and_margin():
    text = report.conclusion(fake([0.90, 0.80], [0.5, 0.5]))
    assert text.startswith("a has the highest test top-1 (90.0%).")
    assert "b (80.0%), 10.0 points behind" in text


def test_a_beats_b_only_when_mcnemar_says_so():
    r = fake([0.90, 0.80], [0.5, 0.5])
    r["summary"]["top1_ci_low"], r["summary"]["top1_ci_high"] = [0.8, 0.7], [0.95, 0.9]
    r["paired"] = pd.DataFrame([{"model_a": "a", "model_b": "b", "n_clips": 14, "p_value": 0.01}])
    assert "a beats b on the same 14 test clips (McNemar's test, p = 0.010)" in report.conclusion(r)
    r["paired"]["p_value"] = 0.4
    text = report.conclusion(r)
    assert "a beats b" not in text
    assert "The difference between a and b is not significant" in text


def test_above_the_baseline_only_within_noise_is_said_so():
    r = fake([0.75, 0.60], [0.5, 0.5])                      # baseline 71.4%
    r["summary"]["top1_ci_low"], r["summary"]["top1_ci_high"] = [0.55, 0.4], [0.9, 0.8]
    text = report.conclusion(r)
    assert "a's top-1 is above always predicting the commonest test class (X, 71.4%), but its 95% " \
           "interval (55.0% to 90.0%) includes that rate." in text
    assert "b does not beat that rate." in text


def test_order_only_beats_only_when_mcnemar_on_those_clips_says_so():
    r = fake([0.90, 0.80], [0.95, 0.40])
    r["paired"] = pd.DataFrame([{"model_a": "b", "model_b": "a", "n_clips": 14, "p_value": 0.5,
                                 "n_clips_order_only": 4, "a_only_order_only": 0, "b_only_order_only": 9,
                                 "p_value_order_only": 0.004}])
    assert "On those clips a beats b (40.0%, p = 0.004)" in report.conclusion(r)
    r["paired"]["p_value_order_only"] = 0.2
    assert "On those clips" not in report.conclusion(r)


def test_curve_verdicts():
    from petaction import diagnose
    def log(losses, vals):
        return pd.DataFrame({"epoch": range(1, len(losses) + 1), "train_loss": losses, "val_top1": vals,
                             "epoch_time_s": 2.0})
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 2.35, 2.3, 2.3], [.2, .2, .25, .2]))) == "stalled"
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 1.8, 1.2, 0.8], [.2, .4, .5, .6]))) == "under-trained"
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 1.2, 0.6, 0.2, 0.1, 0.05], [.5, .6, .5, .5, .45, .45]))) == "overfitting"
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 1.0, 0.5, 0.48, 0.47, 0.47], [.3, .5, .6, .62, .61, .62]))) == "converged"


def test_balance_comparison_pairs_only_runs_differing_in_balancing():
    r = fake([0.7, 0.6], [0.5, 0.25])
    r["summary"]["macro_f1"] = [0.5, 0.45]
    base = {"lr": 0.002, "epochs": 16, "class_balance": "none"}
    r["run_params"] = {"a": {**base, "model": "a"}, "b": {**base, "model": "b", "class_balance": "sampler"}}
    r["paired"] = pd.DataFrame([{"model_a": "a", "model_b": "b", "n_clips": 14, "p_value": 0.5}])
    assert report.balance_pairs(r) == [("a", "b")]
    text = report.balance_comparison(r)
    assert "b is a trained with class balancing by sampling: top-1 60.0% against 70.0%" in text
    assert "not a significant difference" in text and "p = 0.500" in text
    r["run_params"]["b"]["epochs"] = 8                # differs in more than balancing: no pair
    assert report.balance_pairs(r) == []
    assert "No run in this study differs" in report.balance_comparison(r)


def test_detector_latency_joins_the_verdict():
    from petaction import cost
    df = pd.DataFrame({"model": ["a", "b"], "cpu_latency_ms": [10.0, 600.0], "cpu_latency_p90_ms": [12.0, 700.0],
                       "boxes_per_prediction": [2, 1]})
    det = {"cpu_latency_ms": 300.0, "cpu_latency_p90_ms": 350.0}
    out = cost.add_detector(df, det, update_hz=1.0)
    assert list(out["e2e_latency_ms"]) == [610.0, 900.0]     # a: two detections, b: one
    assert list(out["realtime_e2e"]) == [True, False]        # 700 + 350 ms > the 1000 ms budget
    assert out["headroom_e2e"].iloc[0] == pytest.approx(1000 / 712)
    assert cost.boxes_per_prediction({"model": "tsm", "mm_base": "tsm_r50", "model_cfg": {}, "sampling": "segments",
                                      "num_segments": 4, "clip_len": 8, "test_clips": 1}) == 4
    assert "No pet detector" in report.detector_text({"detector": None})
