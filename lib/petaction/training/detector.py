"""The pet detector for raw frames: what finds the box that every crop-based model needs.

    papermill notebooks/detector.ipynb out.ipynb -p study default
    petaction.training.detector.run(study="default", profile="quick")

mmdet's two-stage Faster R-CNN (its ``faster-rcnn_r50_fpn`` base config; the quick profile
swaps in ResNet-18 and a thin FPN), trained from scratch on the dataset's frame boxes (one
class, "pet") from the whole-frame cache (``detection.full_frames``: the same clips and
split as the study's data). Box AP on the test split from mmdet's ``CocoMetric``; CPU latency
of one frame at batch 1, timed as cost.py times the recognisers (network only: the frame
already decoded and resized).

Writes ``<target dir>/detector/``: coco_{train,val,test}.json (the frames and boxes used),
config.py, the best checkpoint and metrics.json (format: METRICS_DOC below).
"""
from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

from mmengine.config import Config

from ..models import mmconfig
from ..core import atomic, lock, paths
from ..core.dicts import deep_merge

METRICS_DOC = """metrics.json: {detector, profile, img_size, box_ap, box_ap50, box_ap75 (COCO box AP on
the test split, 0..1, of the selected checkpoint), n_images {train, val, test}, best_checkpoint,
selection {metric, split, epochs, best_epoch, val_box_ap, val_curve [{epoch, box_ap, box_ap50,
box_ap75} per epoch, validation]}, train_time_s, wall_time_s, cpu_latency_ms, cpu_latency_p90_ms
(one frame, batch 1, after warm-up), repeats, warmup, torch_threads, params_m, data_dir}"""

BASE_CONFIG = "_base_/models/faster-rcnn_r50_fpn.py"
# Settings per profile. Quick: 48 px frames (the fast_rcnn cache), one frame per clip. `epochs` is a
# budget (CPU minutes in the default study); which epoch's weights are kept and tested is chosen on
# the validation frames' box AP (SELECT_METRIC, CheckpointHook's save_best), never on test.
PROFILES = {
    # tiny: every box kept for scoring (score_thr 0): one epoch from scratch can score all its boxes under
    # mmdet's 0.05 on some draws of the split, leaving CocoMetric nothing to rank and no checkpoint to keep
    "tiny": dict(img_size=32, depth=18, fpn_channels=32, fc_channels=64, epochs=1, frames_per_clip=1,
                 batch_size=4, optimizer="AdamW", lr=0.001, weight_decay=0.01, num_workers=0, score_thr=0.0),
    "quick": dict(img_size=48, depth=18, fpn_channels=64, fc_channels=256, epochs=3, frames_per_clip=1,
                  batch_size=8, optimizer="AdamW", lr=0.001, weight_decay=0.01, num_workers=2, score_thr=0.05),
    # mmdet's faster-rcnn_r50_fpn_1x schedule (12 epochs, SGD lr 0.02 at batch 16), from scratch
    "full": dict(img_size=256, depth=50, fpn_channels=256, fc_channels=1024, epochs=12, frames_per_clip=8,
                 batch_size=8, optimizer="SGD", lr=0.01, weight_decay=0.0001, num_workers=8, score_thr=0.05),
}
SELECT_METRIC = "coco/bbox_mAP"        # on the validation split: the checkpoint kept and tested
# LocalVisBackend: val_curve reads its scalars.json back; TensorBoard beside the recognisers' runs
VIS_BACKENDS = ["LocalVisBackend", "TensorboardVisBackend"]
LATENCY = dict(warmup=3, repeats=15)   # as cost.measure times the models (and for cost.MIN_TIME_S at least)


def settings(profile: str = "quick", **over) -> dict:
    if profile not in PROFILES:
        raise ValueError(f"unknown detector profile {profile!r}; valid: {', '.join(PROFILES)}")
    unknown = set(over) - set(PROFILES[profile])
    if unknown:
        raise ValueError(f"unknown detector setting(s) {sorted(unknown)}; valid: {', '.join(PROFILES[profile])}")
    return {**PROFILES[profile], **over, "profile": profile}


# ---- data: COCO files from the whole-frame cache ----

def frame_picks(n_frames: int, k: int) -> list[int]:
    """k evenly spaced frame indices (0-based) of a clip, the middle one when k is 1."""
    k = min(k, n_frames)
    return sorted({int((i + 0.5) * n_frames / k) for i in range(k)})   # the centre of each of k equal parts


