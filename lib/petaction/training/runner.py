"""The mmengine Runner loop every training shares: train (resuming when asked), score the final
weights and the best checkpoint on val, test both once."""
from __future__ import annotations

import time
from pathlib import Path

from ..core import atomic
from .runfolder import best_checkpoint, checkpoint_epoch, write_budget


def score_val(runner, evaluator, loader=None) -> dict:
    """Run the validation split (or ``loader``'s) once through the loaded weights with
    ``evaluator`` (the run's val metric plus one that dumps per-clip results). A plain loop
    rather than runner.val() / runner.test(): those would fire the training's hooks
    (best-checkpoint saving, log.csv, closing the visualizer) for an evaluation that is not an
    epoch. Every process runs it (the evaluator gathers the shards)."""
    import torch
    loader = runner.val_dataloader if loader is None else loader
    ev = runner.build_evaluator(evaluator)
    ev.dataset_meta = loader.dataset.metainfo
    runner.model.eval()
    with torch.no_grad():
        for batch in loader:
            ev.process(data_samples=runner.model.val_step(batch), data_batch=batch)
    return {k.replace("acc/", ""): float(v) for k, v in ev.evaluate(len(loader.dataset)).items()}


def score_last(runner, evaluators: dict) -> dict:
    """The final weights (the last epoch's, still in the model after training) scored on the
    test and validation splits: ``evaluators`` {"test": ..., "val": ...}, each dumping its
    per-clip results. Returns {split: metrics}."""
    return {split: score_val(runner, ev, runner.test_dataloader if split == "test" else None)
            for split, ev in evaluators.items()}


def train_then_test(cfg, out: Path, t0: float, resume: bool = False):
    """Train (the detector: train_score_both's single-score sibling), load the best checkpoint
    on val, test it once. Returns (runner, best checkpoint, test metrics, training seconds)."""
    runner, train_s = train(cfg, out, t0, resume)
    best = best_checkpoint(out, runner)
    runner.load_checkpoint(str(best))   # a checkpoint this run wrote: see models.checkpoints
    return runner, best, runner.test(), train_s


def train(cfg, out: Path, t0: float, resume: bool = False):
    """mmengine's Runner built from cfg and trained; its budget.json written. Returns (runner,
    training seconds since t0)."""
    from mmengine.dist import barrier
    from mmengine.runner import Runner

    cfg.resume, cfg.load_from = resume, None   # resume: mmengine reads work_dir/last_checkpoint
    runner = Runner.from_cfg(cfg)
    cpu0 = time.process_time()
    runner.train()
    close_once(runner)
    write_budget(out, runner.iter, time.process_time() - cpu0)
    barrier()   # the main process has recorded the best checkpoint's hash before others load it
    return runner, time.time() - t0


def train_score_both(cfg, out: Path, t0: float, dump, resume: bool = False):
    """Train; score the final weights on test and validation (<split>_results_last.pkl) and the
    best checkpoint on both (<split>_results.pkl: test once through runner.test, validation for
    selection). ``dump(split, source)`` is the evaluator that writes <split>_results<source>.pkl.
    When the best checkpoint is the last epoch's, its weights are the final ones: their scores
    are copied rather than computed twice. Returns (runner, best checkpoint, {"best": {split:
    metrics}, "last": {split: metrics}}, training seconds)."""
    from mmengine.dist import is_main_process
    runner, train_s = train(cfg, out, t0, resume)
    last = score_last(runner, {s: dump(s, "_last") for s in ("test", "val")})
    best = best_checkpoint(out, runner)
    if checkpoint_epoch(best) == runner.epoch:
        if is_main_process():
            for split in ("test", "val"):
                atomic.write_bytes(out / f"{split}_results.pkl", (out / f"{split}_results_last.pkl").read_bytes())
        return runner, best, {"best": dict(last), "last": last}, train_s
    runner.load_checkpoint(str(best))   # a checkpoint this run wrote: see models.checkpoints
    scored = {"test": runner.test(), "val": score_val(runner, dump("val"))}
    return runner, best, {"best": scored, "last": last}, train_s


def close_once(runner) -> None:
    """mmengine's LoggerHook closes the visualizer after train() and again after test() on the
    same Runner; an MLflow backend closed once would then start a second, unnamed MLflow run to
    log the run folder's files again (mlflow 3.18, measured). Its close() does nothing without
    its client, `_mlflow`: dropped here, after training, when nothing logs to it any more."""
    from mmengine.visualization import MLflowVisBackend
    for backend in runner.visualizer._vis_backends.values():
        if isinstance(backend, MLflowVisBackend) and hasattr(backend, "_mlflow"):
            del backend._mlflow
