"""Every model: the full-profile architecture is the zoo's, and each trains one iteration."""
import pytest

from petaction import params as P
from conftest import one_iteration

MODELS = [m for m in P.names("models") if m != "fast_rcnn"]   # a box-level detector: tests/test_detection.py


def count_params(model_cfg: dict) -> float:
    from petaction import setup
    setup()
    from mmaction.registry import MODELS as REG
    from mmengine.registry import init_default_scope
    init_default_scope("mmaction")
    model = REG.build(model_cfg)
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize("name", MODELS)
def test_full_profile_matches_zoo_parameter_count(name):
    from petaction.models.mmconfig import model_dict
    p = P.resolve_train({"model": name, "profile": "full"})
    zoo = p["zoo"]
    m = model_dict(p, zoo.get("num_classes", 400))
    if "depth" in zoo:                      # the zoo's entry is another depth of the same family
        m["backbone"]["depth"] = zoo["depth"]
    assert count_params(m) == pytest.approx(zoo["params_m"], rel=0.01)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_one_training_iteration_and_a_test_pass(name, tiny_data, tmp_path):
    import json
    from petaction.models import mmconfig
    results, study, data = tiny_data
    p = P.resolve_train({"model": name, "profile": "tiny", "study": study, "results_dir": str(results)})
    classes = json.loads((data / "classes.json").read_text())["classes"]
    cfg = mmconfig.build(p, data, tmp_path, classes, [1] * len(classes))
    runner = one_iteration(cfg)
    metrics = runner.test()
    n_test = len((data / "test.txt").read_text().splitlines())
    hits = metrics["acc/top1"] * n_test                  # every test clip scored once: a whole count
    assert hits == pytest.approx(round(hits), abs=1e-6)
