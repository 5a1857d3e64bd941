"""A training records every validation's predictions (val_epochs.npz), scores its final weights
too, and `checkpoint: last` makes those the run's scores (test_scores.npz, val_scores.npz)."""
import json

import numpy as np
import pandas as pd
import pytest

from petaction import params as P
from petaction.core.errors import ParamError
from petaction.evaluation import forward
from petaction.training import runfolder, train

EPOCHS = 3


def top1(f):
    with np.load(f) as z:
        return float((z["scores"].argmax(1) == z["labels"]).mean())


def preds(f):
    with np.load(f) as z:
        return z["scores"].argmax(1)


@pytest.mark.slow
def test_checkpoint_last_reports_the_final_weights_and_every_epoch_is_recorded(tiny_data):
    results, study, data = tiny_data
    m = train.run(P.resolve_train({"model": "tsn", "profile": "tiny", "study": study, "seed": 3, "epochs": EPOCHS,
                                   "checkpoint": "last", "results_dir": str(results)}), log=lambda *_: None)
    run = results / study / "models" / "tsn" / "seed3"
    # one row per validated epoch, the validation loop's own predictions: log.csv's top-1 each epoch
    log = pd.read_csv(run / "log.csv")
    z = np.load(run / "val_epochs.npz")
    assert list(z["epochs"]) == list(log["epoch"]) == list(range(1, EPOCHS + 1))
    assert z["preds"].dtype == np.int16 and z["preds"].shape == (EPOCHS, len(z["ids"]))
    val = runfolder.read_split(data, "val")
    assert list(z["ids"]) == [c[0] for c in val] and list(z["labels"]) == [c[2] for c in val]
    np.testing.assert_allclose((z["preds"] == z["labels"]).mean(1), log["val_top1"], atol=1e-6)
    # the run's scores are the last weights': their validation predictions are the last epoch's row,
    # the best checkpoint's (kept as *_best) are its epoch's row
    assert m["checkpoint"] == "last" and m["scored_epoch"] == m["last_epoch"] == EPOCHS
    np.testing.assert_array_equal(preds(run / "val_scores.npz"), z["preds"][-1])
    np.testing.assert_array_equal(preds(run / "val_scores_best.npz"), z["preds"][m["best_epoch"] - 1])
    assert not (run / "test_scores_last.npz").exists() and (run / "test_scores_best.npz").is_file()
    assert m["test"]["top1"] == pytest.approx(top1(run / "test_scores.npz")) == pytest.approx(m["last_test_top1"])
    assert top1(run / "test_scores_best.npz") == pytest.approx(m["best_test_top1"])
    assert m["last_epoch_val_top1"] == pytest.approx(log["val_top1"].iloc[-1], abs=1e-6)
    assert m["best_epoch_val_top1"] == pytest.approx(log["val_top1"].max(), abs=1e-6)
    assert json.loads((run / "metrics.json").read_text())["val"]["top1"] == pytest.approx(m["last_epoch_val_top1"])
    # export, infer, Grad-CAM and a run started from this one load the checkpoint its scores come from
    assert m["kept_checkpoint"] == m["last_checkpoint"] == f"epoch_{EPOCHS}.pth"
    assert forward.checkpoint_of(run) == run / f"epoch_{EPOCHS}.pth"


def test_checkpoint_rule_parameter_is_checked():
    assert P.resolve_train({"model": "tsn", "profile": "tiny"})["checkpoint"] == "best"
    with pytest.raises(ParamError, match=r"checkpoint='final' is not valid; choose one of \['best', 'last'\]"):
        P.resolve_train({"model": "tsn", "profile": "tiny", "checkpoint": "final"})
