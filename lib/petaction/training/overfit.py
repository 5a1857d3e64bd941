"""Can a model's configuration fit a handful of clips? A seconds-long sanity check of the recipe.

A model that cannot drive its training loss on 16 fixed clips well below the class prior's
ln(K) within a couple of hundred steps has an optimisation or architecture problem (a head that
cannot see the frame, residual branches zeroed so that only stride-2 shortcuts reach the head,
time collapsed to one frame...), not a data-size one. tests/test_overfit.py runs it for every
model file at the quick profile's architecture and optimiser.

Everything is mmaction2/mmengine's: the model and its data preprocessor are built from the
run's config (mmconfig.build), the clips come through the config's own test pipeline (no
augmentation: the same tensors every step), and each step is the model's ``train_step`` with
the config's optimizer wrapper.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..models import mmconfig  # noqa: F401
from .runfolder import read_split


def fixed_batch(cfg, n_clips: int) -> dict:
    """The first ``n_clips`` training clips through the test pipeline, collated once."""
    from mmengine.dataset import pseudo_collate
    from mmaction.registry import DATASETS
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.update(pipeline=cfg.test_dataloader.dataset.pipeline, test_mode=True)
    if ds_cfg.type == "LabelledRawframeDataset":   # class_balance: sampler; its plain dataset will do
        ds_cfg.type = "RawframeDataset"
        ds_cfg.pop("metainfo", None)
    dataset = DATASETS.build(ds_cfg)
    return pseudo_collate([dataset[i] for i in range(min(n_clips, len(dataset)))])


def fit_clips(p: dict, data_dir: Path, n_clips: int = 16, steps: int = 16, model_cfg: dict | None = None,
              blind: bool = False, seed: int = 0) -> dict:
    """Train the model of resolved parameters ``p`` on ``n_clips`` fixed clips for ``steps``
    optimizer steps at the run's optimizer and learning rate (no warm-up, no decay). Returns
    the loss at each step, ln(K) and the clips' label entropy (what a model blind to its input
    can reach at best). Negative controls: ``model_cfg`` merges over the built model dict
    (zoo settings), ``blind`` blanks every frame (a model that cannot see the clip)."""
    import numpy as np
    import torch
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmaction.registry import MODELS

    from ..core.dicts import deep_merge

    init_default_scope("mmaction")
    torch.manual_seed(seed)
    classes = json.loads((data_dir / "classes.json").read_text())["classes"]
    labels = [r[2] for r in read_split(data_dir, "train", p.get("fold", 0))][:n_clips]
    cfg = mmconfig.build(p, data_dir, data_dir / "overfit", classes, [1] * len(classes))
    model = MODELS.build(deep_merge(cfg.model.to_dict(), model_cfg or {}))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    batch = fixed_batch(cfg, n_clips)
    if blind:
        batch["inputs"] = [torch.zeros_like(x) for x in batch["inputs"]]
    losses = []
    for _ in range(steps):
        out = model.train_step(batch, optim)
        losses.append(float(sum(v for k, v in out.items() if k.startswith("loss"))))
    freq = np.bincount(labels) / len(labels)
    freq = freq[freq > 0]
    return {"losses": losses, "ln_k": math.log(len(classes)),
            "label_entropy": float(-(freq * np.log(freq)).sum()), "n_clips": len(labels)}