def coco_split(data: Path, split: str, frames_per_clip: int) -> dict:
    """A COCO detection file for a split: some frames of each clip, its pet box as the one object."""
    from . import detection, runfolder
    images, anns = [], []
    for clip, n, _label in runfolder.read_split(data, split):
        boxes = detection.read_boxes(data / "frames" / clip)
        h, w = _frame_shape(data / "frames" / clip / "img_00001.jpg")
        for i in frame_picks(n, frames_per_clip):
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue   # a box clipped away at the border: nothing to detect
            images.append(dict(id=len(images) + 1, file_name=f"frames/{clip}/" + mmconfig.FILENAME_TMPL.format(i + 1),
                               width=w, height=h))
            anns.append(dict(id=len(anns) + 1, image_id=len(images), category_id=1, iscrowd=0,
                             bbox=[x0, y0, x1 - x0, y1 - y0], area=(x1 - x0) * (y1 - y0)))
    return dict(images=images, annotations=anns, categories=[dict(id=1, name="pet")])


def _frame_shape(path: Path) -> tuple[int, int]:
    from ..data import crop
    img = crop.read_image(path)
    if img is None:
        raise FileNotFoundError(f"cannot read {path}")
    return img.shape[:2]


# ---- config ----

def model_dict(s: dict) -> dict:
    """mmdet's Faster R-CNN R50-FPN, from scratch, one class; lighter parts for small frames."""
    spec = importlib.util.find_spec("mmdet")
    base = Path(spec.submodule_search_locations[0]) / ".mim" / "configs" / BASE_CONFIG
    model = Config.fromfile(str(base)).model.to_dict()
    c = s["fpn_channels"]
    widths = [64, 128, 256, 512] if s["depth"] in (18, 34) else [256, 512, 1024, 2048]
    over = dict(
        # from scratch: nothing to keep frozen, and BatchNorm must learn its statistics
        backbone=dict(depth=s["depth"], init_cfg=None, frozen_stages=-1, norm_eval=False),
        neck=dict(in_channels=widths, out_channels=c),
        rpn_head=dict(in_channels=c, feat_channels=c,
                      anchor_generator=dict(scales=[8] if s["img_size"] >= 200 else [4])),   # small frames: small anchors
        roi_head=dict(bbox_roi_extractor=dict(out_channels=c),
                      bbox_head=dict(in_channels=c, fc_out_channels=s["fc_channels"], num_classes=1)))
    if s["img_size"] < 200:   # one pet in a small frame: far fewer proposals than COCO's
        over["train_cfg"] = dict(rpn_proposal=dict(nms_pre=500, max_per_img=200), rcnn=dict(sampler=dict(num=128)))
        over["test_cfg"] = dict(rpn=dict(nms_pre=300, max_per_img=100))
    over.setdefault("test_cfg", {})["rcnn"] = dict(score_thr=s["score_thr"])   # mmdet's own: 0.05
    return deep_merge(model, over)


def pipelines(s: dict) -> tuple[list, list]:
    scale = (s["img_size"] * 4, s["img_size"])   # short side img_size (the cache's), any aspect
    load = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
            dict(type="Resize", scale=scale, keep_ratio=True)]
    meta = ("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")
    train = [*load, dict(type="RandomFlip", prob=0.5), dict(type="PackDetInputs")]
    test = [*load, dict(type="PackDetInputs", meta_keys=meta)]
    return train, test


def loader(s: dict, data: Path, ann: Path, pipeline: list, train: bool) -> dict:
    workers = s["num_workers"]
    return dict(
        batch_size=s["batch_size"] if train else 1, num_workers=workers, persistent_workers=workers > 0,
        sampler=dict(type="DefaultSampler", shuffle=train), batch_sampler=None,
        dataset=dict(type="CocoDataset", data_root=str(data), ann_file=str(ann), data_prefix=dict(img=""),
                     metainfo=dict(classes=("pet",)), filter_cfg=dict(filter_empty_gt=train),
                     pipeline=pipeline, test_mode=not train))


