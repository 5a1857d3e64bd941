"""mmengine hooks this project registers (named in configs through `custom_imports`)."""
from __future__ import annotations

import csv
import time
from pathlib import Path

from mmengine.hooks import Hook
from mmaction.registry import HOOKS

EPOCH_LOG_COLUMNS = ["epoch", "train_loss", "lr", "val_top1", "val_top5", "val_mean_class_acc",
                     "epoch_time_s", "val_time_s"]


@HOOKS.register_module()
class EpochCSVHook(Hook):
    """Append one row per epoch to <work_dir>/log.csv: mean training loss over the epoch,
    the learning rate at its end, the validation metrics, and wall times. Written as it
    goes, so a long run's progress can be followed (and survives a crash)."""

    priority = "LOW"

    def __init__(self, filename: str = "log.csv"):
        self.filename = filename

    def _path(self, runner) -> Path:
        return Path(runner.work_dir) / self.filename

    def before_train(self, runner) -> None:
        path = self._path(runner)
        if not path.exists() or runner.epoch == 0:
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
        top5 = metrics.get("acc/top5", metrics.get("acc/top3"))
        self._row.update(val_top1=metrics.get("acc/top1"), val_top5=top5,
                         val_mean_class_acc=metrics.get("acc/mean1"), val_time_s=time.perf_counter() - self._tv)
        with open(self._path(runner), "a", newline="") as f:
            csv.DictWriter(f, EPOCH_LOG_COLUMNS).writerow(self._row)
        self._row = None


@HOOKS.register_module()
class TrustCheckpointsHook(Hook):
    """Record the hash of every checkpoint CheckpointHook writes (last and best), so that
    petaction's loader trusts exactly those files (see mmcompat.load_checkpoint_file).
    Runs after CheckpointHook (lowest priority) in the same epoch callbacks."""

    priority = "LOWEST"

    def __init__(self):
        self._seen = set()

    def _record(self, runner) -> None:
        from .mmcompat import record_checkpoint
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
        self._record(runner)
