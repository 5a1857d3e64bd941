"""What this project registers into mmaction2's registries (via `custom_imports`)."""
from __future__ import annotations

import os.path as osp
from collections import OrderedDict

import mmcv
import numpy as np
from mmengine.fileio import FileClient
from mmengine.model import BaseModule
from mmaction.datasets import RawframeDataset
from mmaction.datasets.transforms import RawFrameDecode
from mmaction.registry import DATASETS, MODELS, TRANSFORMS


@DATASETS.register_module()
class LabelledRawframeDataset(RawframeDataset):
    """mmaction2's RawframeDataset that tells a sampler each clip's class.

    mmdet's ClassAwareSampler (class_balance: sampler) draws every class equally often and
    asks the dataset `get_cat_ids(i)`, which mmaction2's datasets do not define.
    """

    def get_cat_ids(self, idx: int) -> list[int]:
        return [int(self.get_data_info(idx)["label"])]


@TRANSFORMS.register_module()
class CachedRawFrameDecode(RawFrameDecode):
    """mmaction2's RawFrameDecode that keeps each decoded RGB frame in memory, up to
    ``cache_mb`` per process (least recently used out first), and hands out copies.

    A training reads every clip once an epoch for tens of epochs and validates on the same
    clips each epoch; at the quick profile's 36 px the default data set's frames fit in the
    cache decoded, so each is decoded once (the share decoding takes of a first epoch:
    benchmarks/results/throughput.json, train_decode_share). A split larger than the cache
    (full-size frames) is read in the same order each epoch, so the LRU rarely hits there; each
    loader worker process has a cache of its own. The frames are the very arrays a fresh decode
    gives (a test checks), so the numerics do not change. Other modalities decode as the parent does."""

    def __init__(self, cache_mb: float = 256, **kwargs):
        super().__init__(**kwargs)
        self.cache_bytes = int(cache_mb * 2 ** 20)
        self.frames: OrderedDict[str, np.ndarray] = OrderedDict()
        self.held = 0

    def frame(self, path: str) -> np.ndarray:
        img = self.frames.get(path)
        if img is not None:
            self.frames.move_to_end(path)
            return img.copy()
        img = mmcv.imfrombytes(self.file_client.get(path), channel_order="rgb")
        if img.nbytes <= self.cache_bytes:
            self.frames[path] = img
            self.held += img.nbytes
            while self.held > self.cache_bytes:
                self.held -= self.frames.popitem(last=False)[1].nbytes
        return img.copy()

    def transform(self, results: dict) -> dict:
        if results["modality"] != "RGB":
            return super().transform(results)
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend, **self.kwargs)
        mmcv.use_backend(self.decoding_backend)
        inds = np.squeeze(results["frame_inds"]) if results["frame_inds"].ndim != 1 else results["frame_inds"]
        results["frame_inds"] = inds
        offset = results.get("offset", 0)
        imgs = [self.frame(osp.join(results["frame_dir"], results["filename_tmpl"].format(int(i) + offset)))
                for i in inds]
        results["imgs"] = imgs
        results["original_shape"] = results["img_shape"] = imgs[0].shape[:2]
        if "gt_bboxes" in results:   # as the parent: boxes from fractions to pixels
            h, w = results["img_shape"]
            results["gt_bboxes"] = (results["gt_bboxes"] * np.array([w, h, w, h])).astype(np.float32)
            if "proposals" in results and results["proposals"] is not None:
                results["proposals"] = (results["proposals"] * np.array([w, h, w, h])).astype(np.float32)
        return results


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


class SmallInputResNet:
    """A width knob for mmaction2's 2D ResNet (TSN) and ResNetTSM, which hard-code 64 channels at
    the stem and 64 x 2^i in stage i (``ResNet.__init__``, ``_make_stem_layer``).

    ``base_channels``: channels of the stem and of stage 1 (doubling per stage, as the zoo's);
    at 32 px frames a half-width ResNet-18 costs a quarter of the CPU per step, so the same CPU
    budget buys four times the optimizer steps. The stem keeps the zoo's 7x7 stride-2
    convolution and stride-2 max-pool.

    The residual stages are mmaction2's own (``make_res_layer``), rebuilt at the requested width
    after the parent's constructor; ResNetTSM's temporal shift (``init_structure``) is applied
    again to the rebuilt stages.
    """

    def __init__(self, *args, base_channels: int = 64, **kwargs):
        self._base = base_channels
        super().__init__(*args, **kwargs)
        if base_channels != 64:
            self._rebuild()

    def _make_stem_layer(self) -> None:
        """The parent's stem (7x7 stride-2 convolution, stride-2 max-pool) at the requested width,
        built once (building it twice would draw the initial weights from another random state)."""
        from mmcv.cnn import ConvModule
        from torch import nn
        self.conv1 = ConvModule(self.in_channels, self._base, kernel_size=7, stride=2, padding=3, bias=False,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def _rebuild(self) -> None:
        from mmaction.models.backbones.resnet import make_res_layer
        self.inplanes = self._base
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = self._base * 2 ** i
            layer = make_res_layer(self.block, self.inplanes, planes, num_blocks, stride=self.strides[i],
                                   dilation=self.dilations[i], style=self.style, conv_cfg=self.conv_cfg,
                                   norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, with_cp=self.with_cp)
            self.inplanes = planes * self.block.expansion
            setattr(self, self.res_layers[i], layer)
        self.feat_dim = self.inplanes
        if hasattr(self, "init_structure"):   # ResNetTSM: shift the rebuilt blocks
            self.init_structure()


def _register_small_input():
    from mmaction.models.backbones import ResNet, ResNetTSM
    for base in (ResNet, ResNetTSM):
        name = f"SmallInput{base.__name__}"
        MODELS.register_module(name=name, module=type(name, (SmallInputResNet, base), {
            "__doc__": f"mmaction2's {base.__name__} with petaction's SmallInputResNet knobs (see there)."}))


_register_small_input()
