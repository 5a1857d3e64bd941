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


class FakeRunner:
    """What train_score_both asks of mmengine's Runner after training: its final epoch, loading
    a checkpoint and one test pass."""
    def __init__(self, epoch):
        self.epoch, self.loaded, self.tests = epoch, [], 0

    def load_checkpoint(self, path):
        self.loaded.append(path)

    def test(self):
        self.tests += 1
        return {"acc/top1": 0.25}


@pytest.mark.parametrize("best_epoch", [3, 2])
def test_best_weights_are_scored_again_only_when_they_are_not_the_final_ones(tmp_path, monkeypatch, best_epoch):
    from petaction.training import runner as R
    fake = FakeRunner(epoch=3)
    scored_val = []

    def score_last(run, evaluators):
        for split in evaluators:
            (tmp_path / f"{split}_results_last.pkl").write_bytes(f"final {split}".encode())
        return {"test": {"top1": 0.5}, "val": {"top1": 0.75}}

    monkeypatch.setattr(R, "train", lambda cfg, out, t0, resume=False: (fake, 1.0))
    monkeypatch.setattr(R, "score_last", score_last)
    monkeypatch.setattr(R, "score_val", lambda run, ev: scored_val.append(ev) or {"top1": 0.125})
    monkeypatch.setattr(R, "best_checkpoint", lambda out, run: tmp_path / f"best_acc_top1_epoch_{best_epoch}.pth")
    _, best, scored, _ = R.train_score_both(None, tmp_path, 0.0, lambda split, source="": (split, source))
    assert scored["last"] == {"test": {"top1": 0.5}, "val": {"top1": 0.75}}
    if best_epoch == fake.epoch:   # the same weights: their scores and per-clip results copied, no second pass
        assert scored["best"] == scored["last"] and fake.tests == 0 and not fake.loaded and not scored_val
        assert [(tmp_path / f"{s}_results.pkl").read_bytes() for s in ("test", "val")] == [b"final test", b"final val"]
    else:                          # earlier weights: loaded, tested once, scored on validation
        assert fake.loaded == [str(best)] and fake.tests == 1 and scored_val == [("val", "")]
        assert scored["best"] == {"test": {"acc/top1": 0.25}, "val": {"top1": 0.125}}
        assert not (tmp_path / "test_results.pkl").exists()


def test_a_path_that_is_not_a_run_names_the_runs_beside_it(tmp_path):
    """With trials the runs are seed<k>_trial<t>: `--run .../tsm/seed0` names the folders that are runs."""
    model = tmp_path / "models" / "tsm"
    for name in ("seed0_trial1", "seed1_trial2"):
        (model / name).mkdir(parents=True)
        (model / name / "config.py").write_text("")
    (model / "seed9_notes").mkdir()   # not a run: no config.py
    with pytest.raises(FileNotFoundError, match=r"seed0 is not a training run folder \(no config.py\): pass "
                       r"results/<study>/models/<model>/seed<k>\[_trial<t>\]; the runs in .*tsm: seed0_trial1, seed1_trial2$"):
        forward.checkpoint_of(model / "seed0")
    with pytest.raises(FileNotFoundError, match=r"\[_trial<t>\]$"):
        forward.checkpoint_of(tmp_path / "elsewhere" / "seed0")
