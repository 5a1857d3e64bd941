"""GPU check: train TSM-R50 at 224 px for a fixed number of iterations, with and without AMP.

    .venv/bin/python benchmarks/gpu_check.py                 # a GPU box: full profile, TSM-R50, 224 px
    .venv/bin/python benchmarks/gpu_check.py --tiny          # CPU: the tiny profile's lite TSM (a smoke test)
    [--iters 60] [--warmup 10] [--data results/<study>/data] [--channels-last] [--loader-only] [--out NAME]

Reports, per variant (fp32; AMP with mmengine's AmpOptimWrapper, GPU only): clips per second,
peak GPU memory (peak resident memory on CPU), and the share of step time spent waiting for
data, from mmengine's IterTimerHook (`data_time` over `time`, iterations after warm-up). Also
the CPU loader's own rate (one process through the training pipeline), the rate
num_workers processes can feed at most. Without --data it prepares a small synthetic set
(short side 256; 32 on --tiny) in a temporary folder. Writes benchmarks/results/<out>.json.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from petaction.training import launch
from petaction.models import mmconfig
from petaction.data import prepare
from petaction.core import provenance
from petaction import params as P
from petaction import setup
from petaction.training import train
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)


def timing_hook():
    from mmengine.hooks import Hook

    class StepTimes(Hook):
        """IterTimerHook's per-iteration `time` and `data_time`, read after it wrote them."""
        priority = "LOWEST"

        def __init__(self):
            self.time, self.data_time = [], []

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            hub = runner.message_hub
            self.time.append(hub.get_scalar("train/time").current())
            self.data_time.append(hub.get_scalar("train/data_time").current())

    return StepTimes()


def config(p: dict, data: Path, work: Path, iters: int):
    """The study's own config for `p`, trained for `iters` iterations without validation."""
    meta = train.read_split(data, "train")
    classes = __import__("json").loads((data / "classes.json").read_text())["classes"]
    counts = np.bincount([r[2] for r in meta], minlength=len(classes)).tolist()
    cfg = mmconfig.build(p, data, work, classes, counts)
    launch.adapt(cfg, p)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=iters, val_interval=iters + 1)
    cfg.train_dataloader.sampler = dict(type="InfiniteSampler", shuffle=True)
    for key in ("val_dataloader", "val_cfg", "val_evaluator", "test_dataloader", "test_cfg", "test_evaluator"):
        cfg[key] = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger.interval = max(1, iters // 4)
    cfg.log_processor.by_epoch = False
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h["type"] == "ChannelsLastHook"]
    return cfg


def measure(p: dict, data: Path, iters: int, warmup: int) -> dict:
    import torch
    from mmengine.runner import Runner
    with tempfile.TemporaryDirectory() as work:
        runner = Runner.from_cfg(config(p, data, Path(work), iters))
        hook = timing_hook()
        runner.register_hook(hook)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        runner.train()
    t, d = np.array(hook.time[warmup:]), np.array(hook.data_time[warmup:])
    out = {"amp": p["amp"], "channels_last": p["channels_last"], "iters_timed": int(len(t)),
           "batch": p["batch_size"], "step_s": round(float(t.mean()), 4),
           "clips_per_s": round(p["batch_size"] / float(t.mean()), 1),
           "data_wait_share": round(float(d.sum() / t.sum()), 3)}
    if torch.cuda.is_available():
        out["gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    else:
        out["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2)
    return out


def loader_rate(p: dict, data: Path, clips: int = 40) -> float:
    """Clips per second one process takes through the training pipeline (decode, resize, crop)."""
    from mmaction.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope("mmaction")
    train_pipe, _ = mmconfig.pipelines(p)
    ds = DATASETS.build(mmconfig.loader(p, data, "train", train_pipe, True)["dataset"])
    n = min(clips, len(ds))
    ds[0]
    t0 = time.perf_counter()
    for i in range(n):
        ds[i % len(ds)]
    return n / (time.perf_counter() - t0)


def tiny_data(tmp: Path, short_side: int) -> Path:
    info = prepare.prepare(study="gpucheck", results_dir=tmp, synth_scale=0.4, synth_frames=10,
                           short_side=short_side, workers=1)
    return Path(info["data_dir"])


def run(tiny: bool, iters: int, warmup: int, data: Path | None, channels_last: bool,
        loader_only: bool = False) -> dict:
    import torch
    over = {"model": "tsm", "profile": "tiny" if tiny else "full", "channels_last": channels_last}
    if tiny:
        over["num_workers"] = 0
    p = P.resolve_train(over)
    with tempfile.TemporaryDirectory() as tmp:
        data = data or tiny_data(Path(tmp), 32 if tiny else 256)
        variants = []
        if not loader_only:
            variants.append(measure(dict(p, amp=False), data, iters, warmup))
            if torch.cuda.is_available():
                variants.append(measure(dict(p, amp=True), data, iters, warmup))
            else:
                variants.append({"amp": True, "skipped": "mmengine's AmpOptimWrapper needs a GPU"})
        rate = loader_rate(p, data)
    workers = max(p["num_workers"], 1)
    return {"model": "tsm", "profile": p["profile"], "backbone_depth": 18 if p["lite"] else 50,
            "img_size": p["img_size"], "num_segments": p["num_segments"], "iters": iters, "warmup": warmup,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "variants": variants, "loader_clips_per_s_one_process": round(rate, 1),
            "num_workers": workers, "loader_clips_per_s_all_workers": round(rate * workers, 1)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="the tiny profile's lite TSM at 32 px (for CPU)")
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=10, help="iterations left out of the figures")
    ap.add_argument("--data", type=Path, help="a prepared data folder (results/<study>/data)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--loader-only", action="store_true", help="only the CPU loader's rate (no training)")
    ap.add_argument("--out", default="gpu_check", help="benchmarks/results/<out>.json")
    a = ap.parse_args(argv)
    if a.out:
        provenance.require_clean()
    if a.iters <= a.warmup:
        ap.error("--iters must exceed --warmup")
    res = run(a.tiny, a.iters, a.warmup, a.data, a.channels_last, a.loader_only)
    for v in res["variants"]:
        if "skipped" in v:
            print(f"amp={v['amp']}: skipped ({v['skipped']})")
            continue
        mem = f"{v['gpu_mem_gib']} GiB GPU" if "gpu_mem_gib" in v else f"{v['peak_rss_gib']} GiB RSS"
        print(f"amp={v['amp']}: {v['clips_per_s']} clips/s, step {1000 * v['step_s']:.0f} ms, {mem}, "
              f"waiting for data {100 * v['data_wait_share']:.1f}% of step time")
    print(f"loader: {res['loader_clips_per_s_one_process']} clips/s per process, "
          f"{res['loader_clips_per_s_all_workers']} with {res['num_workers']} workers")
    if a.out:
        provenance.save_benchmark(a.out, res)
    return res


if __name__ == "__main__":
    main()
