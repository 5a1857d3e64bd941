"""Training through the package: deterministic on CPU, outputs where the report expects them."""
import json

import numpy as np
import pytest

from petaction import params as P
from petaction.training import train

pytestmark = pytest.mark.slow


def run_once(tiny_data, seed, results):
    _, study, data = tiny_data
    p = P.resolve_train({"model": "tsm", "profile": "tiny", "study": study, "seed": seed,
                         "results_dir": str(results)})
    return train.run(p)


def test_same_seed_same_metrics(tiny_data):
    results = tiny_data[0]
    a = run_once(tiny_data, 7, results)
    run = results / "tiny" / "models" / "tsm" / "seed7"
    scores_a = np.load(run / "test_scores.npz")["scores"]
    stale = run / "best_acc_top1_epoch_9.pth"     # an earlier training's best: must not be picked
    stale.write_bytes(b"stale")
    b = run_once(tiny_data, 7, results)
    assert not stale.exists() and b["best_checkpoint"] != stale.name
    scores_b = np.load(run / "test_scores.npz")["scores"]
    assert a["test"] == b["test"]
    np.testing.assert_array_equal(scores_a, scores_b)
    saved = json.loads((run / "metrics.json").read_text())
    assert saved["test"] == b["test"] and saved["best_checkpoint"].startswith("best_")


def test_checkpoints_from_elsewhere_load_weights_only(tmp_path):
    """A checkpoint the study did not write cannot run code when loaded (torch's weights-only)."""
    import pickle
    import torch
    from petaction.models import checkpoints

    class Boom:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    bad = tmp_path / "foreign.pth"
    with open(bad, "wb") as f:
        pickle.dump({"state_dict": {}, "x": Boom()}, f)
    with pytest.raises(ValueError, match="loads weights-only"):          # refused, and says how to fix it
        checkpoints.load_checkpoint_file(str(bad), "cpu")
    good = tmp_path / "ours.pth"
    torch.save({"state_dict": {}, "meta": {"f": getattr}}, good)   # needs a full unpickler
    with pytest.raises(ValueError, match="loads weights-only"):
        checkpoints.load_checkpoint_file(str(good), "cpu")
    checkpoints.record_checkpoint(good)
    assert checkpoints.load_checkpoint_file(str(good), "cpu")["meta"]["f"] is getattr
