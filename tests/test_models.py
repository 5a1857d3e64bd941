"""Every model: the full-profile architecture is the zoo's, and each trains one iteration."""
import pytest

from petaction import params as P

MODELS = P.names("models")


def count_params(model_cfg: dict) -> float:
    from petaction import mmcompat  # noqa: F401
    from mmaction.registry import MODELS as REG
    from mmengine.registry import init_default_scope
    init_default_scope("mmaction")
    model = REG.build(model_cfg)
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize("name", MODELS)
def test_full_profile_matches_zoo_parameter_count(name):
    from petaction.mmconfig import model_dict
    p = P.resolve_train({"model": name, "profile": "full"})
    zoo = p["zoo"]
    m = model_dict(p, zoo.get("num_classes", 400))
    if "depth" in zoo:                      # the zoo's entry is another depth of the same family
        m["backbone"]["depth"] = zoo["depth"]
    assert count_params(m) == pytest.approx(zoo["params_m"], rel=0.01)


def test_every_model_is_in_the_default_study():
    s = P.load_yaml(P.PARAMS / "study.yaml")
    assert sorted(s["models"]) == sorted(m for m in MODELS)
