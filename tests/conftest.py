import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))   # test helpers (aihub_fixture)

import pytest  # noqa: E402

# Enough clips per class for a train/val/test split of every class (3+), small and short.
TINY_PREPARE = {"synth_scale": 0.4, "synth_frames": 10, "short_side": 32, "workers": 1}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A prepared tiny synthetic study: (results_dir, study name, data dir)."""
    from petaction import prepare
    results = tmp_path_factory.mktemp("tiny_results")
    info = prepare.prepare(study="tiny", results_dir=results, **TINY_PREPARE)
    return results, "tiny", Path(info["data_dir"])


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
