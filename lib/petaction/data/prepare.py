"""Turn an AI-Hub tree into a prepared dataset that mmaction2 reads directly.

    python -m petaction prepare --data-root /data/aihub --study mystudy
    papermill notebooks/prepare.ipynb out.ipynb -p data_root /data/aihub -p study mystudy

Writes results/<study>/data/: frames/<clip>/img_00001.jpg... (cropped, resized rawframes;
with crop: false the whole frame resized to short_side, boxes transformed to match),
frames/<clip>/boxes.json ([frame_number, x, y, w, h] per cached frame, in cached pixels),
{train,val,test}.txt (mmaction2 rawframe lists: "dir total_frames label"), clips.csv,
rejected.csv, classes.json, summary.csv and prepare.json (parameters + provenance).
Nothing is written into data_root. A clip is processed at a time (streaming), in
`workers` processes, so memory stays flat whatever the dataset size. The split policies,
group_by, folds and every rejection reason: docs/data.md.

One split per study: the split (and the folds) is drawn over every usable clip, whatever the
target, stratified on the joint action x emotion stratum (splits.joint_strata); only then does
a target drop the clips it has no label for and apply its class cap. So a clip sits in the
same split for the action and the emotion target, and a model, init chain or detector trained
on one target's training clips never sees the other's test clips.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2

from . import aihub, classes, crop, splits
from ..core import atomic, lock, orphans, paths
from ..core.provenance import files_digest

DEFAULTS = dict(
    data_root="",            # AI-Hub tree; empty: generate the embedded synthetic set
    target="action",         # "action" or "emotion"
    emotion_source="inspect",  # "inspect" (curated) or "owner"
    species="both",          # "dog", "cat" or "both"
    max_per_class=0,         # cap per class (0: no cap), to tame the imbalance
    split_policy="stratified",  # "stratified" (train/val/test by ratios) or "official"
    train_ratio=0.7, val_ratio=0.1, test_ratio=0.2,
    group_by="",             # dotted label key, e.g. "metadata.animal.breed": a group never straddles splits
    folds=0,                 # k >= 2: also k cross-validation folds (<split>.fold<i>.txt; small datasets)
    trials=0,                # n >= 1: also n trial splits (<split>.trial<t>.txt), trial t drawn with seed + t - 1
    seed=0,
    crop=True,               # crop to the pet box (False: whole frame, boxes transformed)
    margin=0.15,             # crop margin, as a share of the box's long side, per side
    short_side=64,           # cached frame size (square crops: size x size)
    min_frames=1,            # a clip needs at least this many readable frames
    workers=2,
    synth_seed=0, synth_scale=1.0, synth_frames=20, synth_size=[192, 144],
)


class PrepareError(RuntimeError):
    """Nothing usable: the one clear message a failed preparation gives."""


@dataclass
class Rejected:
    path: str
    kind: str      # "clip" or "file"
    reason: str


def check_params(p: dict) -> dict:
    """Merge with DEFAULTS and refuse unknown keys or values, naming the valid ones."""
    unknown = set(p) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown prepare parameter(s) {sorted(unknown)}; valid: {sorted(DEFAULTS)}")
    p = {**DEFAULTS, **p}
    choices = {"target": ("action", "emotion"), "emotion_source": ("inspect", "owner"),
               "species": ("dog", "cat", "both"), "split_policy": ("stratified", "official")}
    for key, valid in choices.items():
        if p[key] not in valid:
            raise ValueError(f"{key}={p[key]!r} is not valid; choose one of {list(valid)}")
    if abs(p["train_ratio"] + p["val_ratio"] + p["test_ratio"] - 1) > 1e-6:
        raise ValueError("train_ratio + val_ratio + test_ratio must add up to 1")
    if p["train_ratio"] <= 0 or min(p["val_ratio"], p["test_ratio"]) < 0:
        raise ValueError("train_ratio must be above 0, and val_ratio and test_ratio 0 or more")
    from .splits import check_folds, check_trials
    check_folds(p["folds"])
    check_trials(p["trials"])
    if p["folds"] and p["trials"]:
        raise ValueError("folds and trials both redraw the split: choose one (folds: every clip tested once; "
                         "trials: whole new splits, each with its own training seed)")
    return p


def clip_label(meta: dict, action: str, p: dict) -> tuple[str | None, str]:
    """The class of a clip for the study's target, or (None, reason)."""
    if p["target"] == "action":
        return action, ""
    text = (meta.get(p["emotion_source"]) or {}).get("emotion")
    code = classes.emotion_code(text)
    return (code, "") if code else (None, f"no known {p['emotion_source']} emotion (got {text!r})")


