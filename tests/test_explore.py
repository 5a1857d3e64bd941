"""Error-analysis helpers: filters, drawing the label on frames, the commonest confusions."""
import numpy as np
import pandas as pd
import pytest

from petaction.evaluation import explore


def test_common_confusions_counts_and_picks_the_most_confident_example():
    preds = pd.DataFrame({"id": list("abcdefg"), "label": ["X", "X", "X", "Y", "Y", "Z", "Z"],
                          "pred": ["Y", "Y", "X", "X", "Z", "Z", "Y"],
                          "score": [0.4, 0.9, 0.8, 0.5, 0.6, 0.7, 0.3]})
    c = explore.common_confusions(preds, k=2)
    assert c[["label", "pred", "n_clips", "example"]].values.tolist() == [["X", "Y", 2, "b"], ["Y", "X", 1, "d"]]
    assert explore.common_confusions(preds[preds.label == preds.pred]).empty


def test_draw_marks_box_and_keypoints_and_skips_missing_points():
    img = np.zeros((100, 100, 3), np.uint8)
    out = explore.draw(img, (10, 10, 50, 40), {"1": {"x": 80, "y": 80}, "2": None})
    assert img.sum() == 0                              # the input is not drawn on
    assert out[10, 30].tolist() == [40, 200, 60]       # box edge
    assert out[80, 80].tolist() == [230, 60, 50]       # keypoint 1
    assert out[50, 90].sum() == 0


def test_filters_and_gallery_on_prepared_data(tiny_data, tmp_path):
    results, study, data = tiny_data
    test = explore.clips(study, results_dir=results, split="test")
    assert len(test) and set(test["split"]) == {"test"}
    with pytest.raises(ValueError, match="no clip has label 'NOPE'"):
        explore.clips(study, results_dir=results, label="NOPE")
    fig = explore.clip_figure(test.iloc[0], n=3)
    assert len([a for a in fig.axes if a.images]) == 3
    rows = test.head(2).assign(pred="X")
    explore.gallery(data, rows, tmp_path / "g.png", n_frames=2)
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_best_model_is_the_evaluation_s_choice_on_validation(tmp_path):
    import json
    ev = tmp_path / "s" / "evaluation"
    with pytest.raises(FileNotFoundError, match="run evaluate first"):
        explore.best_model("s", results_dir=tmp_path)
    ev.mkdir(parents=True)
    # summary.csv's first row is not the decision: decisions.json is
    pd.DataFrame({"model": ["tsn", "tsm"]}).to_csv(ev / "summary.csv", index=False)
    (ev / "decisions.json").write_text(json.dumps({"best": "tsm"}))
    assert explore.best_model("s", results_dir=tmp_path) == "tsm"
