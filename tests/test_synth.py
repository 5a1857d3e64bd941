"""Tests of petaction.data.synth: the synthetic dataset in the AI-Hub on-disk format."""
from __future__ import annotations

import hashlib
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

try:
    import petaction  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from petaction.data import classes, synth  # noqa: E402

FRAME_RE = re.compile(r"^frame_(\d+)_timestamp_(\d+)\.jpg$")
BOM = b"\xef\xbb\xbf"
SMALL = dict(size=(96, 72), n_frames=8)


def _tree_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8-sig"))


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    """All DEFAULT_COUNTS clips, small frames (fast)."""
    root = tmp_path_factory.mktemp("synth_default") / "data"
    records = synth.generate(root, seed=0, **SMALL)
    labels = {r["clip"]: _load(root / r["label_path"]) for r in records}
    return root, records, labels


# ----------------------------------------------------------------------------- determinism

def test_same_seed_same_bytes(tmp_path):
    a = synth.generate(tmp_path / "a", seed=3, counts=1, **SMALL)
    b = synth.generate(tmp_path / "b", seed=3, counts=1, **SMALL)
    assert a == b
    da, db = _tree_digest(tmp_path / "a"), _tree_digest(tmp_path / "b")
    assert da == db and len(da) > 13 * 8


def test_different_seed_different_data(tmp_path):
    synth.generate(tmp_path / "a", seed=3, counts=1, **SMALL)
    synth.generate(tmp_path / "b", seed=4, counts=1, **SMALL)
    da, db = _tree_digest(tmp_path / "a"), _tree_digest(tmp_path / "b")
    assert set(da.values()).isdisjoint(db.values())


