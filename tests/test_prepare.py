"""prepare on a hand-made AI-Hub tree with every quirk and every kind of bad input."""
import csv
import hashlib
import os

import cv2
import pytest

from aihub_fixture import make_breed_tree, make_quirky_tree
from petaction.data import aihub, prepare


def read_csv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            h.update(p.encode() + open(p, "rb").read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("aihub")
    expect = make_quirky_tree(root)
    before = tree_digest(root)
    results = tmp_path_factory.mktemp("results")
    info = prepare.prepare(study="quirks", results_dir=results, data_root=str(root), workers=1,
                           short_side=32, seed=0)
    return {"root": root, "expect": expect, "info": info, "before": before,
            "data": results / "quirks" / "data"}


def test_kept_clips_are_exactly_the_good_ones(prepared):
    rows = read_csv(prepared["data"] / "clips.csv")
    assert {r["id"] for r in rows} == prepared["expect"]["kept"]


def test_every_bad_input_is_reported_with_its_reason(prepared):
    rejected = read_csv(prepared["data"] / "rejected.csv")
    got = {r["path"]: r["reason"] for r in rejected}
    for path, reason in prepared["expect"]["rejected"].items():
        assert path in got, f"{path} not reported"
        assert reason in got[path]
    assert len(got) == len(prepared["expect"]["rejected"])


def test_source_tree_is_untouched(prepared):
    assert tree_digest(prepared["root"]) == prepared["before"]


def test_sparse_and_corrupt_frames_counted(prepared):
    rows = {r["id"]: r for r in read_csv(prepared["data"] / "clips.csv")}
    assert rows["cat-arch-000001"]["frames"] == "6" and rows["cat-arch-000001"]["frames_annotated"] == "20"
    assert rows["dog-sit-000002"]["frames"] == "4"     # 6 JPGs, one empty, one corrupt
    assert rows["dog-sit-000001"]["text_ok"] == "False"
    assert rows["20201028_dog-walkrun-000002.mp4"]["text_ok"] == "True"   # BOM + trailing space
    assert rows["cat-walkrun-000009"]["official_split"] == "Validation"


def test_cache_frames_are_square_and_mmaction_lists_match(prepared):
    data = prepared["data"]
    img = cv2.imread(str(data / "frames" / "cat-arch-000002" / "img_00001.jpg"))
    assert img.shape == (32, 32, 3)
    listed = {}
    for split in ("train", "val", "test"):
        for line in open(data / f"{split}.txt"):
            clip, n, label = line.split()
            listed[clip] = int(n)
            assert len(list((data / "frames" / clip).glob("img_*.jpg"))) == int(n)
    assert set(listed) == prepared["expect"]["kept"]


def test_one_clip_identity_is_never_merged(prepared):
    """Two clips of one name (Training and Validation, or two labels of one folder name) never
    share a frames/<name> folder or a clips.csv row: each is kept alone or rejected."""
    data = prepared["data"]
    ids = [r["id"] for r in read_csv(data / "clips.csv")]
    assert len(ids) == len(set(ids))
    rows = {r["id"]: r for r in read_csv(data / "clips.csv")}
    for name, frames in prepared["expect"]["one_identity"].items():
        folder = data / "frames" / name
        if frames is None:
            assert name not in rows and not folder.exists()
        else:   # the kept copy's own frames, not the two copies' together
            assert rows[name]["frames"] == str(frames) == str(len(list(folder.glob("img_*.jpg"))))
            assert rows[name]["official_split"] == "Training"


def test_official_split_keeps_groups_whole(tmp_path):
    """split_policy official + group_by: a breed in both Training and Validation keeps only the
    side with more of its clips (the other side rejected with its reason); no breed straddles."""
    where = make_breed_tree(tmp_path / "aihub")
    prepare.prepare(study="b", results_dir=tmp_path / "r", data_root=str(tmp_path / "aihub"), workers=1,
                    short_side=16, split_policy="official", group_by="metadata.animal.breed")
    data = tmp_path / "r" / "b" / "data"
    rows = read_csv(data / "clips.csv")
    by_breed = {}
    for r in rows:
        by_breed.setdefault(r["group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_breed.values()) and by_breed["B"] == {"test"}
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    dropped = [name for name, (breed, side, _) in where.items() if breed == "C" and side == "Validation"]
    rejected = {r["path"]: r["reason"] for r in read_csv(data / "rejected.csv")}
    assert list(rejected) == [str(where[dropped[0]][2])]
    assert "in both Training and Validation" in rejected[str(where[dropped[0]][2])]


def test_official_split_with_every_group_straddling_is_one_clear_error(prepared, tmp_path):
    """The quirky tree's clips share one breed: under official + group_by the Validation side
    is dropped entirely, which leaves no test set: an error that says so."""
    with pytest.raises(prepare.PrepareError, match="no usable clip under Validation/.*group_by"):
        prepare.prepare(study="q", results_dir=tmp_path, data_root=str(prepared["root"]), workers=1,
                        short_side=16, split_policy="official", group_by="metadata.animal.breed")


def test_group_by_key_missing_from_labels_rejects_with_its_name(tmp_path):
    make_breed_tree(tmp_path / "aihub")
    with pytest.raises(prepare.PrepareError, match="all 9 were rejected"):
        prepare.prepare(study="m", results_dir=tmp_path / "r", data_root=str(tmp_path / "aihub"), workers=1,
                        short_side=16, group_by="metadata.animal.colour")
    rejected = read_csv(tmp_path / "r" / "m" / "data.partial" / "rejected.csv")
    assert len(rejected) == 9 and all("'metadata.animal.colour'" in r["reason"] for r in rejected)


def test_nothing_usable_is_one_clear_error(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(prepare.PrepareError, match="no clips found"):
        prepare.prepare(study="x", results_dir=tmp_path / "r", data_root=str(root))
    with pytest.raises(prepare.PrepareError, match="does not exist"):
        prepare.prepare(study="x", results_dir=tmp_path / "r", data_root=str(tmp_path / "missing"))


def test_unknown_parameter_lists_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="valid:.*short_side"):
        prepare.prepare(study="x", results_dir=tmp_path, shortside=3)
    with pytest.raises(ValueError, match="train_ratio must be above 0"):
        prepare.check_params({"train_ratio": 0.0, "val_ratio": 0.5, "test_ratio": 0.5})


def test_frames_sorted_numerically(tmp_path):
    for n in (102, 12, 6, 0):
        (tmp_path / f"frame_{n}_timestamp_{n * 33}.jpg").write_bytes(b"x")
    frames, stray = aihub.list_frames(tmp_path)
    assert [f[0] for f in frames] == [0, 6, 12, 102] and stray == []


def test_pairing_is_by_exact_name_not_substring(tmp_path):
    for name in ("cat-arch-000001", "cat-arch-0000011"):
        d = tmp_path / "Training" / "src" / name
        d.mkdir(parents=True)
        (d / "frame_0_timestamp_0.jpg").write_bytes(b"x")
    lab = tmp_path / "Training" / "lab"
    lab.mkdir(parents=True)
    (lab / "cat-arch-000001.json").write_text("{}")
    clips = {c.name: c for c in aihub.discover(tmp_path)}
    assert clips["cat-arch-000001"].label_path is not None
    assert clips["cat-arch-0000011"].label_path is None


def test_nearest_box_in_time():
    boxes = {0: (0, 0, 1, 1), 12: (5, 5, 1, 1)}
    assert aihub.nearest_box(boxes, 12) == (5, 5, 1, 1)
    assert aihub.nearest_box(boxes, 7) == (5, 5, 1, 1)
    assert aihub.nearest_box(boxes, 6) == (0, 0, 1, 1)   # tie: the earlier frame
    assert aihub.nearest_box({}, 3) is None


def test_prepare_on_the_synthetic_set_keeps_every_clip(tiny_data, tmp_path):
    """Every generated clip is kept with its class, split side and JPG count; nothing rejected."""
    from conftest import TINY_PREPARE
    from petaction.data import synth
    results, study, data = tiny_data
    counts = {k: max(1, round(v * TINY_PREPARE["synth_scale"])) for k, v in synth.DEFAULT_COUNTS.items()}
    made = synth.generate(tmp_path / "again", seed=0, counts=counts, n_frames=TINY_PREPARE["synth_frames"])
    rows = {r["id"]: r for r in read_csv(data / "clips.csv")}
    assert set(rows) == {m["clip"] for m in made}
    for m in made:
        r = rows[m["clip"]]
        assert (r["label"], r["species"], r["official_split"]) == (m["action"], m["species"], m["split"])
        assert int(r["frames"]) == m["frames_jpg"] and r["emotion"] == m["emotion"]
    assert read_csv(data / "rejected.csv") == []


def test_emotion_target_prepares_beside_the_action_data(tiny_data):
    """target: emotion -> results/<study>/emotion/data, six emotion codes as classes."""
    import json
    from conftest import TINY_PREPARE
    from petaction.data import classes
    results, study, _ = tiny_data
    info = prepare.prepare(study=study, results_dir=results, target="emotion", **TINY_PREPARE)
    data = results / study / "emotion" / "data"
    assert info["data_dir"] == str(data)
    names = json.loads((data / "classes.json").read_text())["classes"]
    assert set(names) <= set(classes.EMOTION_CODES) and len(names) >= 4
    assert {r["label"] for r in read_csv(data / "clips.csv")} == set(names)
