"""k-fold cross-validation (study `folds: k`): the fold assignment, the fold lists prepare
writes, pooling the folds' test scores in evaluate, and a tiny study run with folds."""
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from petaction.evaluation import evaluate
from petaction.core import paths
from petaction.data import splits

P = {"seed": 0, "group_by": "", "train_ratio": 0.7, "val_ratio": 0.1, "test_ratio": 0.2}


def rows(n_per_class=(10, 7, 3), groups=False):
    out = []
    for c, n in enumerate(n_per_class):
        for i in range(n):
            out.append({"id": f"c{c}_{i:02d}", "label": f"L{c}", "group": f"g{c}_{i // 2}" if groups else ""})
    return out


def test_every_clip_is_tested_once_and_folds_are_stratified():
    rs = rows()
    splits.assign_folds(rs, P, 3)
    assert {r["fold"] for r in rs} == {1, 2, 3}
    for label in ("L0", "L1", "L2"):   # each class spread over the folds: counts differ by at most 1
        c = Counter(r["fold"] for r in rs if r["label"] == label)
        assert max(c.values()) - min(c.get(f, 0) for f in (1, 2, 3)) <= 1
    sizes = Counter(r["fold"] for r in rs)
    assert max(sizes.values()) - min(sizes.values()) <= 1
    for i in (1, 2, 3):
        split = Counter(r[f"split_fold{i}"] for r in rs)
        assert split["test"] == sizes[i] and split["train"] + split["val"] == len(rs) - sizes[i]
        assert all(r[f"split_fold{i}"] == "test" for r in rs if r["fold"] == i)
        assert split["val"] >= 1 and split["train"] > 3 * split["val"]   # 0.7 : 0.1 of the rest
    again = rows()
    splits.assign_folds(again, P, 3)
    assert [r["fold"] for r in again] == [r["fold"] for r in rs]       # seeded


def test_groups_stay_in_one_fold_and_bad_k_is_refused():
    rs = rows(groups=True)
    splits.assign_folds(rs, {**P, "group_by": "x"}, 4)
    by_group = {}
    for r in rs:
        by_group.setdefault(r["group"], set()).add(r["fold"])
    assert all(len(f) == 1 for f in by_group.values())
    with pytest.raises(ValueError, match="at least 2"):
        splits.assign_folds(rows(), P, 1)
    with pytest.raises(ValueError, match="needs at least 5"):
        splits.assign_folds(rows((2, 1, 1)), P, 5)


def test_groups_stay_whole_in_every_folds_train_val_test():
    """With group_by, the carve of each fold's rest into train and val keeps groups whole too:
    no group in two of a fold's train/val/test, and every fold has a val set."""
    rs = rows((24, 18, 9), groups=True)
    q = {**P, "group_by": "x"}
    splits.assign_folds(rs, q, 3)
    for i in (1, 2, 3):
        assert splits.straddling(rs, f"split_fold{i}", q) == {}
        assert Counter(r[f"split_fold{i}"] for r in rs)["val"] >= 1


def test_folds_need_a_class_as_large_as_k():
    with pytest.raises(ValueError, match="needs a class with at least 4 clips"):
        splits.assign_folds(rows((3, 3, 2)), P, 4)


def test_prepare_writes_the_fold_lists(tmp_path):
    from conftest import TINY_PREPARE
    from petaction.data import prepare
    info = prepare.prepare(study="f", results_dir=tmp_path, folds=3, **TINY_PREPARE)
    data = paths.target_dir("f", "action", tmp_path) / "data"
    assert info["params"]["folds"] == 3

    def ids(f):
        return [line.split()[0] for line in (data / f).read_text().splitlines()]
    every = sorted(ids("train.txt") + ids("val.txt") + ids("test.txt"))
    tested = []
    for i in (1, 2, 3):
        lists = [ids(paths.split_file(s, i)) for s in ("train", "val", "test")]
        assert sorted(sum(lists, [])) == every                       # train/val/test partition the clips
        tested += lists[2]
    assert sorted(tested) == every                                   # each clip tested exactly once
    with pytest.raises(ValueError, match="folds must be 0"):
        prepare.prepare(study="f", results_dir=tmp_path, folds=1, **TINY_PREPARE)