def test_refuses_non_empty_root(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("x")
    with pytest.raises(ValueError):
        synth.generate(tmp_path / "x", counts=1, **SMALL)
    (tmp_path / "empty").mkdir()
    assert len(synth.generate(tmp_path / "empty", counts={"ARCH": 1}, **SMALL)) == 1


def test_counts_override(tmp_path):
    recs = synth.generate(tmp_path / "a", counts={"WALKRUN": 2, ("CAT", "WALKRUN"): 3}, **SMALL)
    assert Counter((r["species"], r["action"]) for r in recs) == {("DOG", "WALKRUN"): 2, ("CAT", "WALKRUN"): 3}
    for bad in ({"NOPE": 1}, {("CAT", "SIT"): 1}, {"ARCH": -1}):
        with pytest.raises(ValueError):
            synth.generate(tmp_path / "b", counts=bad, **SMALL)


# ----------------------------------------------------------------------------- format

def test_every_clip_matches_its_frame_folder(default_set):
    root, records, labels = default_set
    assert len(records) == sum(synth.DEFAULT_COUNTS.values())
    W, H = SMALL["size"]
    label_files = sorted(root.rglob("*.json"))
    assert len(label_files) == len(records)
    for lf in label_files:
        rel = lf.relative_to(root)
        split, kind, *sub = rel.parts
        assert split in ("Training", "Validation") and kind == "라벨링데이터"
        frame_dir = root / split / "원천데이터" / Path(*sub).parent / lf.name[: -len(".json")]
        assert frame_dir.is_dir(), frame_dir
    for r in records:
        frame_dir, label = root / r["frame_dir"], root / r["label_path"]
        assert frame_dir.name == label.name[: -len(".json")] == r["clip"]
        assert classes.parse_clip_name(r["clip"]) == {"species": r["species"], "action": r["action"],
                                                      "seq": r["seq"]}
        lab = labels[r["clip"]]
        meta = lab["metadata"]
        assert meta["seq"] == r["seq"] and meta["species"] == r["species"]
        assert (meta["width"], meta["height"]) == (W, H)
        assert lab["file_video"].endswith(r["clip"].split("_")[-1].removesuffix(".mp4") + ".mp4")
        anns = lab["annotations"]
        assert len(anns) == r["frames_annotated"] >= 8
        step = anns[1]["frame_number"]
        assert step in (3, 6)
        assert [a["frame_number"] for a in anns] == [i * step for i in range(len(anns))]
        assert [a["timestamp"] for a in anns] == [i * 200 for i in range(len(anns))]
        files = list(frame_dir.iterdir())
        assert len(files) == r["frames_jpg"]
        parsed = sorted((int(m[1]), int(m[2])) for m in (FRAME_RE.match(f.name) for f in files))
        assert len(parsed) == len(files)
        by_frame = {a["frame_number"]: a["timestamp"] for a in anns}
        assert all(by_frame[fn] == ts for fn, ts in parsed)
        assert parsed[0][0] == 0 and parsed[-1][0] == anns[-1]["frame_number"]  # first, last kept
        for a in anns:
            if "keypoints" in a:
                assert sorted(a["keypoints"], key=int) == [str(i) for i in range(1, 16)]
            if "bounding_box" in a:
                assert all(isinstance(a["bounding_box"][k], int) for k in ("x", "y", "width", "height"))


def test_split_and_folder_layout(default_set):
    root, records, _ = default_set
    per_class = Counter((r["species"], r["action"]) for r in records)
    val = Counter((r["species"], r["action"]) for r in records if r["split"] == "Validation")
    for cls, n in per_class.items():
        assert 1 <= val[cls] <= n - 1 and abs(val[cls] - 0.2 * n) <= 1
    subs = Counter(Path(r["frame_dir"]).parts[2] for r in records)
    assert {"DOG", "CAT"} <= set(subs) and set(subs) & set(synth.SYNTH_ACTIONS)
    assert any(len(Path(r["frame_dir"]).parts) == 5 for r in records)  # nested SPECIES/ACTION
    seqs = Counter((r["species"], r["action"], r["seq"]) for r in records)
    assert max(seqs.values()) == 1


def test_quirks_present(default_set):
    root, records, labels = default_set
    W, H = SMALL["size"]
    older = [r for r in records if r["clip"].endswith(".mp4")]
    assert 0.2 < len(older) / len(records) < 0.45
    assert all(re.match(r"^\d{8}_", r["clip"]) for r in older)
    boms = [r for r in records if (root / r["label_path"]).read_bytes().startswith(BOM)]
    assert 0.03 < len(boms) / len(records) < 0.2
    sparse = [r for r in records if r["frames_jpg"] < r["frames_annotated"]]
    assert 0.15 < len(sparse) / len(records) < 0.35
    assert any("frame_url" in a for r in older for a in labels[r["clip"]]["annotations"])
    out, no_box, no_kp, n_kp, n_null = 0, 0, 0, 0, 0
    for lab in labels.values():
        for a in lab["annotations"]:
            if "bounding_box" not in a:
                no_box += 1
            else:
                b = a["bounding_box"]
                out += b["x"] < 0 or b["y"] < 0 or b["x"] + b["width"] > W or b["y"] + b["height"] > H
            if "keypoints" not in a:
                no_kp += 1
            else:
                n_kp += 15
                n_null += sum(v is None for v in a["keypoints"].values())
    assert out >= 10 and no_box >= 3 and no_kp >= 1
    assert 0.07 < n_null / n_kp < 0.3
    texts = [lab["metadata"]["action"] for lab in labels.values()]
    assert any(t.endswith(" ") for t in texts)
    assert {"걷거나 뜀", "걷거나 달리는 동작"} <= {t.strip() for t in texts}


# ----------------------------------------------------------------------------- classes and labels

def test_default_counts():
    counts = synth.DEFAULT_COUNTS
    assert max(counts.values()) / min(counts.values()) == synth.DEFAULT_IMBALANCE >= 5
    assert 250 <= sum(counts.values()) <= 350
    assert all(counts[("DOG", c)] >= 30 for c in synth.ORDER_ONLY)
    assert min(counts.values()) >= 8
    assert len(synth.SYNTH_ACTIONS) == 12 and len(counts) == 13
    for (sp, code) in counts:
        assert code in classes.SPECIES_ACTIONS[sp] and sp in synth.SYNTH_ACTIONS[code]["species"]


def test_korean_texts_match_keywords(default_set):
    for code, spec in synth.SYNTH_ACTIONS.items():
        assert spec["text"] and all(classes.text_matches_action(code, t) for t in spec["text"])
    _, records, labels = default_set
    for r in records:
        meta = labels[r["clip"]]["metadata"]
        assert classes.text_matches_action(r["action"], meta["action"])
        assert classes.text_matches_action(r["action"], meta["inspect"]["action"])


def test_emotions(default_set):
    _, records, labels = default_set
    for r in records:
        meta = labels[r["clip"]]["metadata"]
        assert classes.emotion_code(meta["inspect"]["emotion"]) == r["emotion"]
        assert classes.emotion_code(meta["owner"]["emotion"]) == r["owner_emotion"]
        assert r["emotion"] in classes.EMOTION_CODES
    assert set(r["emotion"] for r in records) == set(classes.EMOTION_CODES)
    disagree = sum(r["emotion"] != r["owner_emotion"] for r in records) / len(records)
    assert 0.15 < disagree < 0.35


# ----------------------------------------------------------------------------- motion

def test_taillow_is_time_reversed_tailing():
    key = (5, 0, 2, 7)
    low = synth.clip_params(key, "DOG", "TAILLOW", (96, 72), 12)
    src = synth.clip_params(key, "DOG", "TAILING", (96, 72), 12)
    assert np.array_equal(low["poses"], src["poses"][::-1])
    assert np.array_equal(synth.clip_poses(key, "DOG", "TAILLOW", (96, 72), 12), low["poses"])
    for k in src:  # nothing else depends on which of the two it is
        if k not in ("poses", "action"):
            assert np.array_equal(np.asarray(low[k], dtype=object), np.asarray(src[k], dtype=object)), k
    frames_low, frames_src = synth.render_clip(low), synth.render_clip(src)
    assert all(np.array_equal(a, b) for a, b in zip(frames_low, frames_src[::-1]))
    tail = src["poses"][:, synth.POSE_FIELDS.index("tail")]
    q = len(tail) // 4
    assert tail[:q].mean() < tail[-q:].mean() - 0.8  # TAILING: low -> high


def test_figure_scales_with_size():
    a = synth.clip_poses((1, 1, 1, 1), "CAT", "ROLL", (192, 144), 10)
    b = synth.clip_poses((1, 1, 1, 1), "CAT", "ROLL", (1280, 960), 10)
    s = synth.POSE_FIELDS.index("s")
    assert np.allclose(b[:, s], a[:, s] * 960 / 144)


def test_every_action_moves():
    for code, spec in synth.SYNTH_ACTIONS.items():
        for sp in spec["species"]:
            p = synth.clip_params((0, 0, 0, 1), sp, code, (96, 72), 16)
            frames = np.stack(synth.render_clip(p)).astype(np.int16)
            assert np.abs(frames[1:] - frames[:-1]).mean() > 0.1, (sp, code)
