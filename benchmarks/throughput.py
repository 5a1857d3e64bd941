"""Training throughput per model: how fast each model's training step runs against the core's limit.

    .venv/bin/python benchmarks/throughput.py [--models x3d i3d] [--targets action] [--no-compile]

For every training of the default study (params/study.yaml: its models per target, seed 0) at
its profile, the optimizer step the study runs: the run's own config, built as training builds
it (mmconfig.build + launch.adapt; fast_rcnn: detection.build), the model, its optimizer wrapper
and ``model.train_step`` on real batches of the run's train loader, from data this script
prepares (prepare.prepare, the study's prepare section) in a scratch results folder. One torch
thread (the study's CPU slots each have one), OpenMP threads that sleep rather than spin, the
run's own deterministic setting.

Every candidate setting of a model is built from the same initial weights and timed side by
side, in interleaved rounds (timing.interleaved_times), so a busy minute of the shared machine
falls on each alike; compare the ratios, not the times:

- ``contiguous``: today's layout;
- ``channels_last``: convolution weights in channels-last (mmhooks.to_channels_last, what the
  ``channels_last`` train parameter does); the layout then flows from the first convolution on;
- ``channels_last_inputs``: the same, and the backbone's input converted too;
- ``compile``: the backbone through ``torch.compile`` (inductor, CPU), in the channels-last
  layout; its compile time is the first steps' time, a failure is recorded (--no-compile skips it);
- ``fused_adamw``: today's layout with the run's AdamW built with ``fused=True`` (set in
  ``cfg.optim_wrapper.optimizer``, which mmengine builds the optimizer from): one fused kernel
  per parameter group instead of AdamW's per-parameter loop of sqrt, addcdiv_, lerp_ and mul_;
  ``foreach=True`` where this torch has no fused CPU kernel (``optimizer_flag`` says which).
  Runs whose optimizer is not AdamW record it as skipped;
- ``bf16``: today's layout with the backbone under ``torch.autocast("cpu", bfloat16)`` (the
  head, the loss and the weights stay float32): the AMX / AVX-512 BF16 kernels of the cores
  that have them.

A round also times ``torch.mm`` of two 1024 x 1024 fp32 matrices on the same thread: the core's
measured matmul peak, in the same minutes as the steps. Per model and candidate: median step
time, steps per second, the ratio to today's, the achieved GFLOP/s (the counted forward FLOPs of
one training clip, mmengine's FlopAnalyzer through schedule.gflops_per_clip, x 2 FLOPs per
multiply-add x 3 for forward and backward x the batch, per step second) and its share of the
peak; torch.profiler's top operators of today's step and of the fastest candidate's.

Outside the step, per model: decoding a training batch (the run's train loader, num_workers as
the profile sets it), and one validation pass (its loader and val_step over the val split):
with steps per epoch, the share of an epoch that is not the training step.

Writes benchmarks/results/throughput.json with the command, machine, commit and time.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # before torch loads OpenMP (infer_speed.py says why)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from petaction import setup  # noqa: E402
from petaction import params as P  # noqa: E402
from petaction import schedule, study  # noqa: E402
from petaction.core import paths, provenance  # noqa: E402
from petaction.core.timing import interleaved_times, time_calls  # noqa: E402
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)

from petaction.models.mmconfig import fused_flag  # noqa: E402

CANDIDATES = ("contiguous", "channels_last", "channels_last_inputs", "compile", "fused_adamw", "bf16")
CHANNELS_LAST = ("channels_last", "channels_last_inputs", "compile")   # the candidates that change the layout
BF16 = ("bf16",)     # the backbone under torch.autocast("cpu", bfloat16): AMX / AVX-512 BF16 kernels where the core has them
MM_N = 1024          # the peak's matrices: large enough for the core's best kernel, a few ms a call
TOP_OPS = 8


# ---- one training's config, model and batches, as training builds them ----

def run_config(p: dict, scratch: Path):
    """(mmengine Config, data folder) of the run ``p`` describes, as train.run / detection.run build it."""
    from petaction.models import mmconfig
    from petaction.training import detection, launch, runfolder
    run_dir = scratch / "runs" / p["target"] / p["model"]
    if detection.is_fast_rcnn(p):
        data = detection.full_frames(p)
        names = json.loads((data / "classes.json").read_text())["classes"]
        return detection.build(p, data, run_dir, names), data
    data = runfolder.data_dir(p["study"], p["target"], p["results_dir"] or None, p["fold"])
    names = json.loads((data / "classes.json").read_text())["classes"]
    counts = np.bincount([r[2] for r in runfolder.read_split(data, "train", p["fold"])], minlength=len(names))
    cfg = mmconfig.build(p, data, run_dir, names, counts.tolist())
    launch.adapt(cfg, p)
    return cfg, data


def input_to_channels_last(module, args):
    """Forward pre-hook: the backbone's clip tensor in channels-last (NHWC / NDHWC)."""
    x = args[0]
    if torch.is_tensor(x) and x.dim() in (4, 5):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        return (x.contiguous(memory_format=fmt), *args[1:])
    return None