def fake_run(models_dir, model, fold, ids, labels, scores):
    run = models_dir / model / paths.run_name(0, fold)
    run.mkdir(parents=True)
    np.savez(run / "test_scores.npz", ids=np.array(ids), labels=np.array(labels), scores=np.array(scores),
             classes=np.array(["a", "b"]))
    (run / "metrics.json").write_text(json.dumps({"best_epoch": 1, "train_time_s": 1.0}))
    return run


def test_folds_pool_into_one_test_set(tmp_path):
    m = tmp_path / "models"
    # fold 1 tests c2, c0 (both right), fold 2 tests c1 (wrong), c3 (right): pooled 3/4
    a = fake_run(m, "tsn", 1, ["c2", "c0"], [1, 0], [[0.1, 0.9], [0.8, 0.2]])
    b = fake_run(m, "tsn", 2, ["c1", "c3"], [0, 1], [[0.3, 0.7], [0.4, 0.6]])
    fake_run(m, "tsm", 1, ["c2", "c0"], [1, 0], [[0.1, 0.9], [0.8, 0.2]])    # tsm lacks fold 2
    (m / "tsn" / "seed0").mkdir()   # a run on the prepared split is not part of a 2-fold evaluation
    done, _ = evaluate.find_runs(tmp_path, k=2)
    groups, failed = evaluate.pooled(done, 2)
    assert list(groups) == [("tsn", 0)] and groups[("tsn", 0)] == [a, b]
    assert failed[0]["model"] == "tsm" and "folds [2] of 2" in failed[0]["error"]
    s = evaluate.join_scores(groups[("tsn", 0)])
    assert list(s["ids"]) == ["c0", "c1", "c2", "c3"] and list(s["labels"]) == [0, 0, 1, 1]
    assert (s["scores"].argmax(1) == s["labels"]).mean() == pytest.approx(0.75)
    fake_run(m, "dup", 1, ["c0"], [0], [[1.0, 0.0]])
    fake_run(m, "dup", 2, ["c0"], [0], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="test set of two folds"):
        evaluate.join_scores(sorted((m / "dup").glob("seed0_fold*")))
    assert paths.parse_run(a) == (0, 1) and paths.parse_run(m / "tsn" / "seed0") == (0, 0)


@pytest.mark.slow
def test_study_with_two_folds(tmp_path):
    """The whole chain with folds: 2 on the tiny profile: both folds train, evaluate pools
    them (every prepared clip tested once), the report says how it was tested."""
    from conftest import TINY_PREPARE
    from petaction.reporting import report
    from petaction import study
    cfg = study.load_study(None, {"study": "foldtest", "results_dir": str(tmp_path), "profile": "tiny",
                                  "models": ["tsn"], "folds": 2, "prepare": TINY_PREPARE, "detector": False,
                                  "evaluate": {"cost_repeats": 2}})
    log = []
    try:
        status = study.run(cfg, log=log.append)
    finally:
        for suffix in ("html", "pdf"):
            (paths.REPO / "report" / f"foldtest.{suffix}").unlink(missing_ok=True)
    assert [s["status"] for s in status] == ["done"] * 5, log   # prepare, 2 folds, evaluate, report
    root = tmp_path / "foldtest"
    assert sorted(p.name for p in (root / "models" / "tsn").iterdir()) == ["seed0_fold1", "seed0_fold2"]
    ev = root / "evaluation"
    folds = pd.read_csv(ev / "folds.csv")
    assert list(folds["fold"]) == [1, 2]
    summary = pd.read_csv(ev / "summary.csv").iloc[0]
    n_clips = len(pd.read_csv(root / "data" / "clips.csv"))
    assert summary["n_test"] == n_clips == folds["n_test"].sum() and summary["n_folds"] == 2
    pooled_top1 = (folds["top1"] * folds["n_test"]).sum() / n_clips
    assert summary["top1"] == pytest.approx(pooled_top1)
    assert summary["top1_fold_std"] == pytest.approx(folds["top1"].std(ddof=1))
    text = report.abstract(report.load("foldtest", str(tmp_path), "action"))
    assert f"2-fold cross-validation: each of the {n_clips} clips is tested once" in text