def process_clip(src: aihub.SourceClip, out_frames: Path, p: dict) -> tuple[dict | None, list]:
    """Read, check, crop and cache one clip. Returns (clips.csv row or None, rejections)."""
    rejects = [Rejected(str(f), "file", "not a frame_N_timestamp_MS.jpg file") for f in src.stray_files]
    where = str(src.frame_dir or src.label_path)
    if src.clash:
        return None, rejects + [Rejected(where, "clip", src.clash)]
    if src.label_path is None:
        return None, rejects + [Rejected(where, "clip", "frame folder without a label JSON")]
    if src.frame_dir is None:
        return None, rejects + [Rejected(where, "clip", "label JSON without a frame folder")]
    parsed = classes.parse_clip_name(src.name)
    if parsed is None:
        return None, rejects + [Rejected(where, "clip", f"clip name {src.name!r} is not species-action-number")]
    if parsed["action"] not in classes.ALL_ACTIONS:
        return None, rejects + [Rejected(where, "clip", f"unknown class code {parsed['action']!r}")]
    if p["species"] != "both" and parsed["species"] != p["species"].upper():
        return None, rejects + [Rejected(where, "clip", f"species {parsed['species']} not in this study")]
    try:
        label = aihub.load_label(src.label_path)
    except aihub.LabelError as e:
        return None, rejects + [Rejected(str(src.label_path), "clip", str(e))]
    meta = label["metadata"]
    # a clip without this target's label still takes part in the split (one split for every
    # target: its draw must not depend on the target); prepare drops it after the split
    name, unlabelled = clip_label(meta, parsed["action"], p)
    group = aihub.dotted(label, p["group_by"]) if p["group_by"] else ""
    if group is None:   # lumping every clip without the key into one group would be a guess
        return None, rejects + [Rejected(where, "clip", f"no {p['group_by']!r} in the label (group_by needs it)")]
    boxes = aihub.boxes_by_frame(label["annotations"])
    if not boxes:   # crop: false needs one too (fast_rcnn's RoI); the same clips keep the same split
        need = "crop needs one" if p["crop"] else "the whole-frame cache needs one: the RoI"
        return None, rejects + [Rejected(where, "clip", f"no bounding box in any annotation ({need})")]

    clip_id = src.name
    dest = out_frames / clip_id
    dest.mkdir(parents=True)   # exists: two clips of one identity, which distinct_clips rules out
    kept, cached_boxes = 0, []
    for number, _ms, path in src.frames:
        img = crop.read_image(path)
        if img is None:
            rejects.append(Rejected(str(path), "file", "empty or corrupt JPG"))
            continue
        h, w = img.shape[:2]
        box = aihub.nearest_box(boxes, number)
        if p["crop"]:
            c = crop.square_crop_box(box, w, h, p["margin"])
            out = crop.crop_resize(img, c, p["short_side"])
            cached_boxes.append([number, *crop.transform_box(box, c, p["short_side"])])
        else:
            out, b = crop.whole_frame(img, box, p["short_side"])
            cached_boxes.append([number, *b])
        kept += 1
        cv2.imwrite(str(dest / f"img_{kept:05d}.jpg"), out, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if kept < max(1, p["min_frames"]):
        shutil.rmtree(dest, ignore_errors=True)
        why = "no readable frame" if kept == 0 else f"only {kept} readable frame(s), min_frames={p['min_frames']}"
        return None, rejects + [Rejected(where, "clip", why)]
    with open(dest / "boxes.json", "w") as f:   # frame_number, x, y, w, h in cached pixels
        json.dump(cached_boxes, f)
    inspect, owner = meta.get("inspect") or {}, meta.get("owner") or {}
    row = dict(
        id=clip_id, species=parsed["species"], label=name or "", split="", official_split=src.split,
        frames=kept, frames_annotated=len(label["annotations"]), frames_jpg=len(src.frames),
        unlabelled=unlabelled if name is None else "",
        action=parsed["action"], emotion=classes.emotion_code(inspect.get("emotion")) or "",
        owner_emotion=classes.emotion_code(owner.get("emotion")) or "",
        text_ok=classes.text_matches_action(parsed["action"], meta.get("action")),
        action_text=(meta.get("action") or "").strip(),
        group=str(group),
        source=str(src.frame_dir), label_path=str(src.label_path),
    )
    return row, rejects


def distinct_clips(clips: list[aihub.SourceClip]) -> tuple[list, list[Rejected]]:
    """One clip per identity (its frames/<name> folder and clips.csv id): paired clips whose
    names match (ignoring case, for case-blind file systems), in different splits or folders,
    are never merged. Identical copies (same label and frame files) are kept once, the
    Training copy first; different clips under one name are all rejected, since nothing tells
    which is which, and one recording in two official splits would leak into the test set."""
    by_name: dict[str, list] = {}
    for c in clips:
        if c.frame_dir is not None and c.label_path is not None:
            by_name.setdefault(c.name.casefold(), []).append(c)
    drop, rejected = set(), []
    for copies in by_name.values():
        if len(copies) < 2:
            continue
        copies.sort(key=lambda c: (c.split != "Training", c.split, str(c.frame_dir)))
        if len({aihub.fingerprint(c) for c in copies}) == 1:
            gone = [(c, f"duplicate copy of {copies[0].frame_dir} (same label and frame files); kept once")
                    for c in copies[1:]]
        else:
            where = ", ".join(str(c.frame_dir) for c in copies)
            gone = [(c, f"clip name {c.name!r} is shared by {len(copies)} different clips ({where}); none "
                        "is kept: one name is one frames/ folder and clips.csv row, and one recording in two "
                        "splits would leak; give each its own name to keep them") for c in copies]
        for c, why in gone:
            drop.add(id(c))
            rejected.append(Rejected(str(c.frame_dir), "clip", why))
    return [c for c in clips if id(c) not in drop], rejected


def drop_rows(out: Path, gone: list[tuple[dict, str]], rejected: list[Rejected]) -> None:
    """Reject kept clips after the fact (class cap, official group conflicts): their cached
    frames go, each gets its reason."""
    for r, why in gone:
        shutil.rmtree(out / "frames" / r["id"], ignore_errors=True)
        rejected.append(Rejected(r["source"], "clip", why))


def check_official(rows: list[dict], p: dict, source: Path, rejected_csv: Path) -> None:
    """split_policy official needs clips on both official sides to make train and test."""
    if p["split_policy"] != "official":
        return
    sides = Counter(r["official_split"] == "Validation" for r in rows)
    for is_test, folder in ((True, "Validation"), (False, "Training")):
        if not sides[is_test]:
            raise PrepareError(f"split_policy official: no usable clip under {folder}/ in {str(source)!r}"
                               + (f" after dropping the group_by groups found in both folders (see {rejected_csv})"
                                  if p["group_by"] else "") + "; use split_policy stratified")


def _work(args):
    return process_clip(*args)


def ensure_source(p: dict, study_dir: Path) -> Path:
    """The tree to read: data_root, or the embedded synthetic set generated under the study."""
    if p["data_root"]:
        root = Path(p["data_root"]).expanduser()
        if not root.is_dir():
            raise PrepareError(f"data_root {str(root)!r} does not exist or is not a folder; "
                               "pass the AI-Hub root (holding Training/ and Validation/), or leave it empty for the synthetic set")
        return root
    from . import synth
    # the generator's own source is part of the key: a changed generator regenerates
    code = files_digest([synth.__file__])
    spec = dict(seed=p["synth_seed"], scale=p["synth_scale"], n_frames=p["synth_frames"],
                size=list(p["synth_size"]), generator=code)
    root = study_dir / "synthetic"
    marker = study_dir / "synthetic.json"
    if root.is_dir() and atomic.read_json(marker) == spec:
        return root   # already generated with the same settings
    marker.unlink(missing_ok=True)   # until the new tree is whole
    shutil.rmtree(root, ignore_errors=True)
    counts = {k: max(1, round(v * p["synth_scale"])) for k, v in synth.DEFAULT_COUNTS.items()}
    synth.generate(root, seed=p["synth_seed"], counts=counts, size=tuple(p["synth_size"]),
                   n_frames=p["synth_frames"])
    atomic.write_json(marker, spec)
    return root


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with atomic.open_atomic(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def cache_clips(clips: list[aihub.SourceClip], out: Path, p: dict) -> tuple[list[dict], list[Rejected]]:
    """Cache every distinct usable clip into out/frames (in `workers` processes), then drop
    the official group conflicts' clips (both target-blind: every target's split is drawn over
    the same clips). Returns (rows, rejections); a row's `unlabelled` says why this target has
    no label for it (split_target drops it after the split)."""
    unique, rejected = distinct_clips(clips)
    rows = []
    # initializer: a worker dies with its parent (a killed kernel would leave it waiting)
    with ProcessPoolExecutor(max_workers=max(1, p["workers"]), initializer=orphans.die_with_parent) as pool:
        for row, rej in pool.map(_work, [(c, out / "frames", p) for c in unique], chunksize=4):
            rejected.extend(rej)
            if row is not None:
                rows.append(row)
    rows, conflicts = splits.official_conflicts(rows, p)
    drop_rows(out, conflicts, rejected)
    return rows, rejected


EMOTION_KEY = {"inspect": "emotion", "owner": "owner_emotion"}   # clips.csv column of each emotion_source


def split_target(rows: list[dict], out: Path, p: dict, rejected: list[Rejected]) -> list[dict]:
    """Draw the study's one split (and folds) over every usable clip, stratified on the joint
    action x emotion stratum, then keep this target's clips: those it has a label for, at most
    max_per_class per class (a seeded choice; each kept clip keeps its split). Returns the rows."""
    splits.joint_strata(rows, EMOTION_KEY[p["emotion_source"]], max(splits.MIN_STRATUM, p["folds"]))
    splits.assign(rows, p)
    if p["folds"]:
        splits.assign_folds(rows, p, p["folds"])
    splits.assign_trials(rows, p, p["trials"])
    drop_rows(out, [(r, r["unlabelled"]) for r in rows if r["unlabelled"]], rejected)
    rows = [r for r in rows if not r.pop("unlabelled")]
    rows, capped = splits.cap_per_class(rows, p["max_per_class"], p["seed"])
    drop_rows(out, [(r, f"over max_per_class={p['max_per_class']}") for r in capped], rejected)
    return rows


def write_lists(out: Path, rows: list[dict], folds: int, trials: int = 0) -> None:
    """mmaction2 rawframe lists ("dir total_frames label") of the split, each fold and each trial."""
    sets = [(0, 0, "split")] + [(k, 0, f"split_fold{k}") for k in range(1, folds + 1)] \
        + [(0, t, f"split_trial{t}") for t in range(1, trials + 1)]
    for fold, trial, key in sets:
        for split in splits.SPLITS:
            with atomic.open_atomic(out / paths.split_file(split, fold, trial)) as f:
                for r in rows:
                    if r[key] == split:
                        f.write(f"{r['id']} {r['frames']} {r['label_index']}\n")


def prepare(study: str = "default", results_dir: str | Path | None = None, *, folder: str = "data",
            **params) -> dict:
    """Prepare a study's dataset; returns a summary dict (also saved as prepare.json).

    `folder` names the output under the target's folder: "data" is what every recogniser
    reads; detection.full_frames writes a second, uncropped cache beside it (data_full<size>).
    Under the results folder's lock (a study's, or its own when run by hand)."""
    with lock.hold(study, results_dir, what=f"prepare {study} ({params.get('target', 'action')})"):
        return prepare_locked(study, results_dir, folder, **params)


def prepare_locked(study: str, results_dir, folder: str, **params) -> dict:
    p = check_params(params)
    study_dir = paths.study_dir(study, results_dir)
    source = ensure_source(p, study_dir)
    clips = aihub.discover(source)
    if not clips:
        raise PrepareError(f"no clips found under {str(source)!r}: expected frame folders of "
                           "frame_N_timestamp_MS.jpg and label JSONs (see shared/aihub-format.md)")
    target_dir = paths.target_dir(study, p["target"], results_dir)   # emotion: results/<study>/emotion/
    target_dir.mkdir(parents=True, exist_ok=True)
    out, final = target_dir / f"{folder}.partial", target_dir / folder
    shutil.rmtree(out, ignore_errors=True)
    (out / "frames").mkdir(parents=True)
    rows, rejected = cache_clips(clips, out, p)
    write_rejected = lambda: write_csv(out / "rejected.csv", [asdict(r) for r in rejected],  # noqa: E731
                                       ["path", "kind", "reason"])
    for step in range(2):   # 0: the clips the split is drawn over; 1: this target's labelled clips
        write_rejected()
        if not rows:
            raise PrepareError(f"no usable clip under {str(source)!r}: all {len(clips)} were rejected; "
                               f"see {out / 'rejected.csv'} for each reason")
        if step == 0:
            check_official(rows, p, source, out / "rejected.csv")
            rows = split_target(rows, out, p, rejected)
    class_names = classes.ordered_labels({r["label"] for r in rows}, p["target"])
    index = {c: i for i, c in enumerate(class_names)}
    for r in rows:
        r["label_index"] = index[r["label"]]
    rows.sort(key=lambda r: r["id"])
    write_csv(out / "clips.csv", rows, list(rows[0].keys()))
    write_lists(out, rows, p["folds"], p["trials"])
    order_only = []
    if not p["data_root"] and p["target"] == "action":
        from . import synth
        order_only = [c for c in synth.ORDER_ONLY if c in index]
    atomic.write_json(out / "classes.json", {"target": p["target"], "classes": class_names, "order_only": order_only},
                      indent=1)
    summary = splits.count_table(rows, class_names)
    write_csv(out / "summary.csv", summary, list(summary[0].keys()))
    from ..core import provenance
    info = dict(params=p, study=study, data_dir=str(final), source=str(source), clips_found=len(clips), clips_kept=len(rows),
                rejected=len(rejected), text_mismatch=sum(not r["text_ok"] for r in rows),
                classes=class_names, provenance=provenance.collect())
    atomic.write_json(out / "prepare.json", info, indent=1, ensure_ascii=False, default=str)
    # Swap the finished folder in only now: a failed run leaves the previous data intact, and
    # a kill during the swap leaves either folder whole (the old one is moved aside first).
    old = target_dir / f"{folder}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(out, final)
    shutil.rmtree(old, ignore_errors=True)
    return info
