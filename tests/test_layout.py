"""channels_last: the layout the ChannelsLastHook gives the weights survives mmengine's optimizer,
checkpoint and resume, and a resumed run ends where an unstopped one does."""
import json

import numpy as np
import torch

from petaction import params as P
from petaction.models import mmconfig
from petaction.training import launch


def channels_last(t: torch.Tensor) -> bool:
    fmt = {4: torch.channels_last, 5: torch.channels_last_3d}.get(t.dim())
    return fmt is None or t.is_contiguous(memory_format=fmt)


def train(p, data, work, epochs, resume=False):
    from mmengine.runner import Runner
    names = json.loads((data / "classes.json").read_text())["classes"]
    cfg = mmconfig.build(p, data, work, names, [1] * len(names))
    launch.adapt(cfg, p)
    cfg.train_cfg.max_epochs = epochs
    cfg.resume = resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_channels_last_survives_optimizer_checkpoint_and_resume(tiny_data, tmp_path):
    results, study, data = tiny_data
    p = P.resolve_train({"model": "x3d", "profile": "tiny", "study": study, "results_dir": str(results),
                         "epochs": 2, "channels_last": True})
    convs = lambda r: {n: w for n, w in r.model.named_parameters() if w.dim() == 5}   # noqa: E731
    first = train(p, data, tmp_path / "resumed", 1)
    assert convs(first) and all(channels_last(w) for w in convs(first).values())
    state = first.optim_wrapper.optimizer.state
    moments = [v for w in convs(first).values() for v in state[w].values() if torch.is_tensor(v) and v.dim() == 5]
    assert moments and all(channels_last(v) for v in moments)   # the optimizer's buffers too
    saved = torch.load(tmp_path / "resumed" / "epoch_1.pth", map_location="cpu", weights_only=False)["state_dict"]
    assert all(channels_last(saved[n]) for n in convs(first))
    resumed = train(p, data, tmp_path / "resumed", 2, resume=True)
    assert resumed.iter > first.iter and all(channels_last(w) for w in convs(resumed).values())
    whole = train(p, data, tmp_path / "whole", 2)
    for n, w in convs(whole).items():
        np.testing.assert_allclose(convs(resumed)[n].detach().numpy(), w.detach().numpy(), rtol=1e-4, atol=1e-6)
