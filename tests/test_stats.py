"""Statistics against known cases."""
import numpy as np
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
