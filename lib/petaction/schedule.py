"""Which training runs where: the study's GPUs, its strategy, and a longest-first schedule.

    gpus: auto          every GPU torch sees ([] on a CPU-only machine: one process, in turn)
    strategy: parallel  one model per GPU, the rest queued; each papermill run is pinned to its
                        GPU with CUDA_VISIBLE_DEVICES. A GPU that frees takes the costliest job
                        still waiting (longest processing time first, LPT).
    strategy: ddp       one model at a time on all GPUs: the train notebook runs torchrun with
                        nproc = number of GPUs (DistributedDataParallel, see launch).
    cpu_jobs: auto      no GPU: this many trainings at once, each with cores / cpu_jobs torch
                        threads (OMP_NUM_THREADS). At the quick profile's small convolutions two
                        threads barely beat one (a 3-epoch TSM: 57 s at 2 threads, 81 s at 1),
                        so on 2 cores two 1-thread trainings side by side do 1.4x the work of
                        one 2-thread training (docs/gpu.md).

The same code places jobs whether the slots are real GPUs, a fake list on a CPU machine
(tests, benchmarks/schedule.py) or a Slurm allocation (ddp: one slot, many nodes).
Cost estimate of one training, in seconds on one CPU thread where it was measured: the
committed benchmarks/results/throughput.json holds, per training of the default study, the
step time of each layout, a batch's loading and a validation pass (benchmarks/throughput.py);
a training of the same step settings (step_key) costs epochs x (steps an epoch x (step +
loading) + validation), at the least loaded core's speed of that run (load_scale). FLOPs alone misorder the CPU trainings (a depthwise convolution does
little work per second), so the GFLOPs per training clip (mmengine's FlopAnalyzer on forward.py's
whole forward at the train pipeline's input) x epochs is the fallback, for a training the file
does not hold or on a GPU machine, scaled to seconds by the measured trainings' seconds per
GFLOP-epoch when the study has some.
"""
from __future__ import annotations

import heapq
import json
import math
import os
import queue
import threading
import time
from pathlib import Path

from .core import paths
from .core.errors import ParamError

STRATEGIES = ("parallel", "ddp")


def visible_gpus() -> list[str]:
    """The GPUs torch sees, by the ids CUDA_VISIBLE_DEVICES gives them (Slurm sets it)."""
    import torch
    n = torch.cuda.device_count()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:n] if len(listed) >= n else [str(i) for i in range(n)]


def resolve_gpus(gpus) -> list[str]:
    """'auto' -> every visible GPU; an int n -> the first n; a list or '0,1' -> those ids."""
    if gpus == "auto":
        return visible_gpus()
    if isinstance(gpus, bool):
        raise ParamError(f"gpus must be auto, a count or a list of GPU ids (got {gpus!r})")
    if isinstance(gpus, int) and gpus >= 0:   # the first n visible ones (0..n-1 when fewer: a fake list)
        visible = visible_gpus()
        return visible[:gpus] if len(visible) >= gpus else [str(i) for i in range(gpus)]
    if isinstance(gpus, str):
        gpus = [g for g in gpus.split(",") if g.strip()]
    if isinstance(gpus, list) and all(str(g).strip().isdigit() for g in gpus):
        return [str(g).strip() for g in gpus]
    raise ParamError(f"gpus must be auto, a count or a list of GPU ids (got {gpus!r})")


