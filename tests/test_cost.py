"""What a prediction costs: the timed forward is the test step, views and head included."""
import json
import time

import numpy as np
import pytest
import torch

from petaction.evaluation import cost, forward
from petaction import params as P

N_CLASSES = 5


def tiny(name, **over):
    """A model of the tiny profile with random weights, built from its resolved parameters as a
    run's config.py builds it; and those parameters."""
    p = P.resolve_train({"model": name, "profile": "tiny", **over})
    torch.manual_seed(0)
    return forward.build_model(p, N_CLASSES), p


def packed_by_test_pipeline(p, n_frames=20, seed=1):
    """One clip of random frames through the run's own test pipeline (frames from an array
    instead of files): (mmaction2's packed result, the raw video dict, the pipeline)."""
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope
    from petaction.training import detection
    from petaction.deploy import infer
    from petaction.models import mmconfig
    init_default_scope("mmaction")
    rng = np.random.default_rng(seed)
    s = p["img_size"]
    shape = (s, round(s * forward.FRAME_ASPECT)) if forward.is_fast_rcnn_params(p) else (s + 8, s + 12)
    video = dict(array=rng.integers(0, 256, (n_frames, *shape, 3), dtype=np.uint8), total_frames=n_frames,
                 start_index=0, modality="RGB", label=1)
    if forward.is_fast_rcnn_params(p):   # fast_rcnn's pipeline reads each frame's pet box
        h, w = shape
        video.update(boxes=np.tile(np.float32([[w * 0.2, h * 0.3, w * 0.7, h * 0.9]]), (n_frames, 1)),
                     n_classes=N_CLASSES)
        test = detection.pipelines(p)[1]
    else:
        test = mmconfig.pipelines(p)[1]
    pipeline = Compose(infer.array_pipeline(test))
    return pipeline(dict(video)), video, pipeline


