"""What this project registers into mmaction2's registries (via `custom_imports`)."""
from __future__ import annotations

from mmengine.model import BaseModule
from mmaction.datasets import RawframeDataset
from mmaction.registry import DATASETS, MODELS


@DATASETS.register_module()
class LabelledRawframeDataset(RawframeDataset):
    """mmaction2's RawframeDataset that tells a sampler each clip's class.

    mmdet's ClassAwareSampler (class_balance: sampler) draws every class equally often and
    asks the dataset `get_cat_ids(i)`, which mmaction2's datasets do not define.
    """

    def get_cat_ids(self, idx: int) -> list[int]:
        return [int(self.get_data_info(idx)["label"])]


@MODELS.register_module()
class ResNeXtLastStage(BaseModule):
    """mmdet's ResNeXt as a Recognizer2D backbone.

    Built as `mmdet.ResNeXt` inside mmaction2's registry, mmdet's ResNeXt returns a tuple of
    stage outputs, which Recognizer2D only unwraps for mmcls/mmpretrain backbones. This
    adapter keeps mmdet's implementation and returns the last requested stage's feature map.
    (torchvision and mmpretrain ResNeXts need torchvision, which this environment lacks.)
    """

    def __init__(self, **kwargs):
        super().__init__()
        from mmdet.models.backbones import ResNeXt   # imported here: mmdet is heavy
        kwargs.setdefault("out_indices", (kwargs.get("num_stages", 4) - 1,))
        self.resnext = ResNeXt(**kwargs)

    def forward(self, x):
        return self.resnext(x)[-1]
