"""Metrics against hand-computed cases."""
import numpy as np
import pytest

from petaction.core import metrics as M


def test_topk_and_confusion():
    scores = np.array([[0.7, 0.2, 0.1, 0.0], [0.1, 0.3, 0.6, 0.0], [0.5, 0.4, 0.1, 0.0], [0.2, 0.3, 0.5, 0.0]])
    labels = np.array([0, 1, 1, 2])
    assert M.topk(scores, labels, 1) == 0.5
    assert M.topk(scores, labels, 2) == 1.0
    assert M.topk(scores, labels, 3) == 1.0
    assert np.isnan(M.topk(scores, labels, 5))     # not below the class count: no top-5 to report
    preds = scores.argmax(1)
    cm = M.confusion_matrix(labels, preds, 4)
    assert cm.tolist() == [[1, 0, 0, 0], [1, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert M.mean_class_accuracy(labels, preds) == pytest.approx((1 + 0 + 1) / 3)   # class 3 absent
    # F1: class0 2*1/(2+1)=2/3, class1 0, class2 2/3 (class 3 neither true nor predicted)
    assert M.macro_f1(labels, preds) == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)


def test_top2_counts_the_second_choice_only():
    scores = np.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1]])
    assert M.topk(scores, np.array([2, 2]), 2) == 0.5


def test_absent_class_is_not_averaged():
    cm = np.array([[2, 0, 0], [0, 0, 0], [1, 0, 1]])
    assert np.isnan(M.per_class_accuracy(cm)[1])
    assert M.per_class_accuracy(cm)[2] == pytest.approx(0.5)


def test_subset_accuracy():
    labels, preds = np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])
    assert M.subset_accuracy(labels, preds, [1, 2]) == pytest.approx(1 / 3)
    assert np.isnan(M.subset_accuracy(labels, preds, [5]))
