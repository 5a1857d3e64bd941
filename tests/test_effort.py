"""The methods table's equal-footing columns: the training settings that differ between the
models (weight decay always) and the recipe-search runs each model file received."""
import json
from collections import Counter

from petaction.reporting import effort


def curve(steps):
    return [{"step": s, "train_loss_ema": 1.0, "val_top1": 0.5, "cpu_s": 1} for s in steps]


def test_recipe_runs_count_tuning_runs_per_model_file(tmp_path):
    path = tmp_path / "recipe_search.json"
    path.write_text(json.dumps({"runs": [
        {"name": "a", "spec": {"model": "tsn"}, "curve": curve([100, 200])},
        {"name": "b", "spec": {"model": "tsn"}, "curve": curve([100, 600])},
        {"name": "probe", "spec": {"model": "tsn"}, "curve": curve([30])},        # a timing probe
        {"name": "c", "spec": {"model": "fast_rcnn"}, "curve": curve([500])},
        {"name": "stopped", "spec": {"model": "fast_rcnn"}, "curve": []}]}))
    assert effort.recipe_runs(path) == Counter({"tsn": 2, "fast_rcnn": 1})
    assert effort.recipe_runs(tmp_path / "absent.json") == Counter()
    assert "No recipe-search record" in effort.note(Counter())


def test_the_committed_record_counts_every_model_file_it_tuned():
    counts = effort.recipe_runs()
    runs = json.loads(effort.RECIPE_SEARCH.read_text())["runs"]
    assert set(counts) <= {r["spec"]["model"] for r in runs} and counts["fast_rcnn"] > 0
    assert f"{sum(counts.values())} runs" in effort.note(counts)


def test_columns_show_what_differs_and_the_weight_decay_always():
    base = {"model": "tsm", "seed": 0, "lr": 0.01, "weight_decay": 1e-4, "optimizer": "SGD", "grad_clip": 40,
            "model_cfg": {"a": 1}, "init": "scratch", "num_workers": 2}
    rp = {"tsm": base, "tsm@action": {**base, "model": "tsm@action", "init": "action", "model_cfg": {"a": 2}},
          "fast_rcnn": {**base, "model": "fast_rcnn", "weight_decay": 0.5, "optimizer": "AdamW", "num_workers": 0}}
    assert effort.differing(rp) == ["weight_decay", "optimizer"]   # not model, init, model_cfg nor num_workers
    cols = effort.columns(rp, ["tsm", "tsm@action", "fast_rcnn"], Counter({"tsm": 3, "fast_rcnn": 12}))
    assert cols["fast_rcnn"] == {"weight_decay": 0.5, "optimizer": "AdamW", "Recipe runs": 12}
    assert cols["tsm@action"]["Recipe runs"] == 3   # its recipe is tsm's
    same = effort.columns({"tsm": base, "tsn": {**base, "model": "tsn"}}, ["tsm", "tsn"], Counter())
    assert same["tsn"] == {"weight_decay": 1e-4, "Recipe runs": 0}
