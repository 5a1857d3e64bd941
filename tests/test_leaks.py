"""One split for every target, and the evaluation's refusal of a result whose dependency chain
(init sources, the e2e detector) saw its test clips."""
import csv
import json
from collections import Counter

import numpy as np
import pytest

from petaction.core import paths
from petaction.data import prepare, splits
from petaction.evaluation import leaks


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def prepare_both(results, study, **over):
    from conftest import TINY_PREPARE
    for target in ("action", "emotion"):
        prepare.prepare(study=study, results_dir=results, target=target, **{**TINY_PREPARE, **over})
    return {t: paths.target_dir(study, t, results) / "data" for t in ("action", "emotion")}


def fake_run(results, study, target, model, init, test_list):
    """A finished run as far as the leak check reads one: params.json and its test clips."""
    run = paths.run_dir(study, model, 0, target, results)
    run.mkdir(parents=True, exist_ok=True)
    (run / "params.json").write_text(json.dumps({"study": study, "target": target, "model": model, "seed": 0,
                                                 "fold": 0, "results_dir": str(results), "init": init}))
    np.savez(run / "test_scores.npz", ids=np.array(sorted(leaks.list_ids(test_list))))
    return run


def transfer_runs(results, study, data):
    """tsm on action, and tsm@action on emotion (started from it)."""
    source = fake_run(results, study, "action", "tsm", "scratch", data["action"] / "test.txt")
    return source, fake_run(results, study, "emotion", "tsm@action", "action", data["emotion"] / "test.txt")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    results = tmp_path_factory.mktemp("shared_split")
    return results, prepare_both(results, "shared")


def test_a_clip_has_the_same_split_for_every_target(shared):
    _, data = shared
    action = {r["id"]: r for r in read_csv(data["action"] / "clips.csv")}
    emotion = {r["id"]: r for r in read_csv(data["emotion"] / "clips.csv")}
    assert set(emotion) <= set(action)
    assert all(emotion[c]["split"] == action[c]["split"] for c in emotion)
    # both targets' classes stay represented: every class of 3 or more clips is in every split
    for rows, key in ((action, "action"), (emotion, "emotion")):
        n = Counter(r[key] for r in rows.values())
        have = {(r[key], r["split"]) for r in rows.values()}
        assert all((c, s) in have for c in n if n[c] >= 3 for s in splits.SPLITS)


def test_the_transfer_chain_of_one_split_is_clean(shared):
    results, data = shared
    source, target = transfer_runs(results, "shared", data)
    checked = leaks.check([source, target])
    assert checked["runs"] == 2 and checked["chain_links"] == 2 + 4   # tsm@action: its own lists, then tsm's


def test_per_target_splits_leak_and_the_check_refuses(tmp_path, monkeypatch):
    """Each target stratified on its own label, as prepare did before the split was shared:
    tsm@action's source trained on some of the emotion test clips, and the check says how many."""
    monkeypatch.setattr(splits, "joint_strata", lambda rows, *a, **k: None)   # stratum = the target's label
    data = prepare_both(tmp_path, "old")
    seen = set().union(*(leaks.list_ids(data["action"] / f"{s}.txt") for s in ("train", "val")))
    leaked = len(leaks.list_ids(data["emotion"] / "test.txt") & seen)
    assert leaked > 0
    source, target = transfer_runs(tmp_path, "old", data)
    leaks.check([source])   # the action run alone depends on nothing else
    with pytest.raises(leaks.LeakError, match=rf"^{leaked} of the \d+ test clips of .*tsm@action"):
        leaks.check([source, target])


def test_a_detector_trained_on_test_clips_is_refused(shared, tmp_path):
    results, data = shared
    source, _ = transfer_runs(results, "shared", data)
    det = tmp_path / "detector"
    det.mkdir()
    frames = lambda ids: {"images": [{"file_name": f"frames/{c}/img_00001.jpg"} for c in sorted(ids)]}  # noqa: E731
    train, test = leaks.list_ids(data["action"] / "train.txt"), leaks.list_ids(data["action"] / "test.txt")
    (det / "coco_val.json").write_text(json.dumps(frames(leaks.list_ids(data["action"] / "val.txt"))))
    (det / "coco_train.json").write_text(json.dumps(frames(train)))
    assert leaks.check([source], det)["detector"] == str(det)
    (det / "coco_train.json").write_text(json.dumps(frames(train | set(sorted(test)[:2]))))
    with pytest.raises(leaks.LeakError, match=r"^2 of the .*2 in the pet detector's train frames"):
        leaks.check([source], det)


def test_folds_are_shared_too(tmp_path):
    data = prepare_both(tmp_path, "folds", folds=2)
    action = {r["id"]: r for r in read_csv(data["action"] / "clips.csv")}
    for r in read_csv(data["emotion"] / "clips.csv"):
        assert (r["fold"], r["split_fold1"], r["split_fold2"]) == \
            (action[r["id"]]["fold"], action[r["id"]]["split_fold1"], action[r["id"]]["split_fold2"])


def test_joint_strata_fall_back_for_rare_cells():
    rows = ([{"action": "A", "emotion": "x"}] * 3 + [{"action": "A", "emotion": "y"}] * 2
            + [{"action": "B", "emotion": "y"}] * 2 + [{"action": "C", "emotion": "z"}])
    rows = [dict(r, id=str(i)) for i, r in enumerate(rows)]
    splits.joint_strata(rows)
    assert [r["stratum"] for r in rows] == ["A|x"] * 3 + ["*|y"] * 4 + ["*|*"]
    rows = [dict(action="D", emotion=e, id=str(i)) for i, e in enumerate("uvw")]
    splits.joint_strata(rows)
    assert {r["stratum"] for r in rows} == {"D|*"}


def test_every_trial_redraws_one_split_shared_by_both_targets(tmp_path):
    data = prepare_both(tmp_path, "trials", trials=2)
    for d in data.values():   # trial 1 is the prepared split; trial 2 another draw
        assert all((d / f"{s}.trial1.txt").read_text() == (d / f"{s}.txt").read_text() for s in splits.SPLITS)
        assert (d / "test.trial2.txt").read_text() != (d / "test.txt").read_text()
    action = {r["id"]: r for r in read_csv(data["action"] / "clips.csv")}
    for r in read_csv(data["emotion"] / "clips.csv"):
        assert (r["split_trial1"], r["split_trial2"]) == (action[r["id"]]["split_trial1"], action[r["id"]]["split_trial2"])
    with pytest.raises(ValueError, match="folds and trials both redraw the split"):
        prepare.check_params({"folds": 2, "trials": 2})