def resolve_cpu_jobs(cpu_jobs) -> int:
    """'auto' -> one training per core, at most 4 and one per 4 GiB of memory (a quick-profile
    training holds about 1.5 GiB); an int n >= 1 -> n."""
    if cpu_jobs == "auto":
        cores = os.cpu_count() or 1
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
        return max(1, min(cores, 4, int(mem_gib // 4)))
    if isinstance(cpu_jobs, int) and not isinstance(cpu_jobs, bool) and cpu_jobs >= 1:
        return cpu_jobs
    raise ParamError(f"cpu_jobs must be auto or a whole number >= 1 (got {cpu_jobs!r})")


def slots(gpus: list[str], strategy: str, cpu_jobs: int = 1) -> list[list[str]]:
    """The GPU sets jobs run on: one per GPU (parallel), all together (ddp), or, without a
    GPU, `cpu_jobs` CPU slots (each an empty list)."""
    if strategy not in STRATEGIES:
        raise ParamError(f"strategy {strategy!r} is not valid; choose one of {list(STRATEGIES)}")
    if not gpus:
        return [[] for _ in range(cpu_jobs)]
    return [[g] for g in gpus] if strategy == "parallel" else [list(gpus)]


def cpu_threads(n_slots: int) -> int:
    """Torch threads for each of n CPU trainings running side by side."""
    return max(1, (os.cpu_count() or 1) // n_slots)


def env(slot: list[str], visible: list[str] | None = None, n_slots: int = 1) -> dict:
    """Environment for a job on `slot`: only its GPUs are visible. On the CPU with several
    slots, each job gets its share of the cores (OMP_NUM_THREADS). Nothing is set for a lone
    CPU job or for a slot of every visible GPU (ddp; under srun, Slurm sets each node's own)."""
    if not slot:
        return {"OMP_NUM_THREADS": str(cpu_threads(n_slots))} if n_slots > 1 else {}
    if slot == visible:
        return {}
    return {"CUDA_VISIBLE_DEVICES": ",".join(slot)}


def gflops_per_clip(p: dict) -> float:
    """Forward GFLOPs of one training clip for resolved train parameters: forward.build's
    whole forward (preprocessor, backbone, neck, head) on the views the train pipeline samples
    (one clip; a segment model's num_segments frames; fast_rcnn's whole frames and RoI)."""
    from .evaluation import cost, forward
    return cost.gflops(forward.build(forward.build_model(p, num_classes=12)),
                       forward.example_inputs(p, split="train"))


THROUGHPUT = paths.REPO / "benchmarks" / "results" / "throughput.json"
# the train settings a step's time depends on (the layout is chosen per entry: channels_last)
STEP_KEYS = ("model", "target", "profile", "mm_base", "model_cfg", "model_cfg_lite", "lite", "sampling", "img_size",
             "resize", "num_segments", "clip_len", "frame_interval", "batch_size", "optimizer", "grad_clip",
             "class_balance", "num_workers", "deterministic", "amp")


def step_key(p: dict) -> str:
    """A digest of the settings one training step's time depends on (benchmarks/throughput.py
    records it beside each measurement)."""
    import hashlib
    settings = {k: p.get(k) for k in STEP_KEYS}
    settings["model"] = str(p["model"]).split("@")[0]   # tsm@action steps as tsm does (its init differs)
    blob = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def layout(p: dict) -> str:
    """The throughput candidate a training runs as."""
    return "channels_last" if p["channels_last"] else "contiguous"


def measured(path=THROUGHPUT) -> list[dict]:
    """throughput.json's per-training rows ([] when absent or unreadable)."""
    try:
        return json.loads(Path(path).read_text())["models"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def steps_per_epoch(p: dict) -> int | None:
    """Optimizer steps an epoch of p's prepared training split takes (None: not prepared yet)."""
    from .training import runfolder
    try:
        data = runfolder.data_dir(p["study"], p["target"], p["results_dir"] or None, p.get("fold", 0))
        return math.ceil(len(runfolder.read_split(data, "train", p.get("fold", 0))) / p["batch_size"])
    except (OSError, KeyError, ValueError):
        return None


def load_scale(row: dict, rows: list[dict]) -> float:
    """A row's times at the least loaded core's speed: a shared machine's load drifts between
    the models of one benchmark run (each model's candidates are interleaved, the models are
    not), and the matmul peak timed in the same rounds as the row's steps measures how much;
    its peak over the run's highest scales the row's seconds."""
    top = max((r.get("peak_gflops_s") or 0.0 for r in rows), default=0.0)
    own = row.get("peak_gflops_s")
    return own / top if own and top else 1.0


def epoch_seconds(p: dict, row: dict, scale: float = 1.0) -> float | None:
    """Seconds of one epoch of p from a throughput row of its step settings: its layout's
    step and a batch's loading per step, and one validation pass (x ``scale``: load_scale)."""
    c = row.get("candidates", {}).get(layout(p), {})
    if "median_ms" not in c:
        return None
    steps = steps_per_epoch(p) or row["steps_per_epoch"]
    val = row.get("validation") or {}
    s = steps * (c["median_ms"] + row.get("load_ms_per_batch", 0.0)) / 1000 + val.get("load_s", 0.0) + val.get("forward_s", 0.0)
    return s * scale


def measured_cost(p: dict, rows: list[dict]) -> float | None:
    """Seconds of p's training from throughput rows of the same step settings, else None."""
    key = step_key(p)
    for row in rows:
        if row.get("step_key") == key:
            s = epoch_seconds(p, row, load_scale(row, rows))
            if s is not None:
                return s * p["epochs"]
    return None


def seconds_per_gflop_epoch(rows: list[dict]) -> float | None:
    """The measured trainings' median seconds per (forward GFLOPs per clip x epoch): the
    fallback's scale, so that estimated and measured costs share one unit."""
    ratios = [row["epoch"]["epoch_s"] * load_scale(row, rows) / row["gmacs_per_clip"] for row in rows
              if (row.get("epoch") or {}).get("epoch_s") and row.get("gmacs_per_clip")]
    return float(sorted(ratios)[len(ratios) // 2]) if ratios else None


def costs_in_seconds(rows: list[dict] | None = None) -> bool:
    """Whether job_cost gives seconds (measured trainings to count or scale by, no GPU)."""
    import torch
    return not torch.cuda.is_available() and bool(measured() if rows is None else rows)


def job_cost(p: dict, rows: list[dict] | None = None) -> float:
    """Cost of one training, for ordering the pool and the console's time left: CPU seconds
    from throughput.json (``rows``: its trainings, default the committed file) where it holds
    this training's step settings and the machine has no GPU; else GFLOPs per clip x epochs,
    in seconds at the measured trainings' rate when there are some."""
    import torch
    rows = measured() if rows is None else rows
    if not torch.cuda.is_available():
        s = measured_cost(p, rows)
        if s is not None:
            return s
    rate = None if torch.cuda.is_available() else seconds_per_gflop_epoch(rows)
    return gflops_per_clip(p) * p["epochs"] * (rate or 1.0)


def lpt_order(costs: list[float]) -> list[int]:
    """Job indices, costliest first (ties keep the given order)."""
    return sorted(range(len(costs)), key=lambda i: -costs[i])


def plan(costs: list[float], n_slots: int, busy: list[float] = ()) -> dict:
    """The schedule run() produces when each job takes its cost: LPT list scheduling, each
    job on the slot that frees first. ``busy``: seconds until each of the first slots frees
    (jobs already running; the study console's time left). Returns per-job (slot, start, end),
    the makespan and total / n_slots, the makespan of a perfect split (no schedule beats it)."""
    start = sorted(busy) + [0.0] * max(n_slots - len(busy), 0)
    free = [(t, s) for s, t in enumerate(start)]
    heapq.heapify(free)
    placed = {}
    for i in lpt_order(costs):
        t, s = heapq.heappop(free)
        placed[i] = (s, t, t + costs[i])
        heapq.heappush(free, (t + costs[i], s))
    makespan = max([e for _, _, e in placed.values()] + list(busy), default=0.0)
    total = sum(costs)
    bound = total / n_slots
    return {"jobs": [placed[i] for i in range(len(costs))], "makespan": makespan, "total": total,
            "per_slot": bound, "over_per_slot": makespan / bound - 1 if bound else 0.0}


def run(costs: list[float], slot_list: list[list[str]], start, log=print) -> tuple[list, list]:
    """Run jobs 0..n-1 on the slots: one thread per slot takes the costliest waiting job and
    calls start(job, slot); returns (results in job order, measured (slot, start, end) each)."""
    waiting = queue.Queue()
    for i in lpt_order(costs):
        waiting.put(i)
    results, timeline = [None] * len(costs), [None] * len(costs)
    t0 = time.perf_counter()

    def worker(s: int) -> None:
        while True:
            try:
                i = waiting.get_nowait()
            except queue.Empty:
                return
            begin = time.perf_counter() - t0
            try:
                results[i] = start(i, slot_list[s])
            except Exception as e:   # one failed job must not stop the slot
                log(f"[FAIL] job {i}: {type(e).__name__}: {e}")
                results[i] = e
            timeline[i] = (s, begin, time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(len(slot_list))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, timeline
