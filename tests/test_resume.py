"""Kill a training mid-epoch (SIGKILL) and run the same command again: it resumes from the
last checkpoint and ends with the metrics of a run never stopped."""
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from petaction.models import checkpoints
from petaction import params as P
from petaction.training import train

EPOCHS = 2


def command(results, model="tsn", seed=5):
    return [sys.executable, "-m", "petaction", "train", "-p", "model", model, "-p", "profile", "tiny",
            "-p", "study", "tiny", "-p", "results_dir", str(results), "-p", "seed", str(seed),
            "-p", "epochs", str(EPOCHS)]


def wait_for_validated_epoch(run, proc, timeout=240):
    """Epoch 1 trained, validated and its checkpoints recorded (3 hashes: epoch_1, best, and
    epoch_1 again with the validation's best score): training is in epoch 2."""
    t0 = time.time()
    manifest = run / checkpoints.TRUST_FILE
    while time.time() - t0 < timeout:
        assert proc.poll() is None, "training ended before it could be killed"
        if manifest.is_file() and len(manifest.read_text().splitlines()) >= 3:
            return
        time.sleep(0.2)
    raise TimeoutError("no validated epoch")


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_metrics(tiny_data, tmp_path):
    results, _, data = tiny_data
    shutil.copytree(data, tmp_path / "tiny" / "data")          # a second study folder, same data
    whole = train.run(P.resolve_train({"model": "tsn", "profile": "tiny", "study": "tiny", "seed": 5,
                                       "epochs": EPOCHS, "results_dir": str(tmp_path)}), log=lambda *_: None)
    run = results / "tiny" / "models" / "tsn" / "seed5"
    proc = subprocess.Popen(command(results), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_validated_epoch(run, proc)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not (run / "metrics.json").exists()
    assert list(pd.read_csv(run / "log.csv")["epoch"]) == [1]    # killed inside epoch 2
    assert list(np.load(run / "val_epochs.npz")["epochs"]) == [1]
    again = subprocess.run(command(results), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["resumed"] and not whole["resumed"]
    assert resumed["test"] == whole["test"] and resumed["best_checkpoint"] == whole["best_checkpoint"]
    # epoch 2 itself repeats exactly (the best epoch alone could hide a different epoch 2)
    cols = ["epoch", "train_loss", "lr", "val_top1", "val_top5", "val_mean_class_acc"]
    pd.testing.assert_frame_equal(pd.read_csv(run / "log.csv")[cols],
                                  pd.read_csv(tmp_path / "tiny" / "models" / "tsn" / "seed5" / "log.csv")[cols])
    # every validation's predictions: the epoch recorded before the kill kept, the rest added
    resumed_epochs, whole_epochs = (np.load(r / "val_epochs.npz") for r in (run, tmp_path / "tiny" / "models" / "tsn" / "seed5"))
    assert list(resumed_epochs["epochs"]) == list(range(1, EPOCHS + 1))
    for key in ("epochs", "preds", "labels", "ids"):
        np.testing.assert_array_equal(resumed_epochs[key], whole_epochs[key])
    # TensorBoard: one run whose validation curve goes on over the kill, as the uninterrupted one's
    assert tb_curve(run) == tb_curve(tmp_path / "tiny" / "models" / "tsn" / "seed5")
    assert [step for step, _ in tb_curve(run)] == list(range(1, EPOCHS + 1))


def tb_curve(run, tag="acc/top1"):
    """(step, value) of a run's TensorBoard scalar, read as TensorBoard reads its folder."""
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.util import tensor_util
    from petaction.models.mmconfig import TENSORBOARD_DIR
    tb = EventMultiplexer({"run": str(run / TENSORBOARD_DIR)})
    tb.Reload()
    return [(e.step, round(float(tensor_util.make_ndarray(e.tensor_proto)), 6)) for e in tb.Tensors("run", tag)]


def test_resume_only_the_same_unfinished_training(tmp_path):
    """Same settings and data, unfinished, a checkpoint we wrote: resume. Anything else: clear."""
    import torch
    ckpt = tmp_path / "epoch_1.pth"

    def attempt(key="k", finished=False, trusted=True, validated=True):
        for f in tmp_path.iterdir():
            f.unlink()
        torch.save({"state_dict": {}}, ckpt)
        (tmp_path / "best_acc_top1_epoch_1.pth").write_bytes(ckpt.read_bytes())
        (tmp_path / "last_checkpoint").write_text(str(ckpt))
        if trusted:
            checkpoints.record_checkpoint(ckpt)
        if validated:   # the epoch's validation row (EpochCSVHook)
            (tmp_path / "log.csv").write_text("epoch,train_loss,val_top1\n1,0.5,0.25\n")
        (tmp_path / train.ATTEMPT).write_text(key)
        if finished:
            (tmp_path / "metrics.json").write_text("{}")

    attempt()
    assert train.resume_or_clear(tmp_path, "k") and ckpt.exists()
    # killed between an epoch's checkpoint and the end of its validation: resuming would skip
    # that epoch's validation (and so its chance to be selected); the training starts over
    for kw in ({"key": "other"}, {"finished": True}, {"trusted": False}, {"validated": False}):
        attempt(**kw)
        assert not train.resume_or_clear(tmp_path, "k"), kw
        assert not list(tmp_path.glob("*.pth")) and not (tmp_path / "last_checkpoint").exists()
