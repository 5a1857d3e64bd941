"""Read the AI-Hub on-disk format: find clips, pair frame folders with label JSONs, parse labels.

Format spec: shared/aihub-format.md. Everything here is read-only on the source tree.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

FRAME_NAME = re.compile(r"^frame_(\d+)_timestamp_(\d+)\.jpe?g$", re.IGNORECASE)
SPLIT_NAMES = {"training": "Training", "validation": "Validation"}


class LabelError(ValueError):
    """A label JSON that cannot be used; the message is the plain reason."""


@dataclass
class SourceClip:
    name: str                  # clip folder name == label file name without ".json"
    split: str                 # "Training", "Validation" or "" when the tree has neither
    frame_dir: Path | None
    label_path: Path | None
    frames: list = field(default_factory=list)      # [(frame_number, timestamp_ms, Path)] sorted
    stray_files: list = field(default_factory=list)  # files in the frame folder that are not frames
    clash: str = ""            # why the pairing is ambiguous (several folders/labels of one name), else ""


def nfc(s: str) -> str:
    """Korean names may come NFD-normalised (macOS zips); compare them NFC."""
    return unicodedata.normalize("NFC", s)


def split_of(rel: Path) -> str:
    """Official split from the first path component under the root (Training/training/...)."""
    return SPLIT_NAMES.get(nfc(rel.parts[0]).lower(), "") if rel.parts else ""


def list_frames(frame_dir: Path) -> tuple[list, list]:
    """Frames of a clip folder sorted by the parsed frame number, plus any stray files."""
    frames, stray = [], []
    for entry in os.scandir(frame_dir):
        if not entry.is_file():
            continue
        m = FRAME_NAME.match(entry.name)
        if m:
            frames.append((int(m[1]), int(m[2]), Path(entry.path)))
        else:
            stray.append(Path(entry.path))
    frames.sort(key=lambda f: f[0])   # numeric: frame_102 after frame_12
    return frames, sorted(stray)


def discover(root: Path) -> list[SourceClip]:
    """Walk the tree; a frame folder holds frame_N_timestamp_MS.jpg files, a label is any *.json.

    Pairing rule (spec): folder name == label file name minus ".json", within one split.
    Unpaired folders or labels come back with the missing side None; several folders or labels
    of one name in one split come back unpaired, each with its `clash` reason.
    """
    root = Path(root)
    folders: dict[tuple, list[Path]] = {}
    labels: dict[tuple, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        split = split_of(here.relative_to(root))
        if any(FRAME_NAME.match(f) for f in filenames):
            folders.setdefault((split, nfc(here.name)), []).append(here)
        for f in sorted(filenames):
            if f.lower().endswith(".json"):
                labels.setdefault((split, nfc(f[:-5])), []).append(here / f)
    clips = []
    for key in sorted(set(folders) | set(labels)):
        dirs, jsons = folders.get(key, []), labels.get(key, [])
        if len(dirs) > 1 or len(jsons) > 1:   # which folder goes with which label cannot be told
            clash = (f"{len(dirs)} frame folder(s) and {len(jsons)} label JSON(s) share the clip name "
                     f"{key[1]!r} in {key[0] or 'the tree'}: the pairing is ambiguous; rename or remove the copies")
            clips.extend(SourceClip(key[1], key[0], d, None, clash=clash) for d in dirs)
            clips.extend(SourceClip(key[1], key[0], None, j, clash=clash) for j in jsons)
        else:
            clips.append(SourceClip(key[1], key[0], dirs[0] if dirs else None, jsons[0] if jsons else None))
    for c in clips:
        if c.frame_dir is not None:
            c.frames, c.stray_files = list_frames(c.frame_dir)
    return clips


def fingerprint(clip: SourceClip) -> str:
    """A digest of a clip's label bytes and frame file names and sizes: equal for two copies
    of one clip, different for two clips (cheap: frame contents are not read)."""
    h = hashlib.sha256(clip.label_path.read_bytes())
    for _number, _ms, path in clip.frames:
        h.update(f"{path.name}:{path.stat().st_size};".encode())
    return h.hexdigest()


def load_label(path: Path) -> dict:
    """Parse a label JSON (utf-8-sig: some files carry a BOM) and check its required parts."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            label = json.load(f)
    except UnicodeDecodeError as e:
        raise LabelError(f"label is not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise LabelError(f"invalid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(label, dict):
        raise LabelError("label JSON is not an object")
    if not isinstance(label.get("annotations"), list):
        raise LabelError("label JSON has no 'annotations' list")
    if not isinstance(label.get("metadata"), dict):
        raise LabelError("label JSON has no 'metadata' object")
    return label


def box_of(record: dict) -> tuple[float, float, float, float] | None:
    """(x, y, w, h) of an annotation record, or None when it has no usable box."""
    b = record.get("bounding_box")
    try:
        x, y, w, h = (float(b[k]) for k in ("x", "y", "width", "height"))
    except (TypeError, KeyError, ValueError):
        return None
    return (x, y, w, h) if w > 0 and h > 0 else None


def boxes_by_frame(annotations: list) -> dict[int, tuple]:
    """frame_number -> box, for the records that have one."""
    out = {}
    for rec in annotations:
        if isinstance(rec, dict) and "frame_number" in rec:
            box = box_of(rec)
            if box is not None:
                out[int(rec["frame_number"])] = box
    return out


def nearest_box(boxes: dict[int, tuple], frame_number: int):
    """The box of the frame, else the nearest annotated box in time (spec), else None."""
    if frame_number in boxes:
        return boxes[frame_number]
    if not boxes:
        return None
    nearest = min(boxes, key=lambda n: (abs(n - frame_number), n))
    return boxes[nearest]


def dotted(label: dict, path: str):
    """label['a']['b'] for 'a.b' (None when missing): used for group_by keys."""
    cur = label
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur
