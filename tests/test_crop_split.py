"""Crop/resize geometry and the split policies."""
from collections import Counter

import numpy as np
import pytest

from petaction.data import crop, splits


def test_square_crop_inside_image_and_contains_box():
    x0, y0, x1, y1 = crop.square_crop_box((50, 40, 30, 20), 200, 100, margin=0.1)
    assert x1 - x0 == y1 - y0 == 36
    assert x0 <= 50 and y0 <= 40 and x1 >= 80 and y1 >= 60


def test_crop_shifted_not_shrunk_at_border():
    x0, y0, x1, y1 = crop.square_crop_box((180, 80, 30, 30), 200, 100, margin=0.0)   # box partly outside
    assert (x1, y1) == (200, 100) and x1 - x0 == 30 and y1 - y0 == 30


def test_crop_clipped_when_image_smaller_than_square():
    box = crop.square_crop_box((0, 0, 100, 90), 120, 60, margin=0.1)
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= 120 and box[3] <= 60


def test_box_follows_crop_and_resize_exactly():
    c = (20, 10, 60, 50)                     # 40 x 40 crop, resized to 80: scale 2
    assert crop.transform_box((30, 20, 10, 5), c, 80) == (20.0, 20.0, 20.0, 10.0)
    img = np.zeros((100, 100, 3), np.uint8)
    img[20:25, 30:40] = 255                  # the box's pixels
    out = crop.crop_resize(img, c, 80)
    ys, xs = np.nonzero(out[..., 0] > 127)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (20, 20, 40, 30)


def rows(n_per_class, groups=None):
    out = []
    for label, n in n_per_class.items():
        for i in range(n):
            out.append({"id": f"{label}-{i}", "label": label, "group": f"{label}-g{i // 3}" if groups else "",
                        "official_split": "Validation" if i % 5 == 0 else "Training"})
    return out


P = dict(seed=0, train_ratio=0.7, val_ratio=0.1, test_ratio=0.2, split_policy="stratified", group_by="")


def test_stratified_split_follows_ratios_per_class():
    r = rows({"A": 50, "B": 10, "C": 3})
    splits.assign(r, P)
    c = Counter((x["label"], x["split"]) for x in r)
    assert (c["A", "train"], c["A", "val"], c["A", "test"]) == (35, 5, 10)
    assert (c["B", "train"], c["B", "val"], c["B", "test"]) == (7, 1, 2)
    assert c["C", "test"] == 1 and c["C", "val"] == 1     # small classes still get measured


def test_split_is_seeded_and_reproducible():
    a, b, c = rows({"A": 30}), rows({"A": 30}), rows({"A": 30})
    splits.assign(a, P), splits.assign(b, P), splits.assign(c, {**P, "seed": 1})
    assert [x["split"] for x in a] == [x["split"] for x in b]
    assert [x["split"] for x in a] != [x["split"] for x in c]


def test_grouped_split_never_straddles():
    r = rows({"A": 60, "B": 30}, groups=True)
    splits.assign(r, {**P, "group_by": "metadata.x"})
    by_group = {}
    for x in r:
        by_group.setdefault(x["group"], set()).add(x["split"])
    assert all(len(s) == 1 for s in by_group.values())
    c = Counter(x["split"] for x in r)
    assert 0.6 < c["train"] / len(r) < 0.8 and c["test"] > 0 and c["val"] > 0


def test_grouped_split_of_uneven_mixed_groups_is_seeded_and_whole():
    """Groups of 1 to 6 clips, some mixed-class: no group in two of train/val/test, val and
    test hold every class, and the same seed gives the same split."""
    r = [{"id": f"c{i:03d}", "label": "AB"[i % 3 == 0], "group": f"g{(i * 7) % 23}", "official_split": ""}
         for i in range(90)]
    again = [dict(x) for x in r]
    q = {**P, "group_by": "metadata.x"}
    splits.assign(r, q), splits.assign(again, q)
    assert splits.straddling(r, "split", q) == {}
    assert [x["split"] for x in r] == [x["split"] for x in again]
    for split in ("val", "test"):
        assert {x["label"] for x in r if x["split"] == split} == {"A", "B"}


def test_one_group_cannot_be_carved():
    r = [{"id": f"c{i}", "label": "A", "group": "same", "official_split": ""} for i in range(9)]
    with pytest.raises(ValueError, match="cannot carve .* 1 'metadata.x' group"):
        splits.assign(r, {**P, "group_by": "metadata.x"})


def official_rows():
    """Groups of 3, every fourth group in Validation, and three groups on both sides:
    g1 2 Validation : 1 Training, g2 1 : 2, g12 1 : 1 (a tie)."""
    out = [{"id": f"r{i:02d}", "label": "AB"[i % 2], "group": f"g{i // 3}",
            "official_split": "Validation" if (i // 3) % 4 == 0 else "Training"} for i in range(36)]
    for i in (3, 4, 6):
        out[i]["official_split"] = "Validation"
    out += [{"id": "r96", "label": "A", "group": "g12", "official_split": "Validation"},
            {"id": "r97", "label": "B", "group": "g12", "official_split": "Training"}]
    return out


def test_official_split_with_groups_drops_the_minority_side():
    q = {**P, "split_policy": "official", "group_by": "metadata.x"}
    r = official_rows()
    with pytest.raises(ValueError, match="official_conflicts"):
        splits.assign([dict(x) for x in r], q)
    kept, dropped = splits.official_conflicts(r, q)
    gone = {x["id"]: why for x, why in dropped}
    assert set(gone) == {"r05", "r06", "r97"}
    assert "kept on the Validation side (2 clips)" in gone["r05"]
    assert "kept on the Training side (2 clips)" in gone["r06"]
    assert "kept on the Validation side (1 clips)" in gone["r97"]           # a tie keeps the test side
    splits.assign(kept, q)
    assert splits.straddling(kept, "split", q) == {}
    assert all((x["split"] == "test") == (x["official_split"] == "Validation") for x in kept)
    assert {x["split"] for x in kept} == {"train", "val", "test"}


def test_official_split_uses_validation_as_test():
    r = rows({"A": 40})
    splits.assign(r, {**P, "split_policy": "official"})
    assert all((x["split"] == "test") == (x["official_split"] == "Validation") for x in r)
    assert any(x["split"] == "val" for x in r)


def test_cap_per_class():
    kept, dropped = splits.cap_per_class(rows({"A": 10, "B": 2}), 3, seed=0)
    assert Counter(x["label"] for x in kept) == {"A": 3, "B": 2} and len(dropped) == 7


@pytest.mark.parametrize("n", range(0, 12))
def test_split_counts_add_up(n):
    assert sum(splits.split_counts(n, (0.7, 0.1, 0.2))) == n
