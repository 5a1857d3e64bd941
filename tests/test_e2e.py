"""The accuracy of the deployed pipeline (e2e.py): the scorer is the run's own test step; clips cut
around perfect boxes are the prepared clips; clips cut around wrong boxes are not; the trained
detector's boxes go through the same path into evaluation's e2e rows."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from petaction.data import aihub
from petaction.data import crop
from petaction.evaluation import e2e
from petaction.evaluation import evaluate


def test_iou():
    assert e2e.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert e2e.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert e2e.iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0


def labelled_boxes(det_dir, clips):
    """A perfect detector: each frame's labelled box."""
    out = {}
    for c in clips:
        lab = aihub.boxes_by_frame(aihub.load_label(Path(c["label_path"]))["annotations"])
        out[c["id"]] = [[n, *aihub.nearest_box(lab, n)] for n, _ in e2e.source_frames(c["source"])]
    return "labelled boxes", out


def corner_boxes(det_dir, clips):
    """A wrong detector: a small box in the top-left corner of every frame."""
    _, found = labelled_boxes(det_dir, clips)
    return "corner", {k: [[r[0], 0.0, 0.0, 4.0, 4.0] for r in rows] for k, rows in found.items()}


def fake_detector(tmp_path):
    d = tmp_path / "detector"
    d.mkdir()
    (d / "best.pth").write_bytes(b"weights")
    (d / "metrics.json").write_text(json.dumps({"best_checkpoint": "best.pth"}))
    return d


@pytest.mark.slow
def test_perfect_boxes_give_the_prepared_clips_and_scores_wrong_ones_do_not(tiny_run, tiny_data, tmp_path):
    results, study, data = tiny_data
    root = data.parent
    det = fake_detector(tmp_path)
    labelled = evaluate.load_scores(tiny_run)
    try:
        same = e2e.score(tiny_run, data)                   # the scorer on the prepared clips: the run's own scores
        assert np.array_equal(same["ids"], labelled["ids"])
        np.testing.assert_allclose(same["scores"], labelled["scores"], atol=1e-5)
        cache = e2e.detected_cache(root, det, locate=labelled_boxes)
        clip = labelled["ids"][0]
        a = np.asarray(crop.read_image(cache / "frames" / clip / "img_00001.jpg"), float)
        b = np.asarray(crop.read_image(data / "frames" / clip / "img_00001.jpg"), float)
        assert np.array_equal(a, b)                        # the same crop as prepare's, byte for byte decoded
        row = e2e.compare("tsm", 0, labelled, e2e.score(tiny_run, cache), cache)
        assert row["diff"] == 0 and row["mean_iou"] == pytest.approx(1.0) and row["frames_iou50"] == 1.0
        assert e2e.detected_cache(root, det, locate=corner_boxes) == cache   # same detector key: kept
        (det / "best.pth").write_bytes(b"other weights")                    # another detector: cut again
        cache = e2e.detected_cache(root, det, locate=corner_boxes)
        info = json.loads((cache / "detected.json").read_text())
        assert info["detector"] == "corner" and info["mean_iou"] < 0.2 and info["frames_iou50"] == 0.0
        a = np.asarray(crop.read_image(cache / "frames" / clip / "img_00001.jpg"), float)
        assert not np.array_equal(a, b)
    finally:
        shutil.rmtree(root / e2e.CACHE, ignore_errors=True)


@pytest.mark.slow
def test_evaluation_measures_the_recommended_model_with_the_trained_detectors_boxes(tiny_run, tiny_data):
    from petaction.training import detector
    from petaction.reporting import report
    results, study, data = tiny_data
    root = data.parent
    det_dir = detector.out_dir(study, "action", str(results))
    try:
        detector.run(study=study, profile="tiny", results_dir=str(results))
        name, found = e2e.boxes(det_dir, e2e.test_clips(data))
        clip = e2e.test_clips(data)[0]
        assert [r[0] for r in found[clip["id"]]] == [n for n, _ in e2e.source_frames(clip["source"])]
        assert all(len(r) in (1, 5) for rows in found.values() for r in rows)
        d = {"ranking": ["tsm"], "best": "tsm", "detector": True,
             "recommendation": {"model": "tsm", "pick": "tsm"}}
        df = evaluate.end_to_end(study, "action", str(results), d, {"tsm": tiny_run}, {"tsm": {}}, "recommended", 0)
        labelled = json.loads((tiny_run / "metrics.json").read_text())["test"]["top1"]
        assert list(df["model"]) == ["tsm"] and df.loc[0, "top1_labelled"] == pytest.approx(labelled)
        assert d["recommendation"]["e2e"]["top1_detector"] == df.loc[0, "top1_detector"]
        assert df.loc[0, "diff"] == pytest.approx(df.loc[0, "top1_detector"] - labelled)
        text = report.e2e_text({"decisions": d}, "tsm")
        assert f"tsm reaches {report.pct(df.loc[0, 'top1_detector'])} top-1 on the same" in text
        assert "This accuracy and the verdict's cost describe the same pipeline." in text
        d["detector"] = False
        evaluate.end_to_end(study, "action", str(results), d, {"tsm": tiny_run}, {"tsm": {}}, "recommended", 0)
        assert "not measured: no pet detector was trained" in report.e2e_text({"decisions": d}, "tsm")
    finally:   # the tiny study is shared: a detector left there would change what infer's tests localise with
        shutil.rmtree(det_dir, ignore_errors=True)
        shutil.rmtree(root / e2e.CACHE, ignore_errors=True)
