"""benchmarks/throughput.py's fused_adamw candidate: the run's AdamW built fused (or foreach),
in today's layout, with the same update as today's; not offered to a run without AdamW. Its
bf16 candidate: the backbone in bfloat16, the weights and the head's input in float32."""
import importlib.util
from pathlib import Path

import pytest
import torch

from petaction import params as P

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("throughput_bench", REPO / "benchmarks" / "throughput.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def tiny_cfg(tmp_path, optimizer):
    from mmengine.registry import init_default_scope
    from petaction.models import mmconfig
    init_default_scope("mmaction")
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "optimizer": optimizer})
    return mmconfig.build(p, tmp_path, tmp_path / "run", ["a", "b", "c"], [1, 1, 1])


def test_fused_adamw_builds_the_runs_adamw_fused_with_the_same_update(bench, tmp_path):
    from mmaction.registry import MODELS
    cfg = tiny_cfg(tmp_path, "AdamW")
    assert "fused_adamw" in bench.CANDIDATES and bench.fused_skip_reason(cfg) is None
    state = MODELS.build(cfg.model).state_dict()
    today, ow_today = bench.build_candidate(cfg, "contiguous", state)
    fused, ow_fused = bench.build_candidate(cfg, "fused_adamw", state)
    flag = bench.fused_flag()
    assert isinstance(ow_fused.optimizer, torch.optim.AdamW) and ow_fused.optimizer.defaults[flag] is True
    assert not ow_today.optimizer.defaults.get(flag)
    # today's layout: no weight of the fused candidate in channels-last
    w = next(m.weight for m in fused.modules() if isinstance(m, torch.nn.Conv2d))
    assert w.is_contiguous() and not (w.dim() == 4 and w.stride()[1] == 1 and w.shape[1] > 1)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):       # the same gradients: the same parameters after each step
        grads = [torch.randn(q.shape, generator=g) for q in today.parameters()]
        for model, ow in ((today, ow_today), (fused, ow_fused)):
            for q, grad in zip(model.parameters(), grads):
                q.grad = grad.clone()
            ow.step()
            ow.zero_grad()
    worst = max((a - b).abs().max().item() for a, b in zip(today.parameters(), fused.parameters()))
    assert worst < 1e-5
    moved = max((a - state[n]).abs().max().item() for n, a in today.named_parameters())
    assert moved > 1e-4      # the steps did update the weights


def test_fused_adamw_is_skipped_for_a_run_without_adamw(bench, tmp_path):
    cfg = tiny_cfg(tmp_path, "SGD")
    assert bench.fused_skip_reason(cfg) == "the run's optimizer is SGD, not AdamW"
    with pytest.raises(ValueError, match="not AdamW"):
        bench.optim_wrapper_cfg(cfg, "fused_adamw")


def test_fused_optimizer_builds_the_trainings_adamw_fused(tmp_path):
    """fused_optimizer: true (the quick profile's) reaches the optimizer mmengine builds for a
    training; a non-boolean value is refused by name."""
    from mmengine.optim import build_optim_wrapper
    from mmaction.registry import MODELS
    from petaction.models import mmconfig
    assert P.resolve_train({"model": "tsn", "profile": "quick"})["fused_optimizer"] is True
    cfg = tiny_cfg(tmp_path, "AdamW")
    assert not {"fused", "foreach"} & set(cfg.optim_wrapper.optimizer)     # tiny: off
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "optimizer": "AdamW", "fused_optimizer": True})
    cfg = mmconfig.build(p, tmp_path, tmp_path / "run", ["a", "b", "c"], [1, 1, 1])
    ow = build_optim_wrapper(MODELS.build(cfg.model), cfg.optim_wrapper)
    assert ow.optimizer.defaults[mmconfig.fused_flag()] is True
    with pytest.raises(P.ParamError, match="fused_optimizer must be true or false"):
        P.resolve_train({"model": "tsn", "profile": "tiny", "fused_optimizer": "yes"})


def test_bf16_candidate_runs_the_backbone_in_bfloat16_and_the_head_in_float32(bench, tmp_path):
    from mmaction.registry import MODELS
    cfg = tiny_cfg(tmp_path, "AdamW")
    state = MODELS.build(cfg.model).state_dict()
    model, _ = bench.build_candidate(cfg, "bf16", state)
    seen = {}
    conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda m, i, o: seen.update(conv=o.dtype))   # None: the output unchanged
    feats = model.backbone(torch.randn(2, 3, 16, 16))
    assert seen["conv"] == torch.bfloat16 and feats.dtype == torch.float32
    assert all(q.dtype == torch.float32 for q in model.parameters())   # the weights stay float32
