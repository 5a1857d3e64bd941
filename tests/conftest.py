import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))   # test helpers (aihub_fixture)
# The tiny studies check that cost figures are made and used, not their values: 0.1 s of timing
# per figure instead of 2 s (core.timing.min_time_s). Set before petaction is imported; the
# studies' kernels and subprocesses inherit it.
os.environ.setdefault("PETACTION_MIN_TIME_S", "0.1")

import pytest  # noqa: E402

import petaction  # noqa: E402

petaction.setup()   # what every entry point does first (the CLI, the notebooks, the configs' custom_imports)

# Enough clips per class for a train/val/test split of every class (3+), small and short.
TINY_PREPARE = {"synth_scale": 0.4, "synth_frames": 10, "short_side": 32, "workers": 1}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A prepared tiny synthetic study: (results_dir, study name, data dir)."""
    from petaction.data import prepare
    results = tmp_path_factory.mktemp("tiny_results")
    info = prepare.prepare(study="tiny", results_dir=results, **TINY_PREPARE)
    return results, "tiny", Path(info["data_dir"])


@pytest.fixture(scope="session")
def tiny_run(tiny_data):
    """A trained tiny TSM run (tiny profile, seed 0) in the tiny study: infer and online tests."""
    from petaction import params as P
    from petaction.training import train
    results, study, _ = tiny_data
    p = P.resolve_train({"model": "tsm", "profile": "tiny", "study": study, "seed": 0, "results_dir": str(results)})
    train.run(p)
    return results / study / "models" / "tsm" / "seed0"


def one_iteration(cfg):
    """A Runner for ``cfg`` cut to one training iteration (no checkpoint, no project hooks),
    trained; smoke tests then call its test()."""
    from mmengine.runner import Runner
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=1, val_interval=10)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=10, by_epoch=False)
    cfg.log_processor = dict(type="LogProcessor", by_epoch=False)
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner
