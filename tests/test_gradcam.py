"""Grad-CAM (evaluation/gradcam.py): the clips, one figure per model of a tiny study, the map
following the checkpoint, the box-level model's in-box share, the report section."""
import json
import shutil

import numpy as np
import pytest
import torch

from petaction import params as P
from petaction.core import paths
from petaction.core.fmt import pct
from petaction.evaluation import gradcam

# one of each kind GradCAM meets: 2D (segments), 3D, SlowFast's two pathways, the box-level model
MODELS = ["tsm", "x3d", "slowfast", "fast_rcnn"]


def test_in_box_share_of_a_planted_map():
    box = (2, 1, 6, 5)                                   # x0, y0, x1, y1: columns 2-5, rows 1-4
    inside = np.zeros((8, 10))
    inside[1:5, 2:6] = 1.0
    assert gradcam.box_share(inside, box) == (1.0, 16 / 80)
    assert gradcam.box_share(np.ones((8, 10)), box) == pytest.approx((16 / 80, 16 / 80))   # even: the area share
    planted = np.zeros((8, 10))
    planted[2, 3], planted[7, 9] = 3.0, 1.0              # three quarters of the mass on the pet
    assert gradcam.box_share(planted, box)[0] == pytest.approx(0.75)
    assert np.isnan(gradcam.box_share(np.zeros((8, 10)), box)[0])
    s = gradcam.box_summary([0.75, 0.5, 0.9, 0.8], [0.2] * 4)
    assert s["in_box_share"] == pytest.approx(0.7375) and s["box_area_share"] == pytest.approx(0.2)
    assert s["in_box_ci_low"] <= s["in_box_share"] <= s["in_box_ci_high"] and s["diff_ci_low"] > 0


def test_clips_one_per_class_seeded_with_the_order_only_ones(tiny_data):
    _, _, data = tiny_data
    meta = json.loads((data / "classes.json").read_text())
    a = gradcam.choose_clips(data, meta["classes"], meta["order_only"])
    test = {c: lab for c, _, lab in gradcam.read_split(data, "test")}
    assert sorted(a["label_index"]) == sorted(set(test.values()))          # every class of the test split, once
    assert all(test[c] == i for c, i in zip(a["clip"], a["label_index"]))
    assert set(a.loc[a["order_only"], "label"]) == set(meta["order_only"]) & set(a["label"])
    assert a.equals(gradcam.choose_clips(data, meta["classes"], meta["order_only"]))   # a fixed rule
    two = gradcam.choose_clips(data, meta["classes"], meta["order_only"], per_class=2)
    assert len(two) > len(a) and set(a["label"]) == set(two["label"])
    with pytest.raises(ValueError, match="per_class"):
        gradcam.choose_clips(data, meta["classes"], meta["order_only"], per_class=0)


@pytest.fixture(scope="module")
def tiny_study(tiny_data, tmp_path_factory):
    """The tiny study's data in a results folder of its own, with one tiny run of each kind."""
    from petaction.training import train
    results, study, _ = tiny_data
    mine = tmp_path_factory.mktemp("gradcam_results")
    shutil.copytree(results / study, mine / study, ignore=shutil.ignore_patterns("models", "detector"))
    n_train = len(gradcam.read_split(mine / study / "data", "train"))
    batch = next(b for b in (4, 3, 5) if n_train % b != 1)   # a last batch of one clip: SlowFast's 1x1x1 BatchNorm fails
    runs = {}
    for m in MODELS:
        p = P.resolve_train({"model": m, "profile": "tiny", "study": study, "seed": 0, "results_dir": str(mine),
                             "batch_size": batch})
        train.run(p)
        runs[m] = paths.run_dir(study, m, 0, "action", mine)
    root = paths.target_dir(study, "action", mine)
    out = root / "evaluation" / "gradcam"
    return {"root": root, "runs": runs, "out": out, "record": gradcam.run(root, runs, out)}


def test_one_figure_per_model_from_its_own_run(tiny_study):
    g, out = tiny_study["record"], tiny_study["out"]
    assert not g["skipped"], g["skipped"]
    assert list(g["models"]) == MODELS and (out / g["grid"]).is_file()
    spread = {}
    for m, rec in g["models"].items():
        assert (out / rec["figure"]).stat().st_size > 1000
        z = np.load(out / rec["maps"])
        assert list(z["clips"]) == [c["clip"] for c in g["clips"]]
        for i in range(len(z["clips"])):
            cam, frames = z[f"map_{i}"].astype(float), z[f"frames_{i}"]
            assert cam.shape == frames.shape[:3] and cam.min() >= 0 and cam.max() <= 1 + 1e-3
            spread.setdefault(m, []).append(float((cam.max((1, 2)) - cam.min((1, 2))).max()))
    assert all(max(v) > 0.1 for v in spread.values()), spread    # a map with a place in it, not 1 x 1
    assert g["models"]["slowfast"]["layer"].startswith("backbone/slow_path/")
    rows = __import__("pandas").read_csv(out / "gradcam.csv")
    assert len(rows) == len(MODELS) * len(g["clips"])
    scores = np.load(tiny_study["runs"]["tsm"] / "test_scores.npz")            # the run's own prediction
    ids = list(scores["ids"])
    tsm = rows[rows["model"] == "tsm"]
    classes = list(scores["classes"])
    for c, pred in zip(tsm["clip"], tsm["pred"]):
        assert classes[scores["scores"][ids.index(c)].argmax()] == pred


def test_the_box_model_s_frame_its_box_and_in_box_share(tiny_study):
    g, out = tiny_study["record"], tiny_study["out"]
    assert list(g["box"]) == ["fast_rcnn"]
    b = g["box"]["fast_rcnn"]
    z = np.load(out / "fast_rcnn.npz")
    shares, areas = [], []
    for i in range(len(z["clips"])):
        cam = z[f"map_{i}"].astype(float)
        frames = z[f"frames_{i}"]
        assert frames.shape[2] > frames.shape[1]                 # the whole 4:3 frame, not a square crop
        s, a = gradcam.box_share(cam[gradcam.key_frame(len(cam))], z[f"box_{i}"])
        shares.append(s)
        areas.append(a)
    mapped = ~np.isnan(shares)                                   # a map zero everywhere has no share
    assert 0 < b["box_area_share"] < 1 and (b["n_clips"], b["n_empty"]) == (mapped.sum(), (~mapped).sum())
    assert b["in_box_share"] == pytest.approx(np.mean(np.array(shares)[mapped]), abs=2e-3)   # maps saved in float16
    assert b["box_area_share"] == pytest.approx(np.mean(np.array(areas)[mapped]))
    assert b["in_box_ci_low"] <= b["in_box_share"] <= b["in_box_ci_high"]


def test_a_changed_checkpoint_changes_the_map(tiny_study, tmp_path):
    run = tiny_study["runs"]["tsm"]
    clips = [c["clip"] for c in tiny_study["record"]["clips"]][:2]
    model = gradcam.load(run)
    ds = gradcam.test_dataset(model)
    before = gradcam.maps(model, ds, clips)["clips"]
    again = gradcam.maps(gradcam.load(run), ds, clips)["clips"]
    other = tmp_path / "seed0"
    shutil.copytree(run, other)
    ckpt = next(other.glob("best_*.pth"))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    g = torch.Generator().manual_seed(0)
    for k, v in state["state_dict"].items():
        if k.startswith("backbone.") and v.is_floating_point() and v.dim() > 1:
            v.add_(torch.randn(v.shape, generator=g) * v.std())
    torch.save(state, ckpt)
    from petaction.models.checkpoints import record_checkpoint
    record_checkpoint(ckpt)                                  # written here: as trusted as the training's own
    after = gradcam.maps(gradcam.load(other), ds, clips)["clips"]
    for c in clips:
        assert np.allclose(before[c]["map"], again[c]["map"], atol=1e-5)        # the same weights, the same map
        assert not np.allclose(before[c]["map"], after[c]["map"], atol=1e-2)    # other weights, another map


def test_report_section_states_the_files(tiny_study):
    from petaction.reporting import gradcam_section
    g = tiny_study["record"]
    items = gradcam_section.section({"eval": tiny_study["out"].parent, "target": "action"})
    text = "\n".join(v for k, v in items if k == "md")
    imgs = [v for k, v in items if k == "img"]
    assert len(imgs) == 1 + len(MODELS) and all(__import__("os").path.isfile(i) for i in imgs)
    for c in g["clips"]:
        assert c["label"] in text
    for m in g["models"].values():
        assert f"`{m['layer']}`" in text
    b = g["box"]["fast_rcnn"]
    for key in ("in_box_share", "in_box_ci_low", "in_box_ci_high", "box_area_share"):
        assert pct(b[key]) in text
