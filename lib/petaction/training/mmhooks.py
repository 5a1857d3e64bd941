"""mmengine hooks this project registers (named in configs through `custom_imports`)."""
from __future__ import annotations

import csv
import time
from pathlib import Path

from mmengine.hooks import Hook
from mmaction.registry import HOOKS

# val_top<k> holds mmaction2's acc/top<k> and nothing else: empty when that k was not computed
# (mmconfig.topk caps k at the class count; a capped "top-5" would be a top-3 or a certainty)
EPOCH_LOG_COLUMNS = ["epoch", "train_loss", "lr", "val_top1", "val_top3", "val_top5", "val_mean_class_acc",
                     "epoch_time_s", "val_time_s"]


@HOOKS.register_module()
class EpochCSVHook(Hook):
    """Append one row per epoch to <work_dir>/log.csv: mean training loss over the epoch,
    the learning rate at its end, the validation metrics, and wall times. Written as it
    goes, so a long run's progress can be followed (and survives a crash). In a DDP run only
    the main process writes (the loss is its share of the batch)."""

    priority = "LOW"

    def __init__(self, filename: str = "log.csv"):
        self.filename = filename

    def _path(self, runner) -> Path:
        return Path(runner.work_dir) / self.filename

    def before_train(self, runner) -> None:
        path = self._path(runner)
        if _is_main() and (not path.exists() or runner.epoch == 0):
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(EPOCH_LOG_COLUMNS)

    def before_train_epoch(self, runner) -> None:
        self._loss, self._n, self._t0 = 0.0, 0, time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if outputs and "loss" in outputs:
            self._loss += float(outputs["loss"].detach())
            self._n += 1

    def after_train_epoch(self, runner) -> None:
        lr = runner.optim_wrapper.get_lr()
        self._row = {"epoch": runner.epoch + 1, "train_loss": self._loss / max(self._n, 1),
                     "lr": list(lr.values())[0][0], "epoch_time_s": time.perf_counter() - self._t0}
        self._tv = time.perf_counter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if not getattr(self, "_row", None):   # a validation outside training (test) logs nothing
            return
        metrics = metrics or {}
        if not _is_main():
            self._row = None
            return
        self._row.update(val_top1=metrics.get("acc/top1"), val_top3=metrics.get("acc/top3"),
                         val_top5=metrics.get("acc/top5"),
                         val_mean_class_acc=metrics.get("acc/mean1"), val_time_s=time.perf_counter() - self._tv)
        with open(self._path(runner), "a", newline="") as f:
            csv.DictWriter(f, EPOCH_LOG_COLUMNS).writerow(self._row)
        self._row = None


VAL_EPOCHS = "val_epochs.npz"   # ValEpochsHook's file: every validated epoch's predicted class per clip


@HOOKS.register_module()
class ValEpochsHook(Hook):
    """Save every validation epoch's predicted class per clip to <work_dir>/val_epochs.npz:
    ``epochs`` (E), ``preds`` (E x clips, int16), ``labels`` and ``ids`` (the clips in the
    validation list's order). From the predictions the validation loop already makes
    (after_val_iter's outputs): no extra forward pass. Rewritten whole (core.atomic) after each
    validation. A resumed training keeps the epochs recorded up to its checkpoint and overwrites
    any it validates again, so it ends with the file of a training never stopped. In a DDP run
    every process gathers its shard (mmengine's collect_results, in sampler order) and the main
    process writes. Checkpoint selection rules are compared on this file (evaluation.checkpoint_rule)."""

    # before EpochCSVHook (LOW): an epoch's log.csv row, which lets a resume trust its checkpoint
    # (runfolder.validated), is written only once this file holds the epoch
    priority = "BELOW_NORMAL"

    def __init__(self, filename: str = VAL_EPOCHS):
        self.filename = filename
        self._rows, self._epoch, self._preds = {}, None, []

    def _path(self, runner) -> Path:
        return Path(runner.work_dir) / self.filename

    def before_train(self, runner) -> None:
        """A fresh training starts an empty record; a resumed one keeps its epochs up to the
        checkpoint it resumed from (later ones are validated again)."""
        import numpy as np
        self._rows = {}
        path = self._path(runner)
        if runner.epoch > 0 and path.is_file():
            with np.load(path) as z:
                self._rows = {int(e): row for e, row in zip(z["epochs"], z["preds"]) if e <= runner.epoch}
        elif _is_main():   # an earlier training's record must not outlive it
            path.unlink(missing_ok=True)

    def after_train_epoch(self, runner) -> None:
        self._epoch = runner.epoch + 1   # the epoch the next validation scores (EpochCSVHook's numbering)

    def before_val_epoch(self, runner) -> None:
        self._preds = []

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if self._epoch is not None:
            self._preds.extend(predicted_class(s) for s in outputs or [])   # (predicted, true) class

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._epoch is None:   # a validation outside training records nothing
            return
        import numpy as np
        from mmengine.dist import collect_results

        from ..core import atomic
        from .runfolder import read_list
        dataset = runner.val_dataloader.dataset
        preds = collect_results(self._preds, len(dataset), device="cpu")   # every process takes part
        epoch, self._epoch, self._preds = self._epoch, None, []
        if not _is_main():
            return
        clips = read_list(dataset.ann_file)
        if [t for _, t in preds] != [c[2] for c in clips]:
            raise RuntimeError(f"{len(preds)} validation predictions are not those of the {len(clips)} clips of "
                               f"{dataset.ann_file} in its order")
        self._rows[epoch] = np.array([p for p, _ in preds], dtype=np.int16)
        epochs = sorted(self._rows)
        atomic.savez(self._path(runner), epochs=np.array(epochs, dtype=np.int16),
                     preds=np.stack([self._rows[e] for e in epochs]),
                     labels=np.array([c[2] for c in clips], dtype=np.int16), ids=np.array([c[0] for c in clips]))