def build(s: dict, data: Path, out: Path, seed: int = 0) -> Config:
    train_pipe, test_pipe = pipelines(s)
    optimizer = dict(type=s["optimizer"], lr=s["lr"], weight_decay=s["weight_decay"])
    if s["optimizer"] == "SGD":
        optimizer["momentum"] = 0.9
    coco = {k: out / f"coco_{k}.json" for k in ("train", "val", "test")}
    sched = dict(epochs=s["epochs"], warmup_epochs=1, lr_decay_from=0.5)
    cfg = dict(
        default_scope="mmdet",
        custom_imports=dict(imports=["petaction.mmsetup"], allow_failed_imports=False),
        model=model_dict(s),
        train_dataloader=loader(s, data, coco["train"], train_pipe, True),
        val_dataloader=loader(s, data, coco["val"], test_pipe, False),
        test_dataloader=loader(s, data, coco["test"], test_pipe, False),
        val_evaluator=dict(type="CocoMetric", ann_file=str(coco["val"]), metric="bbox"),
        test_evaluator=dict(type="CocoMetric", ann_file=str(coco["test"]), metric="bbox"),
        train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=s["epochs"], val_interval=1),
        val_cfg=dict(type="ValLoop"), test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(type="OptimWrapper", optimizer=optimizer, clip_grad=dict(max_norm=35, norm_type=2)),
        param_scheduler=mmconfig.schedule(sched),   # warm-up, the peak held for half, cosine: as the recognisers
        default_hooks=dict(
            timer=dict(type="IterTimerHook"), logger=dict(type="LoggerHook", interval=20),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(type="CheckpointHook", interval=1, save_best=SELECT_METRIC, rule="greater",
                            max_keep_ckpts=1, save_last=True),
            sampler_seed=dict(type="DistSamplerSeedHook")),
        custom_hooks=[dict(type="mmaction.TrustCheckpointsHook")],
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
                     dist_cfg=dict(backend="nccl")),
        log_processor=dict(type="LogProcessor", window_size=20, by_epoch=True),
        log_level="INFO", load_from=None, resume=False,
        randomness=dict(seed=seed, deterministic=False, diff_rank_seed=False),
        work_dir=str(out),
        visualizer=dict(type="Visualizer", vis_backends=mmconfig.vis_backends(VIS_BACKENDS, out, out.parent)),
    )
    return Config(cfg)


# ---- latency ----

def latency(model, dataset) -> dict:
    """CPU time of one frame at batch 1 through the detector (eval mode): the test set's first
    frame through the test pipeline, timed as cost.py times the recognisers."""
    import torch
    from ..core import timing
    model = model.eval()
    item = dataset[0]
    batch = model.data_preprocessor(dict(inputs=[item["inputs"]], data_samples=[item["data_samples"]]), False)
    with torch.no_grad():
        times = timing.time_calls(lambda: model(batch["inputs"], batch["data_samples"], mode="predict"),
                                min_time_s=timing.MIN_TIME_S, **LATENCY)
    stats = timing.latency_stats(times)
    return {"cpu_latency_ms": stats["median_ms"], "cpu_latency_p90_ms": stats["p90_ms"], "repeats": stats["repeats"],
            "warmup": LATENCY["warmup"], "torch_threads": torch.get_num_threads(),
            "params_m": sum(t.numel() for t in model.parameters()) / 1e6}


def measure(det_dir: Path) -> dict:
    """The trained detector's latency again, now (evaluate can time it beside the recognisers
    on the same machine state): built from det_dir's config.py and best checkpoint."""
    from mmdet.registry import DATASETS, MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from ..models import checkpoints
    ckpt = det_dir / json.loads((det_dir / "metrics.json").read_text())["best_checkpoint"]
    if not checkpoints.is_trusted(ckpt):   # the trust rule's loader would load it weights-only and fail
        raise ValueError(f"{ckpt} is not a checkpoint this study's detector run recorded; run the detector again")
    init_default_scope("mmdet")
    cfg = Config.fromfile(str(det_dir / "config.py"), import_custom_modules=False)   # setup() has run
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(ckpt), map_location="cpu")
    return latency(model, DATASETS.build(cfg.test_dataloader.dataset))


# ---- selection on validation ----

def val_curve(scalars: Path) -> list[dict]:
    """The validation box AP after each epoch, from the scalars mmengine's LocalVisBackend wrote
    (<log_dir>/vis_data/scalars.json: one JSON line per logged step; validation lines hold the
    COCO keys, their step is the epoch)."""
    curve = []
    for line in Path(scalars).read_text().splitlines():
        row = json.loads(line)
        if SELECT_METRIC in row:
            curve.append({"epoch": int(row["step"]), "box_ap": float(row[SELECT_METRIC]),
                          "box_ap50": float(row.get(SELECT_METRIC + "_50", "nan")),
                          "box_ap75": float(row.get(SELECT_METRIC + "_75", "nan"))})
    return curve


