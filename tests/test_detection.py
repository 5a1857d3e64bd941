"""fast_rcnn (box-level behaviour recognition) and the pet detector: geometry, metric, one iteration."""
import json
import shutil

import numpy as np
import pytest

from petaction import params as P
from conftest import one_iteration


def tiny_params(tiny_data, **over):
    results, study, _ = tiny_data
    return P.resolve_train({"model": "fast_rcnn", "profile": "tiny", "study": study,
                            "results_dir": str(results), **over})


def test_full_profile_is_the_zoo_model_with_our_head():
    from mmengine.config import Config
    from petaction.training import detection
    from petaction.models import mmconfig
    p = P.resolve_train({"model": "fast_rcnn", "profile": "full"})
    zoo = Config.fromfile(str(mmconfig.mm_configs_dir() / detection.ZOO_CONFIG)).model.to_dict()
    ours = detection.model_dict(p, 12)
    assert ours["backbone"] == zoo["backbone"] and ours["backbone"]["depth"] == 50
    assert ours["roi_head"]["bbox_roi_extractor"] == zoo["roi_head"]["bbox_roi_extractor"]
    head = ours["roi_head"]["bbox_head"]
    assert (head["num_classes"], head["multilabel"], head["background_class"]) == (12, False, False)
    assert ours["init_cfg"] is None                 # no download: from scratch


def test_key_frame_box_is_the_middle_sampled_frame_and_moves_with_resize():
    from petaction.training.detection import KeyFrameBox
    from mmaction.datasets.transforms import Resize
    boxes = np.array([[i, i, i + 10, i + 20] for i in range(10)], np.float32)
    r = dict(frame_inds=np.array([3, 5, 7, 9]), start_index=1, boxes=boxes, n_classes=4, label=2,
             img_shape=(40, 80), imgs=[np.zeros((40, 80, 3), np.uint8)] * 4)
    r = KeyFrameBox()(r)
    assert r["gt_bboxes"].tolist() == [[6, 6, 16, 26]]     # frame_inds[2] = 7 -> boxes[6] (1-based frames)
    assert r["proposals"].tolist() == r["gt_bboxes"].tolist()
    assert r["gt_labels"].tolist() == [[0, 0, 1, 0]]
    r = Resize(scale=(-1, 20))(r)                         # half size: the box halves with the pixels
    assert r["gt_bboxes"].tolist() == [[3, 3, 8, 13]] == r["proposals"].tolist()


