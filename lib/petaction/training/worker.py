"""One process of a distributed training: what torchrun (or srun) starts on every GPU.

    python -m torch.distributed.run --standalone --nproc_per_node 2 -m petaction.training.worker RUN_DIR

It loads the run's config.py and trains with mmengine's Runner (launcher "pytorch" under
torchrun, "slurm" under srun alone); launch says how train.run starts it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import setup
from . import launch, train


def worker(out: Path, resume: bool, launcher: str) -> None:
    """Train the run in `out` as one of its processes (`launcher`: mmengine's for this process)."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(out / "config.py"))
    cfg.launcher = launcher
    train.fit(cfg, json.loads((out / "params.json").read_text()), out, resume, time.time())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m petaction.training.worker",
                                 description="one training process of a distributed run")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    args = ap.parse_args(argv)
    setup()
    launch.init_cpu_process_group()
    worker(args.run_dir, args.resume, launch.launcher())
    return 0


if __name__ == "__main__":
    sys.exit(main())