def fused_skip_reason(cfg) -> str | None:
    """Why the fused_adamw candidate does not apply to this run (None: it does)."""
    kind = cfg.optim_wrapper.optimizer.get("type")
    return None if kind == "AdamW" else f"the run's optimizer is {kind}, not AdamW"


def optim_wrapper_cfg(cfg, name: str):
    """The run's optimizer wrapper config; fused_adamw: its AdamW with fused=True (or foreach)."""
    ow = copy.deepcopy(cfg.optim_wrapper)
    for flag in ("fused", "foreach"):   # every other candidate: AdamW's per-parameter loop, whatever the profile says
        ow.optimizer.pop(flag, None)
    if name == "fused_adamw":
        if fused_skip_reason(cfg):
            raise ValueError(fused_skip_reason(cfg))
        ow.optimizer[fused_flag()] = True
    return ow


def build_candidate(cfg, name: str, state: dict):
    """The model (train mode, the shared initial weights) and its optimizer wrapper for a candidate."""
    from mmaction.registry import MODELS
    from mmengine.optim import build_optim_wrapper
    from petaction.training.mmhooks import to_channels_last
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.load_state_dict(state)
    model.train()
    if name in CHANNELS_LAST:
        to_channels_last(model)
    if name == "channels_last_inputs":
        model.backbone.register_forward_pre_hook(input_to_channels_last)
    if name == "compile":
        model.backbone = torch.compile(model.backbone)
    if name in BF16:
        autocast_backbone(model)
    return model, build_optim_wrapper(model, optim_wrapper_cfg(cfg, name))


def autocast_backbone(model) -> None:
    """The backbone's forward (and so its backward) in bfloat16 under CPU autocast, its features
    back in float32 for the head, the loss and mmaction's accuracy (numpy has no bfloat16)."""
    forward = model.backbone.forward

    def bf16_forward(*args, **kwargs):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(*args, **kwargs)
        return tuple(o.float() for o in out) if isinstance(out, (tuple, list)) else out.float()
    model.backbone.forward = bf16_forward


def step_fn(model, optim, batches: list):
    """One optimizer step per call (mmengine's train_step: preprocess, loss, backward, update),
    cycling through the prepared batches."""
    state = {"i": 0}

    def step():
        batch = batches[state["i"] % len(batches)]
        state["i"] += 1
        model.train_step(batch, optim)
    return step


class CompileTimeout(Exception):
    pass