def predicted_class(sample) -> tuple[int, int]:
    """(top class, true class) of one validation output: a recogniser's ``pred_score``, or
    fast_rcnn's one box's class scores (``pred_instances.scores``, as detection.ClipBoxMetric
    reads them)."""
    import numpy as np
    d = sample.to_dict() if hasattr(sample, "to_dict") else sample
    if "pred_instances" in d:
        scores = d["pred_instances"]["scores"][0]
    else:
        scores = d["pred_score"]
    plain = lambda x: x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)   # noqa: E731
    return int(plain(scores).argmax()), int(plain(d["gt_label"]).reshape(-1)[0])


@HOOKS.register_module()
class TrustCheckpointsHook(Hook):
    """Record the hash of every checkpoint CheckpointHook writes (last and best), so that
    petaction's loader trusts exactly those files (see models.checkpoints.load_checkpoint_file).
    Runs after CheckpointHook (lowest priority) in the same epoch callbacks; in a DDP run only
    the main process, which is the one that saves."""

    priority = "LOWEST"

    def __init__(self):
        self._seen = set()

    def _record(self, runner) -> None:
        from ..models.checkpoints import record_checkpoint
        if not _is_main():
            return
        hub = runner.message_hub
        for key in ("last_ckpt", "best_ckpt"):
            path = hub.get_info(key)
            if path and Path(path).is_file():
                stamp = (path, Path(path).stat().st_mtime_ns)
                if stamp not in self._seen:
                    record_checkpoint(path)
                    self._seen.add(stamp)

    def after_train_epoch(self, runner) -> None:
        self._record(runner)

    def after_val_epoch(self, runner, metrics=None) -> None:
        if _is_main():
            self._carry_best_into_last(runner)
        self._record(runner)

    def _carry_best_into_last(self, runner) -> None:
        """mmengine saves the epoch's (last) checkpoint before validating it, so that file lacks
        the validation's best score: a run resumed from it would forget the best so far and
        could test a worse epoch. Copy the message hub (best_score, best_ckpt) into it, its hash
        recorded before it replaces the old file (core.atomic: a kill leaves either file whole)."""
        import hashlib
        import io

        import torch

        from ..core import atomic
        from ..models.checkpoints import is_trusted, record_checkpoint
        last = runner.message_hub.get_info("last_ckpt")
        if not last or not Path(last).is_file() or not is_trusted(last):
            return
        ckpt = torch.load(last, map_location="cpu", weights_only=False)   # trusted: we wrote it
        ckpt["message_hub"] = runner.message_hub.state_dict()
        buf = io.BytesIO()
        torch.save(ckpt, buf)
        data = buf.getvalue()
        record_checkpoint(last, digest=hashlib.sha256(data).hexdigest())
        atomic.write_bytes(last, data)
        self._seen.add((last, Path(last).stat().st_mtime_ns))


def _is_main() -> bool:
    from mmengine.dist import is_main_process
    return is_main_process()


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seed Python's, NumPy's and torch's global generators from (seed, epoch) before every
    training epoch. Augmentations (crop, flip) and dropout draw from them, and mmengine's
    resume restores weights, optimizer and schedule but not these generators: with this hook
    an epoch's random draws depend on the epoch alone, so a run resumed after a kill finishes
    with the same metrics as one never stopped. (Loader workers seed themselves per worker;
    with persistent workers their stream spans epochs, so only num_workers: 0 repeats exactly.)"""

    priority = "VERY_HIGH"

    def before_train_epoch(self, runner) -> None:
        import random

        import numpy as np
        import torch
        seed = (int(runner.seed or 0) * 1_000_003 + runner.epoch) % (2 ** 31)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


def to_channels_last(module) -> None:
    """Convolution weights in channels-last layout (NHWC; NDHWC for 3D): on GPUs with tensor
    cores cuDNN then runs the convolutions without layout transposes."""
    import torch
    for p in module.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=torch.channels_last)
        elif p.dim() == 5:
            p.data = p.data.contiguous(memory_format=torch.channels_last_3d)


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """channels_last for a single-process run; a DDP run converts in PetDistributedDataParallel,
    before DDP registers the parameters' layout."""

    def before_train(self, runner) -> None:
        from mmengine.model import is_model_wrapper
        if not is_model_wrapper(runner.model):
            to_channels_last(runner.model)


def register_ddp_wrapper() -> None:
    """mmengine's Runner builds its DDP wrapper with ``device_ids=[LOCAL_RANK]``, which
    DistributedDataParallel rejects for a module on the CPU ("device_ids ... must be None" for
    CPU modules). This subclass drops device_ids when the module is on the CPU (a CPU gloo run,
    as the test suite does) and applies channels_last before DDP wraps the module."""
    from mmengine.model import MMDistributedDataParallel
    from mmengine.registry import MODEL_WRAPPERS

    if "PetDistributedDataParallel" in MODEL_WRAPPERS.module_dict:
        return

    @MODEL_WRAPPERS.register_module()
    class PetDistributedDataParallel(MMDistributedDataParallel):
        def __init__(self, module, channels_last: bool = False, **kwargs):
            if next(module.parameters()).device.type == "cpu":
                kwargs.pop("device_ids", None)
                kwargs.pop("output_device", None)
            if channels_last:
                to_channels_last(module)
            super().__init__(module=module, **kwargs)


register_ddp_wrapper()
