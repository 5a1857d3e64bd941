"""Distributed (DDP) training: torchrun started from the train notebook, one process per GPU.

train.run starts `torchrun ... -m petaction.training.worker RUN_DIR` when nproc * nnodes > 1, follows
its log and reads the metrics.json it wrote. Each process it starts runs worker.main: it
loads the run's config.py and trains with mmengine's Runner (launcher "pytorch"), which wraps
the model in DistributedDataParallel, shards the data with DefaultSampler and sets each
epoch's shuffle with DistSamplerSeedHook.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m petaction.training.worker RUN_DIR

Two mmengine 0.10.7 traps on CPU-only machines (gloo) are handled here and in mmhooks:
init_dist calls torch.cuda.set_device whatever the backend (init_cpu_process_group joins
the gloo group first, so the Runner skips init_dist), and the Runner's DDP wrapper passes
device_ids, which DDP rejects for CPU modules (mmhooks.PetDistributedDataParallel).
Across nodes (nnodes > 1, inside a Slurm allocation) srun starts one torchrun per node and
they meet through torchrun's c10d rendezvous on the first node.
"""
from __future__ import annotations

import os
import sys
import subprocess
from collections import deque
from pathlib import Path

from ..core.errors import ParamError

RDZV_PORT = 29400


def world_size(p: dict) -> int:
    return p["nproc"] * p["nnodes"]


def distributed(p: dict) -> bool:
    return world_size(p) > 1


def backend() -> str:
    import torch
    return "nccl" if torch.cuda.is_available() else "gloo"


def check(p: dict) -> None:
    """One clear error for settings this machine or the batch cannot honour."""
    import torch
    for key in ("nproc", "nnodes"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise ParamError(f"{key} must be a positive whole number (got {p[key]!r})")
    if p["batch_size"] % world_size(p):
        raise ParamError(f"batch_size {p['batch_size']} (the global batch) does not split over "
                         f"{world_size(p)} processes (nproc x nnodes); choose a multiple")
    if p["amp"] and not torch.cuda.is_available():
        raise ParamError("amp: true needs a CUDA GPU (mmengine's AmpOptimWrapper refuses the CPU); "
                         "set amp: false")


def adapt(cfg, p: dict) -> None:
    """What DDP, channels_last and exact resume need in a config from mmconfig.build.
    batch_size is the global batch: each of the world_size processes takes its share, so a
    2-process run steps through the data as a 1-process run with the same batch_size does."""
    check(p)
    cfg.train_dataloader.batch_size = p["batch_size"] // world_size(p)
    cfg.custom_hooks = [dict(type="EpochSeedHook"), *cfg.custom_hooks]
    if p["channels_last"]:
        cfg.custom_hooks.append(dict(type="ChannelsLastHook"))
    cfg.model_wrapper_cfg = dict(type="PetDistributedDataParallel", broadcast_buffers=False,
                                 find_unused_parameters=False, channels_last=p["channels_last"])
    cfg.env_cfg.dist_cfg = dict(backend=backend())


def slurm_head(env=os.environ) -> str:
    """The allocation's first node (torchrun's rendezvous host)."""
    out = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
                         capture_output=True, text=True, check=True).stdout
    return out.split()[0]


def torchrun_command(p: dict, run_dir: Path, resume: bool, env=os.environ, head: str | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(p["nproc"])]
    if p["nnodes"] > 1:
        if "SLURM_JOB_ID" not in env:
            raise ParamError(f"nnodes {p['nnodes']} needs a Slurm allocation of that many nodes "
                             "(sbatch tools/slurm_train.sbatch); on one machine use nproc only")
        head = head or slurm_head(env)
        port = env.get("PETACTION_RDZV_PORT", str(RDZV_PORT))
        cmd = ["srun", f"--nodes={p['nnodes']}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", *cmd,
               "--nnodes", str(p["nnodes"]), "--rdzv_backend", "c10d", "--rdzv_endpoint", f"{head}:{port}",
               "--rdzv_id", env["SLURM_JOB_ID"]]
    else:
        cmd.append("--standalone")   # a free local port: several runs may share the machine
    return [*cmd, "-m", "petaction.training.worker", str(run_dir), *(["--resume"] if resume else [])]


def _stop_with_parent() -> None:
    """Runs in the torchrun child before exec: Linux sends it SIGTERM when the process that
    started it dies (a killed notebook kernel), and torchrun then stops its workers instead of
    leaving them training beside the re-run that resumes."""
    import ctypes
    import signal
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))   # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass   # not Linux: a killed kernel leaves torchrun to finish on its own


def run_torchrun(p: dict, run_dir: Path, resume: bool, log=print) -> None:
    """Start torchrun and follow its log (also saved to RUN_DIR/torchrun.log)."""
    cmd = torchrun_command(p, run_dir, resume)
    log("$ " + " ".join(cmd))
    tail = deque(maxlen=40)
    with open(run_dir / "torchrun.log", "w") as logf, \
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                             preexec_fn=_stop_with_parent) as proc:
        for line in proc.stdout:
            logf.write(line)
            logf.flush()
            log(line.rstrip("\n"))
            tail.append(line)
    if proc.returncode:
        raise RuntimeError(f"torchrun exited with {proc.returncode} (log: {run_dir / 'torchrun.log'}); "
                           f"last lines:\n{''.join(tail)}")


def launcher() -> str:
    """mmengine's launcher for this process: torchrun sets RANK; srun alone sets SLURM_PROCID."""
    if "RANK" in os.environ:
        return "pytorch"
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return "slurm"
    return "none"


def init_cpu_process_group() -> None:
    """Join the gloo group ourselves on a CPU-only machine: mmengine's init_dist would call
    torch.cuda.set_device(LOCAL_RANK) first and fail. The Runner initialises only when no
    group exists, so with one in place it goes straight on."""
    import torch
    import torch.distributed as dist
    if launcher() == "pytorch" and not torch.cuda.is_available() and not dist.is_initialized():
        dist.init_process_group("gloo")

