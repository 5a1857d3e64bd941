"""The report's generated sentences follow the numbers (and only claim what holds)."""
import pandas as pd

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
