"""fast_rcnn: mmaction2's spatio-temporal detector, recognising the behaviour in the pet's box.

mmdet's ``FastRCNN`` with a SlowOnly ResNet backbone and mmaction2's ``AVARoIHead``, as in
mmaction2's AVA config (``ZOO_CONFIG``): the backbone sees the whole frames of a clip,
RoIAlign pools its features inside the labelled pet box at the clip's key frame (the middle
sampled frame), and the box head gives one behaviour label per box (softmax, not AVA's
multi-label sigmoid: a clip has one behaviour). The box's class scores are the clip's scores,
so the run writes the same ``test_scores.npz`` and ``metrics.json`` as every recogniser and
appears in every table; ``metrics.json`` adds the box-level metric (``test.box_map``).

Whole frames come from a second, uncropped cache beside the study's data,
``<target dir>/data_full<img_size>/`` (prepare with ``crop: false``; same clips, same split),
written on first use from the study's own prepare parameters. A study prepared with
``crop: false`` already has whole frames in ``data/`` and uses them. With ``resize`` set the
cache has short side ``resize`` (``data_full<resize>``): training cuts a ``BoxSafeCrop`` out of
it (scale and position jitter that keeps the pet), testing resizes the whole frame to img_size.

What this module registers (petaction.setup() imports it): ``PetBoxRawframeDataset``
(rawframes plus each clip's ``boxes.json``), ``KeyFrameBox`` (the key frame's box as ground
truth and RoI), ``BoxSafeCrop`` and ``ClipBoxMetric`` (clip top-k from the box's scores, box
mAP, and the per-clip scores in runfolder.save_scores's format).
"""
from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmengine.evaluator import BaseMetric

import mmcv
from mmaction.datasets import RawframeDataset
from mmaction.datasets.transforms import RandomCrop, Resize
from mmaction.registry import DATASETS, METRICS, TRANSFORMS
from mmcv.transforms import BaseTransform

from ..core import paths
from ..models import mmconfig
from . import runfolder
from .runner import train_score_both

ZOO_CONFIG = "detection/slowonly/slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py"


def is_fast_rcnn(p: dict) -> bool:
    return (p.get("model_cfg") or {}).get("type") == "FastRCNN"


# ---- data ----

def read_boxes(frame_dir: str | Path) -> np.ndarray:
    """A clip's boxes.json as an (n_frames, 4) float32 array of x0, y0, x1, y1 (cached pixels)."""
    rows = json.loads((Path(frame_dir) / "boxes.json").read_text())
    if not rows or any(r[1] is None for r in rows):
        raise ValueError(f"{frame_dir}/boxes.json lacks a box for some frame: prepare again")
    xywh = np.array([r[1:5] for r in rows], dtype=np.float32)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)


@DATASETS.register_module()
class PetBoxRawframeDataset(RawframeDataset):
    """mmaction2's RawframeDataset plus each clip's per-frame pet boxes and the class count."""

    def __init__(self, *args, n_classes: int, **kwargs):
        self.n_classes = n_classes
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        data = super().load_data_list()
        for d in data:
            d["boxes"] = read_boxes(d["frame_dir"])
            if len(d["boxes"]) != d["total_frames"]:
                raise ValueError(f"{d['frame_dir']}: {len(d['boxes'])} boxes for {d['total_frames']} frames")
        return data

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info["n_classes"] = self.n_classes
        return info