def test_box_safe_crop_jitters_the_pet_without_losing_it():
    """With resize set, training sees a crop of the frame (cached at short side resize) that
    holds the whole key box, resized to the whole frame's test size; the box moves and changes
    scale from clip to clip. Testing sees the whole frame at short side img_size; so does
    training when resize is 0."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from petaction.training import detection
    init_default_scope("mmaction")
    base = {"clip_len": 2, "frame_interval": 1, "img_size": 20}
    box = [44.0, 4.0, 58.0, 20.0]                                   # a pet at the right edge of a 40 x 60 frame

    def sample(resize, train, seed):
        np.random.seed(seed)
        train_pipe, test_pipe = detection.pipelines({**base, "resize": resize})
        steps = (train_pipe if train else test_pipe)[2:-2]         # KeyFrameBox on, before packing
        r = dict(frame_inds=np.array([1, 2]), start_index=1, boxes=np.tile(np.float32([box]), (4, 1)), n_classes=3,
                 label=1, modality="RGB", img_shape=(40, 60), imgs=[np.zeros((40, 60, 3), np.uint8)] * 2)
        return Compose(steps)(r)

    crops = [sample(40, True, s) for s in range(30)]
    assert {c["img_shape"] for c in crops} == {(20, 30)} == {c["imgs"][0].shape[:2] for c in crops}
    for c in crops:
        x0, y0, x1, y1 = c["gt_bboxes"][0]
        assert c["proposals"].tolist() == c["gt_bboxes"].tolist()
        assert 0 <= x0 and x1 <= 30 and 0 <= y0 and y1 <= 20      # never cut out: 14 x 16 px scaled by 20 / crop
        assert (x1 - x0) >= 7 - 1e-4 and (y1 - y0) >= 8 - 1e-4    # at least half its pixels' width and height
    assert len({round(float(c["gt_bboxes"][0, 2] - c["gt_bboxes"][0, 0]), 2) for c in crops}) > 3   # scale varies
    assert len({round(float(min(c["gt_bboxes"][0, 0], 30 - c["gt_bboxes"][0, 2])), 1) for c in crops}) > 3  # and place
    whole = sample(40, False, 0)
    assert whole["img_shape"] == (20, 30) and whole["gt_bboxes"].tolist() == [[22, 2, 29, 10]]
    assert sample(0, True, 0)["img_shape"] == (20, 30)          # resize 0: the whole frame in training too
    assert detection.cache_side({**base, "resize": 40}) == 40 and detection.cache_side({**base, "resize": 0}) == 20
    assert detection.BoxSafeCrop._start(5, 50, 30, 60) == 12     # a box wider than the crop: centred on it


def test_clip_box_metric_top1_and_box_map():
    from petaction.training.detection import ClipBoxMetric
    m = ClipBoxMetric(topk=(1, 2))
    s = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], np.float32)
    out = m.compute_metrics([{"pred_score": x, "gt_label": y} for x, y in zip(s, [0, 1, 2])])
    assert out["top1"] == pytest.approx(2 / 3) and out["top2"] == 1.0
    assert out["box_map"] == pytest.approx(1.0)            # each class's own clip ranks first in its column
    assert out["mean1"] == pytest.approx(2 / 3)
    # class 1's clip ranks second in its column: AP (1/2), the mean over the three classes drops
    s2 = s.copy()
    s2[1, 1], s2[0, 1] = 0.2, 0.3
    out2 = m.compute_metrics([{"pred_score": x, "gt_label": y} for x, y in zip(s2, [0, 1, 2])])
    assert out2["box_map"] == pytest.approx((1 + 1 / 2 + 1) / 3)


@pytest.mark.slow
def test_fast_rcnn_one_iteration_and_a_test_pass(tiny_data, tmp_path):
    from petaction.training import detection
    p = tiny_params(tiny_data)
    data = detection.full_frames(p)
    assert data.name == f"data_full{p['img_size']}"
    classes = json.loads((data / "classes.json").read_text())["classes"]
    cfg = detection.build(p, data, tmp_path, classes)
    runner = one_iteration(cfg)
    metrics = runner.test()
    assert {"acc/top1", "acc/box_map"} <= set(metrics)
    from petaction.training.train import save_scores
    scores = save_scores(tmp_path, data, classes)          # the clip-level table's input, as for every model
    assert scores["top1"] == pytest.approx(metrics["acc/top1"])   # the saved scores are what was tested
    z = np.load(tmp_path / "test_scores.npz")
    assert z["scores"].shape == (scores["n_test"], len(classes))
    assert np.allclose(z["scores"].sum(1), 1, atol=1e-4)  # softmax over our classes, one box per clip
    from petaction.evaluation import forward
    net = forward.build(runner.model.eval())            # what cost.py times
    out = net(*forward.example_inputs(p, batch=2, frame_shape=(32, 43)))
    assert out.shape == (2, len(classes))


def test_detector_frame_picks_and_coco_boxes(tiny_data):
    from petaction.training import detection, detector
    assert detector.frame_picks(10, 1) == [5] and detector.frame_picks(10, 2) == [2, 7]
    assert detector.frame_picks(3, 8) == [0, 1, 2]
    data = detection.full_frames(tiny_params(tiny_data))
    coco = detector.coco_split(data, "test", 2)
    clip = open(data / "test.txt").readline().split()[0]
    first = json.loads((data / "frames" / clip / "boxes.json").read_text())
    n = len(first)
    _, x, y, w, h = first[detector.frame_picks(n, 2)[0]]
    assert coco["annotations"][0]["bbox"] == pytest.approx([x, y, w, h])   # the cached box, as COCO x, y, w, h
    assert coco["images"][0]["file_name"].startswith(f"frames/{clip}/img_")


@pytest.mark.slow
def test_detector_one_iteration_box_ap_and_latency(tiny_data, tmp_path):
    from petaction.training import detection, detector
    results, study, _ = tiny_data
    s = detector.settings("tiny")
    data = detection.full_frames({"study": study, "target": "action", "results_dir": str(results),
                                  "img_size": s["img_size"]})
    for split in ("train", "val", "test"):
        (tmp_path / f"coco_{split}.json").write_text(json.dumps(detector.coco_split(data, split, 1)))
    cfg = detector.build(s, data, tmp_path)
    runner = one_iteration(cfg)
    metrics = runner.test()
    assert {"coco/bbox_mAP", "coco/bbox_mAP_50", "coco/bbox_mAP_75"} <= set(metrics)   # COCO box AP on test
    lat = detector.latency(runner.model, runner.test_dataloader.dataset)
    assert lat["cpu_latency_ms"] > 0 and lat["cpu_latency_p90_ms"] >= lat["cpu_latency_ms"]


def test_detector_keeps_the_epoch_of_best_validation_ap(tmp_path):
    """The selection record is read from mmengine's logged validation scalars; a kept checkpoint
    that is not the first epoch of best validation AP is refused, not reported as chosen on it."""
    from petaction.training import detector
    lines = [{"loss": 1.0, "step": 10}, {"coco/bbox_mAP": 0.3, "coco/bbox_mAP_50": 0.8, "step": 1},
             {"coco/bbox_mAP": 0.5, "coco/bbox_mAP_50": 0.9, "step": 2},
             {"coco/bbox_mAP": 0.5, "coco/bbox_mAP_50": 0.95, "step": 3}, {"coco/bbox_mAP": 0.4, "step": 4}]
    scalars = tmp_path / "scalars.json"
    scalars.write_text("\n".join(json.dumps(x) for x in lines))
    curve = detector.val_curve(scalars)
    assert [c["epoch"] for c in curve] == [1, 2, 3, 4] and curve[1]["box_ap50"] == 0.9
    sel = detector.selection(curve, tmp_path / "best_coco_bbox_mAP_epoch_2.pth", 4)
    assert (sel["best_epoch"], sel["val_box_ap"], sel["epochs"], sel["split"]) == (2, 0.5, 4, "val")
    for wrong in (3, 4):   # a later tie or the last epoch is not what save_best keeps
        with pytest.raises(RuntimeError, match="not the epoch of best validation box AP"):
            detector.selection(curve, tmp_path / f"best_coco_bbox_mAP_epoch_{wrong}.pth", 4)
    with pytest.raises(RuntimeError, match="no validation box AP"):
        detector.selection([], tmp_path / "best_coco_bbox_mAP_epoch_1.pth", 1)


@pytest.mark.slow
def test_detector_run_writes_metrics_and_remeasures(tiny_data):
    from petaction.training import detector
    results, study, _ = tiny_data
    out = detector.out_dir(study, "action", str(results))
    try:
        m = detector.run(study=study, profile="tiny", results_dir=str(results), epochs=2)
        saved = json.loads((out / "metrics.json").read_text())
        assert saved["box_ap"] == m["box_ap"] and saved["n_images"]["test"] > 0 and saved["img_size"] == 32
        sel = saved["selection"]                        # chosen on validation, over both epochs
        assert [c["epoch"] for c in sel["val_curve"]] == [1, 2] and sel["epochs"] == 2
        best = max(sel["val_curve"], key=lambda c: c["box_ap"])
        assert saved["best_checkpoint"] == f"best_coco_bbox_mAP_epoch_{best['epoch']}.pth" == f"best_coco_bbox_mAP_epoch_{sel['best_epoch']}.pth"
        again = detector.measure(out)                   # evaluate's path: rebuilt from config.py + best checkpoint
        assert again["cpu_latency_ms"] > 0 and again["params_m"] == pytest.approx(saved["params_m"])
    finally:   # the tiny study is shared: a detector left there would change what infer's tests localise with
        shutil.rmtree(out, ignore_errors=True)
