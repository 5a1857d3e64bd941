"""Accuracy of the deployed pipeline: the test clips cut around the study's pet detector's boxes
instead of the labelled ones, scored by a trained recogniser's own test step.

    boxes(det_dir, clips)            the detector's box on every frame of the test clips, as infer's
                                     DetectorLocaliser gives them (cached in det_dir/boxes.json)
    detected_cache(root, det_dir)    <target dir>/data_detected/: the test clips cut as prepare cuts
                                     them (square crop, margin, short side), around those boxes
    score(run, data)                 the run's scores on a cache's test list (its test pipeline and
                                     mmaction2's test_step, as the run's own testing)
    compare(model, seed, labelled, detected, cache)   e2e.csv's row: top-1 on each, paired

Only the test split is cut (evaluate.evaluate calls these for the recommended model, or the
models it is given); the labelled-box accuracy of every table stays what it is, and the report
says which pipeline each figure describes. fast_rcnn (whole frames and a key-frame RoI) and
k-fold studies are not covered.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import stats
from ..core import atomic
from ..data import aihub, crop
from ..models import mmconfig
from ..training.runfolder import read_split

COLUMNS = ["model", "seed", "n_clips", "top1_labelled", "top1_detector", "diff", "diff_ci_low", "diff_ci_high",
           "labelled_only", "detector_only", "test", "p_value", "mean_iou", "frames_iou50", "frames_no_box",
           "detector"]
BOXES = "boxes.json"          # in the detector's folder: its box per test frame, keyed by its checkpoint
CACHE = "data_detected"       # beside the target's data/: the test clips cut around the detector's boxes


def test_clips(data: Path) -> list[dict]:
    """The prepared test clips with their source frame folder and label file (clips.csv)."""
    rows = pd.read_csv(data / "clips.csv").set_index("id")
    return [{"id": clip, "frames": frames, "label": label, "source": rows.loc[clip, "source"],
             "label_path": rows.loc[clip, "label_path"]} for clip, frames, label in read_split(data, "test")]


def source_frames(source: str):
    """A clip's readable source frames in prepare's order: (frame number, BGR image)."""
    frames, _ = aihub.list_frames(Path(source))
    for number, _ms, path in frames:
        img = crop.read_image(path)
        if img is not None:   # prepare skips an unreadable frame too
            yield number, img


def detector_key(det_dir: Path) -> str:
    from ..models import checkpoints
    m = json.loads((det_dir / "metrics.json").read_text())
    return f"{m['best_checkpoint']}:{checkpoints.sha256(det_dir / m['best_checkpoint'])}"


def boxes(det_dir: Path, clips: list[dict]) -> tuple[str, dict[str, list]]:
    """(the detector's name, {clip: [[frame number, x, y, w, h] or [frame number] where no box
    yet]}): the detector on each frame with infer's semantics (the top box above its score
    threshold; a frame without one keeps the previous frame's box). Cached per detector
    checkpoint in det_dir/boxes.json, so the targets of a study detect each clip once."""
    from ..data import video
    from ..training.detector import DetectorLocaliser
    det_dir = Path(det_dir)
    key, path = detector_key(det_dir), det_dir / BOXES
    cached = atomic.read_json(path) or {}
    known = cached.get("clips", {}) if cached.get("key") == key else {}
    todo = [c for c in clips if c["id"] not in known]
    if todo:
        loc = DetectorLocaliser(det_dir)
        for c in todo:
            loc.last, rows = None, []   # each clip starts without a box, as a new stream would
            for number, img in source_frames(c["source"]):
                b = loc(video.Frame(number, 0.0, img))
                rows.append([number] + ([float(v) for v in b] if b is not None else []))
            known[c["id"]] = rows
        cached = {"key": key, "detector": loc.name, "clips": known}
        atomic.write_json(path, cached)
    return cached["detector"], {c["id"]: known[c["id"]] for c in clips}


def iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def cut_clip(c: dict, found: list, out: Path, margin: float, short_side: int) -> dict:
    """One test clip's frames cut around the detector's boxes as prepare cuts them around the
    labelled ones; the whole frame (short side resized, as infer does) before any box. Returns
    the clip's box quality against its labelled boxes."""
    labelled = aihub.boxes_by_frame(aihub.load_label(Path(c["label_path"]))["annotations"])
    dest = out / "frames" / c["id"]
    dest.mkdir(parents=True, exist_ok=True)
    ious, no_box, kept = [], 0, 0
    for (number, img), row in zip(source_frames(c["source"]), found):
        if row[0] != number:
            raise RuntimeError(f"{c['id']}: the cached boxes are of other frames; delete {BOXES} and re-run")
        h, w = img.shape[:2]
        if len(row) == 1:
            no_box += 1
            cut, _ = crop.resize_short_side(img, short_side)
        else:
            cut = crop.crop_resize(img, crop.square_crop_box(row[1:], w, h, margin), short_side)
            ious.append(iou(row[1:], aihub.nearest_box(labelled, number)))
        kept += 1
        cv2.imwrite(str(dest / mmconfig.FILENAME_TMPL.format(kept)), cut, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if kept != c["frames"]:
        raise RuntimeError(f"{c['id']}: {kept} source frames read, {c['frames']} prepared: the source changed; prepare again")
    return {"ious": ious, "no_box": no_box, "frames": kept}


def detected_cache(root: Path, det_dir: Path, locate=boxes) -> Path:
    """<target dir>/data_detected: the target's test clips cut around the detector's boxes, with
    the same prepare parameters (margin, short side) and test list; detected.json says which
    detector, and how its boxes overlap the labelled ones. Rebuilt when the detector or the
    test list changes. ``locate``: boxes, or a stand-in of its signature (tests)."""
    data, out = Path(root) / "data", Path(root) / CACHE
    p = json.loads((data / "prepare.json").read_text())["params"]
    if not p["crop"]:
        raise ValueError("the study trains on whole frames (crop: false): no detector crop to measure")
    key = {"detector": detector_key(Path(det_dir)), "test": (data / "test.txt").read_text(),
           "margin": p["margin"], "short_side": p["short_side"]}
    done = out / "detected.json"
    if (atomic.read_json(done) or {}).get("key") == key:
        return out
    shutil.rmtree(out, ignore_errors=True)
    clips = test_clips(data)
    det, found = locate(det_dir, clips)
    quality = [cut_clip(c, found[c["id"]], out, p["margin"], p["short_side"]) for c in clips]
    ious = [x for q in quality for x in q["ious"]]
    shutil.copy(data / "test.txt", out / "test.txt")
    shutil.copy(data / "classes.json", out / "classes.json")
    atomic.write_text(done, json.dumps({"key": key, "detector": det, "n_clips": len(clips),
                                "frames": sum(q["frames"] for q in quality),
                                "frames_no_box": sum(q["no_box"] for q in quality),
                                "mean_iou": float(np.mean(ious)) if ious else float("nan"),
                                "frames_iou50": float(np.mean(np.array(ious) >= 0.5)) if ious else float("nan")},
                               indent=1))
    return out


def score(run: Path, data: Path, batch: int = 8) -> dict:
    """The run's best checkpoint on ``data``'s test list through the run's own test pipeline and
    mmaction2's test_step (what its testing computed on the labelled crops): load_scores's format."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from .forward import load_recognizer
    from mmaction.registry import DATASETS
    model = load_recognizer(run)
    init_default_scope("mmaction")
    ds = dict(model.cfg.test_dataloader.dataset)
    ds.update(ann_file=str(Path(data) / "test.txt"), data_prefix=dict(img=str(Path(data) / "frames")))
    dataset = DATASETS.build(ds)
    scores = []
    with torch.no_grad():
        for i in range(0, len(dataset), batch):
            out = model.test_step(pseudo_collate([dataset[j] for j in range(i, min(i + batch, len(dataset)))]))
            scores += [o.pred_score.numpy() for o in out]
    rows = read_split(Path(data), "test")
    return {"ids": np.array([r[0] for r in rows]), "labels": np.array([r[2] for r in rows]),
            "scores": np.stack(scores), "classes": list(model.cfg.dataset_meta["classes"])}


def compare(model: str, seed: int, labelled: dict, detected: dict, cache: Path) -> dict:
    """e2e.csv's row: the same clips scored on labelled and on detected boxes; the paired
    difference (detector - labelled) with its bootstrap interval and exact McNemar test."""
    if not np.array_equal(labelled["ids"], detected["ids"]):
        raise ValueError(f"{model}: the detector-box clips are not the labelled test clips; delete {cache} and re-run")
    lab = labelled["scores"].argmax(1) == labelled["labels"]
    det = detected["scores"].argmax(1) == detected["labels"]
    t = stats.paired_test(det, lab)
    info = json.loads((Path(cache) / "detected.json").read_text())
    return {"model": model, "seed": seed, "n_clips": int(len(lab)), "top1_labelled": float(lab.mean()),
            "top1_detector": float(det.mean()), "diff": t["diff"], "diff_ci_low": t["diff_ci_low"],
            "diff_ci_high": t["diff_ci_high"], "labelled_only": t["b_only"], "detector_only": t["a_only"],
            "test": t["test"], "p_value": t["p_value"], "mean_iou": info["mean_iou"],
            "frames_iou50": info["frames_iou50"], "frames_no_box": info["frames_no_box"], "detector": info["detector"]}