@pytest.mark.parametrize("name", P.names("models"))
def test_the_timed_forward_is_the_test_step(name):
    """For every model file: the test pipeline's packed clip has the example input's shape and
    dtype (all its views), and the forward cost.py times gives inference_recognizer's /
    the test step's class scores on it (1e-5)."""
    model, p = tiny(name)
    net = forward.build(model)
    packed, video, pipeline = packed_by_test_pipeline(p)
    example = forward.example_inputs(p)
    assert packed["inputs"].shape == example[0].shape[1:] and packed["inputs"].dtype == example[0].dtype
    if forward.is_box_model(model):
        from mmengine.dataset import pseudo_collate
        args = (packed["inputs"][None], packed["data_samples"].proposals.bboxes)
        with torch.no_grad():
            want = model.test_step(pseudo_collate([packed]))[0].pred_instances.scores.numpy()
    else:
        from mmaction.apis import inference_recognizer
        args = (packed["inputs"][None],)
        want = inference_recognizer(model, dict(video), pipeline).pred_score.numpy()[None]
    with torch.no_grad():
        got = net(*args).numpy()
    assert got.shape == (1, N_CLASSES)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # a batch (what throughput times) scores each clip as the test step does alone
    batch = forward.example_inputs(p, batch=2, seed=3)
    with torch.no_grad():
        np.testing.assert_allclose(net(*batch).numpy(), forward.test_step_scores(model, *batch), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", P.names("models"))
def test_gflops_count_the_whole_forward_head_included(name):
    """FLOPs of the timed forward include the head: more than the backbone alone on the same
    input (what the recogniser's ``model(x)``, mmaction2's tensor mode, counted), and at least
    one product of the classifier more."""
    from mmengine.analysis import FlopAnalyzer
    model, p = tiny(name)
    x = forward.example_inputs(p)
    whole = FlopAnalyzer(forward.build(model), x)
    whole.unsupported_ops_warnings(False)
    whole.uncalled_modules_warnings(False)
    box = forward.is_box_model(model)
    backbone_only = cost.gflops(model.backbone if box else model, forward.preprocess(model, x[0])) * 1e9
    head = "roi_head" if box else "cls_head"
    fc = [m for m in getattr(model, head).modules() if isinstance(m, torch.nn.Linear)][-1]
    head_flops = whole.by_module()["model." + head]
    assert head_flops >= fc.in_features * fc.out_features
    assert whole.total() >= backbone_only + head_flops > backbone_only
    assert cost.gflops(forward.build(model), x) == pytest.approx(whole.total() / 1e9)


def fake_run(tmp_path, name, **over):
    """A run folder as cost.measure reads it (config.py and params.json), without training."""
    from mmengine.config import Config
    from petaction.models import mmconfig
    p = P.resolve_train({"model": name, "profile": "tiny", **over})
    run = tmp_path / f"{name}_{over.get('test_clips', 1)}" / "seed0"
    run.mkdir(parents=True)
    Config(dict(model=mmconfig.model_dict(p, N_CLASSES))).dump(str(run / "config.py"))
    (run / "params.json").write_text(json.dumps(p))
    return run


def test_the_timed_input_holds_every_test_view(tmp_path):
    """A 3D model tested on two clips per prediction: the pipeline packs two views, the timed
    input holds both, and its FLOPs are twice one view's (the head is small)."""
    _, p = tiny("i3d", test_clips=2)
    packed, _, _ = packed_by_test_pipeline(p)
    assert packed["inputs"].shape[0] == 2
    one, two = fake_run(tmp_path, "i3d"), fake_run(tmp_path, "i3d", test_clips=2)
    assert cost.timing_inputs(two, 4)["x"][0].shape[:2] == (1, 2)
    assert cost.timing_inputs(two, 4)["xb"][0].shape[:2] == (4, 2)
    rows = cost.measure([one, two], warmup=1, repeats=3, batch=2, min_time_s=0.1, rounds=3)
    assert [r["views"] for r in rows] == [1, 2]
    assert rows[1]["gflops"] == pytest.approx(2 * rows[0]["gflops"], rel=0.02)
    for r in rows:
        assert r["repeats"] >= 3 and r["calls"] >= r["repeats"] and r["cpu_latency_p90_ms"] >= r["cpu_latency_ms"] > 0
        assert r["headroom"] == pytest.approx(1000.0 / r["cpu_latency_p90_ms"])


def test_interleaved_measurements_visit_every_model_each_round_and_time_enough_calls():
    order = []

    def fn(name, s):
        def call():
            order.append(name)
            time.sleep(s)
        return call
    ms = cost.interleaved_measurements([fn("fast", 0.002), fn("slow", 0.05)], warmup=2, repeats=6,
                                       min_time_s=0.1, rounds=3)
    assert order[:4] == ["fast", "fast", "slow", "slow"]          # warm-up of each first
    visits = [order[0]]                    # consecutive calls of one model: one visit
    for o in order[1:]:
        if o != visits[-1]:
            visits.append(o)
    assert visits == ["fast", "slow"] * 4   # warm-up, then 3 rounds each model in turn; the slow one's extra rounds last
    fast, slow = (cost.measurement_stats(m) for m in ms)
    assert slow["repeats"] >= 6 and fast["repeats"] >= 6          # the slow one (one call a round) got more rounds
    assert fast["calls"] * 0.002 >= 0.1 * 0.95                    # the time budget was filled with timed calls
    assert fast["calls"] + 2 <= order.count("fast") and slow["calls"] + 2 <= order.count("slow")
    assert 45 < slow["median_ms"] <= slow["p90_ms"] < 250


def test_timer_runs_at_the_process_thread_count():
    seen = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cost.timer(lambda: seen.append(torch.get_num_threads())).blocked_autorange(min_run_time=0.01)
    finally:
        torch.set_num_threads(threads)
    assert set(seen) == {2}


def test_fast_rcnn_is_timed_on_its_whole_frames_and_one_roi(tmp_path):
    """fast_rcnn's run is measured like the recognisers (scores out, FLOPs of the whole forward),
    on frames of its run's shape with one RoI per clip."""
    import cv2
    from mmengine.config import Config
    from petaction.training import detection
    p = P.resolve_train({"model": "fast_rcnn", "profile": "tiny"})
    data = tmp_path / "data"
    (data / "frames" / "clip0").mkdir(parents=True)
    (data / "test.txt").write_text("clip0 10 1\n")
    cv2.imwrite(str(data / "frames" / "clip0" / "img_00001.jpg"), np.zeros((32, 40, 3), np.uint8))
    run = tmp_path / "fast_rcnn" / "seed0"
    run.mkdir(parents=True)
    Config(dict(model=detection.model_dict(p, N_CLASSES))).dump(str(run / "config.py"))
    (run / "params.json").write_text(json.dumps(p))
    (run / "metrics.json").write_text(json.dumps({"data_dir": str(data)}))
    it = cost.timing_inputs(run, 3)
    assert it["x"][0].shape == (1, 3, p["clip_len"], 32, 40) and it["xb"][1].shape == (3, 4)
    with torch.no_grad():
        assert it["net"](*it["xb"]).shape == (3, N_CLASSES)
    (row,) = cost.measure([run], warmup=1, repeats=3, batch=3, min_time_s=0.1, rounds=3)
    assert row["boxes_per_prediction"] == 1 and row["views"] == 1
    assert row["gflops"] == pytest.approx(cost.gflops(it["net"], it["x"]))
    assert row["gflops"] > cost.gflops(it["net"].model.backbone, forward.preprocess(it["net"].model, it["x"][0]))


def test_evaluation_re_times_no_model_whose_cost_inputs_are_unchanged(tiny_run, tmp_path, monkeypatch):
    """An evaluation re-run for a reason of its own (the report's or the docs' code changed the
    package's digest) re-scores but re-times nothing: each model's cost row comes from
    evaluation/cost_cache/ while its architecture, inputs, timing code and settings and the
    machine are the same; a changed timing setting times it again."""
    first = cost.measure_runs([tiny_run], tmp_path, repeats=2)
    timed = []
    real = cost.measure
    monkeypatch.setattr(cost, "measure", lambda runs, *a, **k: timed.append(list(runs)) or real(runs, *a, **k))
    again = cost.measure_runs([tiny_run], tmp_path, repeats=2)
    assert timed == []
    assert again.equals(first)
    cost.measure_runs([tiny_run], tmp_path, update_hz=2.0, repeats=2)
    assert timed == [[tiny_run]]
