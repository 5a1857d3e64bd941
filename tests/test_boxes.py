"""Box geometry of the whole-frame (crop: false) cache: a box follows the resize exactly."""
import json

import numpy as np
import pytest

from petaction.data import crop, prepare


def painted(h, w, box):
    """An image black but for the box's pixels (x, y, w, h in whole pixels)."""
    img = np.zeros((h, w, 3), np.uint8)
    x, y, bw, bh = box
    img[y:y + bh, x:x + bw] = 255
    return img


def bright_extent(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_whole_frame_box_follows_resize_exactly():
    img = painted(120, 200, (40, 30, 60, 30))       # 200 x 120 frame, short side 120 -> 60: scale 1/2
    out, box = crop.whole_frame(img, (40, 30, 60, 30), 60)
    assert out.shape[:2] == (60, 100)
    assert box == (20.0, 15.0, 30.0, 15.0)
    x0, y0, x1, y1 = bright_extent(out)
    assert (x0, y0, x1 - x0, y1 - y0) == box


def test_whole_frame_uses_each_axis_own_scale():
    # 143 x 97 -> short side 64: width rounds to 94, so x scales by 94/143, not 64/97
    out, box = crop.whole_frame(np.zeros((97, 143, 3), np.uint8), (143, 97, 0, 0), 64)
    assert out.shape[:2] == (64, 94)
    assert box[:2] == pytest.approx((94.0, 64.0), abs=1e-9)   # 64/97 would give 94.35


def test_whole_frame_box_partly_outside_is_clipped():
    out, box = crop.whole_frame(np.zeros((100, 100, 3), np.uint8), (-20, 80, 50, 40), 50)
    assert box == (0.0, 40.0, 15.0, 10.0)


def test_square_crop_box_unchanged_by_size_tuple():
    c = (20, 10, 60, 50)
    assert crop.transform_box((30, 20, 10, 5), c, 80) == crop.transform_box((30, 20, 10, 5), c, (80, 80))


def test_prepare_crop_false_writes_whole_frames_with_boxes(tmp_path):
    from conftest import TINY_PREPARE
    small = {**TINY_PREPARE, "synth_scale": 0.1, "synth_frames": 4}
    cropped = prepare.prepare(study="b", results_dir=tmp_path, **small)
    full = prepare.prepare(study="b", results_dir=tmp_path, folder="data_full", crop=False, **small)
    d_crop, d_full = cropped["data_dir"], full["data_dir"]
    assert d_full.endswith("data_full")
    for split in ("train", "val", "test"):   # same clips, same split
        assert open(f"{d_crop}/{split}.txt").read() == open(f"{d_full}/{split}.txt").read()
    clip = open(f"{d_full}/test.txt").readline().split()[0]
    frame = crop.read_image(f"{d_full}/frames/{clip}/img_00001.jpg")
    w, h = small.get("synth_size", prepare.DEFAULTS["synth_size"])
    assert frame.shape[:2] == (32, round(w * 32 / h))          # whole frame, short side 32
    boxes = json.load(open(f"{d_full}/frames/{clip}/boxes.json"))
    assert len(boxes) == int(open(f"{d_full}/test.txt").readline().split()[1])   # one per cached frame
    _, x, y, bw, bh = boxes[0]
    assert 0 <= x and 0 <= y and x + bw <= frame.shape[1] + 1e-6 and y + bh <= frame.shape[0] + 1e-6
    assert bw * bh < 0.9 * frame.shape[0] * frame.shape[1]          # the pet, not the whole frame
