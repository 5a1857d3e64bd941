"""The mmengine Runner loop every training shares: train (resuming when asked), load the best
checkpoint on val, test it once; and the selected checkpoint's validation scores."""
from __future__ import annotations

import time
from pathlib import Path

from .runfolder import best_checkpoint, write_budget


def score_val(runner, evaluator) -> dict:
    """Run the validation split once through the loaded (selected) checkpoint with
    ``evaluator`` (the run's val metric plus one that dumps per-clip results). A plain loop
    rather than runner.val(): that would fire the training's hooks (best-checkpoint saving,
    log.csv) for an evaluation that is not an epoch. Every process runs it (the evaluator
    gathers the shards)."""
    import torch
    loader = runner.val_dataloader
    ev = runner.build_evaluator(evaluator)
    ev.dataset_meta = loader.dataset.metainfo
    runner.model.eval()
    with torch.no_grad():
        for batch in loader:
            ev.process(data_samples=runner.model.val_step(batch), data_batch=batch)
    return {k.replace("acc/", ""): float(v) for k, v in ev.evaluate(len(loader.dataset)).items()}


def train_then_test(cfg, out: Path, t0: float, resume: bool = False):
    """mmengine's Runner (recogniser, fast_rcnn or detector config): train (resuming when
    asked), load the best checkpoint on val, test it once. Returns (runner, best checkpoint,
    test metrics, training seconds since t0)."""
    from mmengine.dist import barrier
    from mmengine.runner import Runner

    cfg.resume, cfg.load_from = resume, None   # resume: mmengine reads work_dir/last_checkpoint
    runner = Runner.from_cfg(cfg)
    cpu0 = time.process_time()
    runner.train()
    close_once(runner)
    write_budget(out, runner.iter, time.process_time() - cpu0)
    barrier()   # the main process has recorded the best checkpoint's hash before others load it
    train_s = time.time() - t0
    best = best_checkpoint(out, runner)
    runner.load_checkpoint(str(best))   # a checkpoint this run wrote: see models.checkpoints
    return runner, best, runner.test(), train_s


def close_once(runner) -> None:
    """mmengine's LoggerHook closes the visualizer after train() and again after test() on the
    same Runner; an MLflow backend closed once would then start a second, unnamed MLflow run to
    log the run folder's files again (mlflow 3.18, measured). Its close() does nothing without
    its client, `_mlflow`: dropped here, after training, when nothing logs to it any more."""
    from mmengine.visualization import MLflowVisBackend
    for backend in runner.visualizer._vis_backends.values():
        if isinstance(backend, MLflowVisBackend) and hasattr(backend, "_mlflow"):
            del backend._mlflow
