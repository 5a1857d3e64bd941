"""Model parts this project registers into mmaction2's registry (via `custom_imports`)."""
from __future__ import annotations

from mmengine.model import BaseModule
from mmaction.registry import MODELS


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