def selection(curve: list[dict], best: Path, epochs: int) -> dict:
    """How the tested checkpoint was chosen: the epoch CheckpointHook kept (its file name) must be
    the first epoch of highest validation box AP (save_best keeps a strictly greater score only)."""
    from .runfolder import checkpoint_epoch
    best_epoch = checkpoint_epoch(best)
    if not curve:
        raise RuntimeError("no validation box AP was logged: the checkpoint cannot be said to be chosen on validation")
    top = max(curve, key=lambda c: c["box_ap"])   # max() keeps the first of equal scores, as save_best
    if top["epoch"] != best_epoch:
        raise RuntimeError(f"the kept checkpoint {Path(best).name} is not the epoch of best validation box AP "
                           f"(epoch {top['epoch']}, AP {top['box_ap']:.3f})")
    return {"metric": SELECT_METRIC, "split": "val", "epochs": int(epochs), "best_epoch": best_epoch,
            "val_box_ap": top["box_ap"], "val_curve": curve}


# ---- run ----

def out_dir(study: str, target: str = "action", results_dir=None) -> Path:
    return paths.target_dir(study, target, results_dir) / "detector"


def run(study: str = "default", target: str = "action", profile: str = "quick", results_dir=None,
        seed: int = 0, **over) -> dict:
    """Train the detector on the study's whole frames, keep the epoch of best validation box AP,
    test it once, time it (under the results folder's lock)."""
    with lock.hold(study, results_dir, what=f"detector of {study}"):
        return run_locked(study, target, profile, results_dir, seed, **over)


def run_locked(study: str, target: str, profile: str, results_dir, seed: int, **over) -> dict:
    from . import detection, runfolder
    from .runner import train_then_test
    t0 = time.time()
    s = settings(profile, **over)
    data = detection.full_frames({"study": study, "target": target, "results_dir": results_dir or "",
                                  "img_size": s["img_size"]})
    out = out_dir(study, target, results_dir)
    out.mkdir(parents=True, exist_ok=True)
    runfolder.clear_checkpoints(out)
    n_images = {}
    for split in ("train", "val", "test"):
        coco = coco_split(data, split, s["frames_per_clip"])
        n_images[split] = len(coco["images"])
        atomic.write_json(out / f"coco_{split}.json", coco)
    cfg = build(s, data, out, seed)
    runfolder.start_run(out, cfg)
    runner, best, test, train_s = train_then_test(cfg, out, t0)   # best on val, tested once
    chosen = selection(val_curve(Path(runner.log_dir) / "vis_data" / "scalars.json"), best, s["epochs"])
    metrics = {"detector": f"faster_rcnn_r{s['depth']}_fpn", "profile": profile, "img_size": s["img_size"],
               "box_ap": float(test["coco/bbox_mAP"]), "box_ap50": float(test["coco/bbox_mAP_50"]),
               "box_ap75": float(test["coco/bbox_mAP_75"]), "n_images": n_images,
               "best_checkpoint": best.name, "selection": chosen, "train_time_s": round(train_s, 1),
               **latency(runner.model, runner.test_dataloader.dataset),
               "wall_time_s": round(time.time() - t0, 1), "data_dir": str(data), "settings": s}
    atomic.write_json(out / "metrics.json", metrics, indent=1)
    return metrics


class DetectorLocaliser:
    """The study's trained pet detector (detector.py, ``<target dir>/detector/``): the
    top-scoring box of each frame. A frame where it finds nothing above ``min_score`` keeps
    the previous frame's box (the pet rarely vanishes between frames); before any box, the
    whole frame."""

    def __init__(self, det_dir: Path, min_score: float = 0.3):
        from mmdet.apis import init_detector
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope
        det_dir = Path(det_dir)
        m = json.loads((det_dir / "metrics.json").read_text())
        self.model = init_detector(str(det_dir / "config.py"), str(det_dir / m["best_checkpoint"]), device="cpu")
        init_default_scope("mmdet")
        # the run's test pipeline, reading an array and no annotations
        steps = [dict(type="mmdet.LoadImageFromNDArray")] + [
            {**t, "type": t["type"] if "." in t["type"] else f"mmdet.{t['type']}"}
            for t in self.model.cfg.test_dataloader.dataset.pipeline
            if t["type"] not in ("LoadImageFromFile", "LoadAnnotations")]
        self.pipeline = Compose(steps)
        init_default_scope("mmaction")
        self.min_score, self.last = min_score, None
        self.name = f"pet detector {m['detector']} (test box AP {m['box_ap']:.2f}, {det_dir})"

    def __call__(self, frame):
        """``frame``: a video.Frame (its ``image``, BGR)."""
        from mmdet.apis import inference_detector
        inst = inference_detector(self.model, frame.image, test_pipeline=self.pipeline).pred_instances
        if len(inst.scores) and float(inst.scores.max()) >= self.min_score:
            x0, y0, x1, y1 = inst.bboxes[int(inst.scores.argmax())].tolist()
            self.last = (x0, y0, x1 - x0, y1 - y0)
        return self.last