@TRANSFORMS.register_module()
class KeyFrameBox(BaseTransform):
    """The pet box at the clip's key frame (the middle sampled frame) as the one ground-truth
    box (label one-hot, as AVARoIHead expects) and the one RoI (``proposals``). Placed after
    SampleFrames and before any Resize/Flip, which then move the box with the pixels."""

    def transform(self, results: dict) -> dict:
        inds = np.asarray(results["frame_inds"]).reshape(-1)
        key = int(inds[len(inds) // 2]) - results["start_index"]
        box = results.pop("boxes")[key][None].copy()
        onehot = np.zeros((1, results["n_classes"]), np.float32)
        onehot[0, results["label"]] = 1.0
        results.update(gt_bboxes=box, proposals=box.copy(), gt_labels=onehot)
        return results


@TRANSFORMS.register_module()
class BoxSafeCrop(BaseTransform):
    """Scale and position jitter that keeps the pet: a random crop with the frame's aspect ratio
    and a short side drawn from [size, the frame's], placed at random among the positions that
    hold the whole key box, then resized to what the test pipeline makes of the whole frame
    (short side size), the boxes moved and scaled with it. Why not the AVA zoo's RandomRescale +
    RandomCrop: its square crop of a 4:3 frame loses a pet near either side, and at the quick
    profile's size fast_rcnn learned far slower with it (recipe_search.json, fast_rcnn_zoojitter).
    There this crop, too, ended lower on validation than no jitter (fast_rcnn_boxsafe), so the
    quick profile uses none; the full profile does, as the zoo does."""

    def __init__(self, size: int):
        self.size = size

    @staticmethod
    def _start(lo: float, hi: float, crop: int, full: int) -> int:
        """A random start in [0, full - crop] whose window holds [lo, hi] (the last pixel is
        crop - 1: RandomCrop._box_crop's clip); the one centring it when it is wider."""
        a, b = max(0, int(np.ceil(hi)) + 1 - crop), min(int(lo), full - crop)
        if a > b:
            return int(np.clip(round((lo + hi - crop) / 2), 0, full - crop))
        return int(np.random.randint(a, b + 1))

    def transform(self, results: dict) -> dict:
        h, w = results["img_shape"]
        out_w, out_h = mmcv.rescale_size((w, h), (np.inf, self.size))
        short = min(h, w)
        frac = np.random.randint(min(self.size, short), short + 1) / short
        ch, cw = min(h, round(h * frac)), min(w, round(w * frac))
        x0, y0, x1, y1 = results["gt_bboxes"][0]
        left, top = self._start(x0, x1, cw, w), self._start(y0, y1, ch, h)
        crop = np.array([left, top, left + cw, top + ch])
        results["imgs"] = [img[top:top + ch, left:left + cw] for img in results["imgs"]]
        results["img_shape"] = (ch, cw)
        results["gt_bboxes"] = RandomCrop._box_crop(results["gt_bboxes"], crop)
        results["proposals"] = RandomCrop._box_crop(results["proposals"], crop)
        return Resize(scale=(out_w, out_h), keep_ratio=False)(results)


@METRICS.register_module()
class ClipBoxMetric(BaseMetric):
    """Clip top-k and mean class accuracy from the key box's class scores (one box per clip),
    the box-level mean AP over classes, and optionally the per-clip scores as the pickle
    runfolder.save_scores reads (``pred_score``, ``gt_label``, in test-list order)."""
    default_prefix = "acc"

    def __init__(self, topk=(1, 5), out_file: str = "", **kwargs):
        super().__init__(**kwargs)
        self.topk, self.out_file = tuple(topk), out_file

    def process(self, data_batch, data_samples) -> None:
        for s in data_samples:
            scores = np.asarray(s["pred_instances"]["scores"].cpu(), dtype=np.float32)
            if scores.shape[0] != 1:
                raise RuntimeError(f"expected one box per clip, got {scores.shape[0]}")
            self.results.append({"pred_score": scores[0], "gt_label": int(np.asarray(s["gt_label"].cpu()).reshape(-1)[0])})

    def compute_metrics(self, results: list) -> dict:
        from sklearn.metrics import average_precision_score

        from ..core import metrics
        scores = np.stack([r["pred_score"] for r in results])
        labels = np.array([r["gt_label"] for r in results])
        out = {f"top{k}": metrics.topk(scores, labels, k) for k in self.topk}
        out["mean1"] = metrics.mean_class_accuracy(labels, scores.argmax(1))
        # box-level mean AP over the classes present (one labelled box per clip: no IoU matching)
        out["box_map"] = float(np.mean([average_precision_score(labels == c, scores[:, c]) for c in np.unique(labels)]))
        if self.out_file:
            with open(self.out_file, "wb") as f:
                pickle.dump(results, f)
        return out


def cache_side(p: dict) -> int:
    """Short side of the whole-frame cache: resize when training cuts BoxSafeCrops out of it (a
    crop is then only ever shrunk to img_size, never enlarged and blurred), else img_size."""
    return p.get("resize") or p["img_size"]


def full_frames(p: dict) -> Path:
    """The whole-frame cache for this run: the study's own data when it was prepared with
    crop: false, else ``data_full<cache_side>`` beside it, prepared on first use with the
    study's prepare parameters (crop off, short side cache_side) and checked to hold the
    same test clips, so fast_rcnn pairs clip for clip with every other model."""
    from ..data import prepare
    data = runfolder.data_dir(p["study"], p["target"], p["results_dir"] or None, p.get("fold", 0), p.get("trial", 0))
    info = json.loads((data / "prepare.json").read_text())
    if not info["params"]["crop"]:
        return data
    side = cache_side(p)
    want = {**info["params"], "crop": False, "short_side": side}
    folder = f"data_full{side}"
    full = data.parent / folder
    done = full / "prepare.json"
    if not (done.is_file() and json.loads(done.read_text())["params"] == want):
        prepare.prepare(p["study"], p["results_dir"] or None, folder=folder, **want)
    for split in ("train", "val", "test"):
        f = paths.split_file(split, p.get("fold", 0), p.get("trial", 0))
        if (full / f).read_text() != (data / f).read_text():
            raise RuntimeError(f"{full}/{f} differs from {data}/{f}: "
                               "the whole-frame cache must hold the same clips; remove it and re-run")
    return full


# ---- config ----

def model_dict(p: dict, n: int) -> dict:
    """The AVA SlowOnly Fast R-CNN of mmaction2's zoo config, layered with the model file."""
    from ..core.dicts import deep_merge, strip_delete
    model = Config.fromfile(str(mmconfig.mm_configs_dir() / ZOO_CONFIG)).model.to_dict()
    model = deep_merge(model, p["model_cfg"])
    if p["lite"]:
        model = deep_merge(model, p["model_cfg_lite"])
    model = strip_delete(model)
    model["init_cfg"] = None   # the zoo's Kinetics checkpoint cannot be downloaded: from scratch
    head = model["roi_head"]["bbox_head"]
    head.update(num_classes=n, topk=tuple(k for k in (3, 5) if k < n) or None)
    return model


def pipelines(p: dict) -> tuple[list, list]:
    """Dense clips of whole frames, the key box moved with the pixels. Tested on the whole frame
    at short side img_size. Trained on it too when resize is 0; else on a BoxSafeCrop of the
    frame cached at short side resize: the pet moves and changes scale from clip to clip, where
    the whole frame alone lets the model learn each training scene by heart."""
    sample = dict(type="SampleFrames", clip_len=p["clip_len"], frame_interval=p["frame_interval"], num_clips=1)
    head = [dict(type="RawFrameDecode"), dict(type="KeyFrameBox")]
    whole = [dict(type="Resize", scale=(-1, p["img_size"]))]
    jitter = [dict(type="BoxSafeCrop", size=p["img_size"])] if p.get("resize") else whole
    tail = [dict(type="FormatShape", input_format="NCTHW", collapse=True), dict(type="PackActionInputs")]
    train = [sample, *head, *jitter, dict(type="Flip", flip_ratio=0.5), *tail]
    test = [dict(sample, test_mode=True), *head, *whole, *tail]
    return train, test


def loader(p: dict, data: Path, split: str, pipeline: list, n: int, train: bool) -> dict:
    workers = p["num_workers"]
    return dict(
        batch_size=p["batch_size"] if train else 1, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type="DefaultSampler", shuffle=train),
        dataset=dict(type="PetBoxRawframeDataset", ann_file=str(data / paths.split_file(split, p.get("fold", 0), p.get("trial", 0))), n_classes=n,
                     data_prefix=dict(img=str(data / "frames")), filename_tmpl=mmconfig.FILENAME_TMPL,
                     pipeline=pipeline, test_mode=not train))


def build(p: dict, data: Path, run_dir: Path, class_names: list[str]) -> Config:
    if p["class_balance"] != "none":
        raise ValueError(f"fast_rcnn takes class_balance: none (got {p['class_balance']!r}): "
                         "mmaction2's box head has no class weights")
    n = len(class_names)
    train_pipe, test_pipe = pipelines(p)
    topk = mmconfig.topk(n)
    cfg = Config(dict(
        mmconfig.training(p, run_dir, class_names, imports=("petaction.mmsetup",)),
        model=model_dict(p, n),
        train_dataloader=loader(p, data, "train", train_pipe, n, True),
        val_dataloader=loader(p, data, "val", test_pipe, n, False),
        test_dataloader=loader(p, data, "test", test_pipe, n, False),
        val_evaluator=dict(type="ClipBoxMetric", topk=topk),
        test_evaluator=dict(type="ClipBoxMetric", topk=topk, out_file=str(run_dir / "test_results.pkl")),
    ))
    cfg.custom_hooks.append(dict(type="ValEpochsHook"))   # val_epochs.npz: the checkpoint rule's evidence
    if p["channels_last"]:   # one process here (no launch.adapt): the hook converts the weights
        cfg.custom_hooks.append(dict(type="ChannelsLastHook"))
    return cfg


# ---- run ----

def run(p: dict) -> dict:
    """Train fast_rcnn on whole frames, select on val, test once: train.run's outputs."""

    t0 = time.time()
    data = full_frames(p)
    class_names = json.loads((data / "classes.json").read_text())["classes"]
    out = paths.run_dir(p["study"], p["model"], p["seed"], p["target"], p["results_dir"] or None, p["fold"], p["trial"])
    out.mkdir(parents=True, exist_ok=True)
    runfolder.clear_checkpoints(out)
    cfg = build(p, data, out, class_names)
    runfolder.start_run(out, cfg, p)
    rule = p.get("checkpoint", "best")
    dump = lambda split, source="": dict(cfg.val_evaluator, out_file=str(out / f"{split}_results{source}.pkl"))  # noqa: E731
    runner, best, scored, train_s = train_score_both(cfg, out, t0, dump)   # as train.fit
    rule_scores = runfolder.save_rule_scores(out, data, class_names, p)
    return runfolder.write_metrics(out, p, best, scored[rule]["test"], rule_scores[rule]["test"], class_names,
                                   train_s, t0, val=scored[rule]["val"], data_dir=str(data), roi="labelled pet box at the key frame",
                                   **runfolder.rule_metrics(rule_scores, rule, best, runner))


# ---- cost (cost.py times forward.BoxForward on whole frames of this shape) ----

def frame_shape(run: Path) -> tuple[int, int]:
    """(height, width) of the whole frames the run is tested on: its first test clip's frame
    with the short side resized to img_size, as the test pipeline's Resize does."""
    from ..data import crop
    data = Path(json.loads((run / "metrics.json").read_text())["data_dir"])
    clip = (data / "test.txt").read_text().split()[0]
    h, w = crop.read_image(data / "frames" / clip / mmconfig.FILENAME_TMPL.format(1)).shape[:2]
    side = json.loads((run / "params.json").read_text())["img_size"]
    new_w, new_h = mmcv.rescale_size((w, h), (np.inf, side))   # what Resize(scale=(-1, side)) computes
    return new_h, new_w