def warm_compile(step, limit_s: float) -> float:
    """Seconds of the compiled step's first two calls (forward and backward graphs compiled),
    stopped with CompileTimeout after limit_s."""
    def alarm(*_):
        raise CompileTimeout(f"compile did not finish in {limit_s:.0f} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(max(1, int(limit_s)))
    try:
        t0 = time.perf_counter()
        step()
        step()
        return time.perf_counter() - t0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def top_ops(step, steps: int = 3) -> list[dict]:
    """torch.profiler's operators by self CPU time over ``steps`` steps, per step."""
    from torch.profiler import ProfilerActivity, profile
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = sorted(events, key=lambda e: -e.self_cpu_time_total)[:TOP_OPS]
    return [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 2),
             "share": round(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // steps} for e in rows]


def loader_batches(cfg, n: int) -> tuple[list, list[float], int]:
    """The first n batches of the run's train loader, the ms each took to load (decode, augment,
    collate) and the loader's length (steps per epoch)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(copy.deepcopy(cfg.train_dataloader), seed=0)
    it, batches, ms = iter(loader), [], []
    for _ in range(n):
        t0 = time.perf_counter()
        batches.append(next(it))
        ms.append(1000 * (time.perf_counter() - t0))
    return batches, ms, len(loader)


def validation_pass(cfg, model) -> dict:
    """One pass over the val split as each epoch's ValLoop runs it: load and val_step every batch."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(copy.deepcopy(cfg.val_dataloader), seed=0)
    model.eval()
    load_s = step_s = 0.0
    clips = 0
    with torch.no_grad():
        t = time.perf_counter()
        for batch in loader:
            t1 = time.perf_counter()
            load_s += t1 - t
            model.val_step(batch)
            t = time.perf_counter()
            step_s += t - t1
            clips += len(batch["inputs"])
    model.train()
    return {"clips": clips, "batches": len(loader), "load_s": round(load_s, 3), "forward_s": round(step_s, 3)}


def matmul():
    a, b = torch.randn(MM_N, MM_N), torch.randn(MM_N, MM_N)
    return lambda: torch.mm(a, b)


def gflops_s(ms: float) -> float:
    return 2 * MM_N ** 3 / (ms / 1000) / 1e9


# ---- one model ----

def measure_model(p: dict, scratch: Path, a) -> dict:
    from mmaction.registry import MODELS
    from mmengine.runner import set_random_seed
    set_random_seed(0, deterministic=p["deterministic"])   # what the Runner sets for the run
    cfg, data = run_config(p, scratch)
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.default_scope)   # the Runner's registry scope for the loader's dataset
    batches, load_ms, steps_per_epoch = loader_batches(cfg, a.batches)
    init = MODELS.build(copy.deepcopy(cfg.model))
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel("WARNING")   # init_weights logs every parameter
    init.init_weights()
    state = copy.deepcopy(init.state_dict())
    wanted = p["model"] in a.compile_models if a.compile_models else p["target"] == "action"
    compile_now = a.compile and wanted and a.compile_budget_left >= min(a.compile_limit, 30)   # not a 1 s stub of a try
    not_fused = fused_skip_reason(cfg)
    names = [c for c in CANDIDATES if (c != "compile" or compile_now) and (c != "fused_adamw" or not not_fused)]
    built, fns, out = {}, {}, {}
    for name in names:
        try:
            model, optim = build_candidate(cfg, name, state)
            fn = step_fn(model, optim, batches)
            rec = {"optimizer_flag": fused_flag()} if name == "fused_adamw" else {}
            if name == "compile":
                t = time.perf_counter()
                try:
                    rec["compile_s"] = round(warm_compile(fn, min(a.compile_limit, a.compile_budget_left)), 1)
                finally:
                    a.compile_budget_left -= time.perf_counter() - t
            built[name], fns[name], out[name] = (model, optim), fn, rec
        except Exception as e:   # a candidate that does not run is a finding, not the end of the run
            out[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}
            print(f"  {p['model']} {name}: {out[name]['error']}")
    timed = list(fns)
    mm = matmul()
    times = interleaved_times([fns[n] for n in timed] + [mm], warmup=a.warmup, repeats=a.steps, rounds=a.rounds)
    peak = gflops_s(float(np.median(times[-1])))
    gmacs = schedule.gflops_per_clip(p)
    step_gflop = 2 * 3 * gmacs * p["batch_size"]
    base = float(np.median(times[0])) if timed and timed[0] == "contiguous" else None
    for name, ts in zip(timed, times):
        med = float(np.median(ts))
        out[name].update({"median_ms": round(med, 1), "p90_ms": round(float(np.percentile(ts, 90)), 1),
                          "steps": len(ts), "steps_per_s": round(1000 / med, 3),
                          "ratio_to_today": round(base / med, 3) if base else None,
                          "achieved_gflops_s": round(step_gflop / (med / 1000), 2),
                          "share_of_peak": round(step_gflop / (med / 1000) / peak, 4)})
    if "compile" not in names:
        out["compile"] = {"skipped": "--no-compile" if not a.compile else
                          ("not a model compiled (--compile-models)" if not wanted
                           else "the run's compile budget was spent")}
    if not_fused:
        out["fused_adamw"] = {"skipped": not_fused}
    ok = [n for n in timed if "median_ms" in out[n]]
    fastest = min(ok, key=lambda n: out[n]["median_ms"]) if ok else None
    chosen = "channels_last" if p["channels_last"] else "contiguous"
    profiles = {"contiguous": top_ops(fns["contiguous"])} if "contiguous" in fns else {}
    if fastest and fastest != "contiguous":
        profiles[fastest] = top_ops(fns[fastest])
    val = validation_pass(cfg, built["contiguous"][0]) if "contiguous" in built else None
    step_ms = out.get(chosen, {}).get("median_ms") or base
    outside = None
    if val and step_ms:
        decode_s = steps_per_epoch * float(np.median(load_ms)) / 1000
        train_s = steps_per_epoch * step_ms / 1000
        epoch_s = train_s + decode_s + val["load_s"] + val["forward_s"]
        outside = {"epoch_s": round(epoch_s, 2), "step_share": round(train_s / epoch_s, 3),
                   "train_decode_share": round(decode_s / epoch_s, 3),
                   "val_share": round((val["load_s"] + val["forward_s"]) / epoch_s, 3),
                   "val_decode_share": round(val["load_s"] / epoch_s, 3)}
    return {"model": p["model"], "target": p["target"], "profile": p["profile"], "step_key": schedule.step_key(p),
            "batch": p["batch_size"], "img_size": p["img_size"],
            "sampling": p["sampling"], "steps_per_epoch": steps_per_epoch, "epochs": p["epochs"],
            "deterministic": p["deterministic"], "gmacs_per_clip": round(gmacs, 4),
            "gflop_per_step": round(step_gflop, 3), "peak_gflops_s": round(peak, 2),
            "candidates": out, "fastest": fastest, "chosen": chosen, "fused_optimizer": bool(p["fused_optimizer"]),
            "chosen_ratio_to_today": out.get(chosen, {}).get("ratio_to_today"),
            "top_ops": profiles, "load_ms_per_batch": round(float(np.median(load_ms)), 2),
            "validation": val, "epoch": outside, "data": str(data.name)}


# ---- the study's trainings ----

def trainings(cfg: dict) -> list[tuple[str, str]]:
    """(target, model) of every training of the study at seed 0; a model trained from another
    run (tsm@action) has the step of the model it names, timed once."""
    out = []
    for target in cfg["targets"]:
        for m in study.models_for(cfg, target):
            if (target, m.split("@")[0]) not in out:
                out.append((target, m.split("@")[0]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study-file", default=str(paths.PARAMS / "study.yaml"))
    ap.add_argument("--models", nargs="+", help="only these models (default: the study's)")
    ap.add_argument("--targets", nargs="+", help="only these targets (default: the study's)")
    ap.add_argument("--results-dir", default="", help="scratch results root (default: a temporary folder)")
    ap.add_argument("--batches", type=int, default=4, help="real batches each step cycles through")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps of each candidate")
    ap.add_argument("--steps", type=int, default=6, help="timed steps of each candidate")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    ap.add_argument("--compile-limit", type=float, default=150, help="seconds a model's compile may take")
    ap.add_argument("--compile-budget", type=float, default=600, help="seconds all compiles together may take")
    ap.add_argument("--compile-models", nargs="*", help="compile only these models (default: every action model)")
    ap.add_argument("--out", default="throughput", help="benchmarks/results/<out>.json")
    a = ap.parse_args()
    provenance.require_clean()
    torch.set_num_threads(1)
    a.compile_budget_left = a.compile_budget
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    scratch = Path(a.results_dir or tempfile.mkdtemp(prefix="petaction-throughput-"))
    cfg = study.load_study(Path(a.study_file), dict(study="throughput", results_dir=str(scratch)))
    if a.targets:
        cfg["targets"] = a.targets
    t0 = time.time()
    from petaction.data import prepare
    prepared = {}
    for target in cfg["targets"]:
        t = time.time()
        prepare.prepare("throughput", scratch, target=target, data_root=cfg["data_root"], **cfg["prepare"])
        prepared[target] = round(time.time() - t, 1)
    load_before = os.getloadavg()
    rows, failed = [], []
    for target, model in trainings(cfg):
        if a.models and model not in a.models:
            continue
        p = P.resolve_train({**study.step_params(cfg, target, model, 0, 0)})
        print(f"{model} ({target}) ...", flush=True)
        t = time.time()
        try:
            rows.append(measure_model(p, scratch, a))
        except Exception as e:
            failed.append({"model": model, "target": target, "error": f"{type(e).__name__}: {e}"})
            print(f"  failed: {failed[-1]['error']}")
            continue
        r = rows[-1]
        c = r["candidates"]
        print("  " + ", ".join(f"{n} {v['median_ms']:.0f} ms ({v['ratio_to_today']}x)" if "median_ms" in v
                               else f"{n}: {v.get('error')}" for n, v in c.items())
              + f"; peak {r['peak_gflops_s']:.0f} GFLOP/s; {time.time() - t:.0f} s", flush=True)
    peaks = [r["peak_gflops_s"] for r in rows]
    provenance.save_benchmark(a.out, {
        "command": "python benchmarks/throughput.py " + " ".join(sys.argv[1:]),
        "profile": cfg["profile"], "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "candidates": list(CANDIDATES),
        "timing": {"warmup": a.warmup, "steps": a.steps, "rounds": a.rounds, "batches": a.batches,
                   "compile_limit_s": a.compile_limit, "compile_budget_s": a.compile_budget},
        "flops": "forward multiply-adds of one training clip (schedule.gflops_per_clip) x 2 x 3 (fwd + bwd) x batch",
        "peak": {"op": f"torch.mm {MM_N}x{MM_N} fp32, 1 thread", "median_gflops_s": round(float(np.median(peaks)), 2)
                 if peaks else None, "min_gflops_s": min(peaks, default=None), "max_gflops_s": max(peaks, default=None)},
        "prepare_s": prepared, "loadavg_1min_before_after": [load_before[0], os.getloadavg()[0]],
        "wall_s": round(time.time() - t0, 1), "models": rows, "failed": failed})
    print(f"-> benchmarks/results/{a.out}.json ({time.time() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
