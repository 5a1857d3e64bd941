"""params/ files, their layering, and the notebooks' parameter cells."""
import copy
import json
import re

import pytest
import yaml

from petaction import params as P
from petaction import study
from petaction.core.paths import NOTEBOOKS, PARAMS, REPO


def test_every_params_key_is_a_notebook_parameter():
    train = P.notebook_parameters("train")
    assert set(P.load_yaml(PARAMS / "base.yaml")) == set(train)
    for kind in ("profiles", "models"):
        for name in P.names(kind):
            layer = P.load_yaml(PARAMS / kind / f"{name}.yaml")
            layer.pop("_base_", None)      # names the file this one layers over (P.layer_file)
            assert set(layer) <= set(train), f"{kind}/{name}.yaml: {set(layer) - set(train)}"
            for prof, section in layer.get("per_profile", {}).items():
                assert prof in P.names("profiles") and set(section) <= set(train)
    s = P.load_yaml(PARAMS / "study.yaml")
    assert set(s) <= set(study.STUDY_DEFAULTS)
    assert set(s["prepare"]) <= set(P.notebook_parameters("prepare"))
    assert set(s["train"]) <= set(P.notebook_parameters("train"))


def test_prepare_notebook_declares_exactly_the_prepare_parameters():
    from petaction.data import prepare
    declared = set(P.notebook_parameters("prepare"))
    assert declared == set(prepare.DEFAULTS) | {"study", "results_dir"}


def test_layering_order():
    p = P.resolve_train({"model": "tsn", "profile": "full"})
    assert (p["lr"], p["epochs"], p["img_size"], p["lite"]) == (0.002, 100, 224, False)
    q = P.resolve_train({"model": "tsn", "profile": "full", "lr": 0.05})
    assert q["lr"] == 0.05 and q["epochs"] == 100
    # layering the same files again with papermill -f changes nothing
    files = {**P.load_yaml(PARAMS / "base.yaml"), **P.load_yaml(PARAMS / "profiles" / "full.yaml"),
             **P.load_yaml(PARAMS / "models" / "tsn.yaml")}
    assert P.resolve_train(files) == p


def test_unknown_names_are_errors_listing_valid_choices():
    with pytest.raises(P.ParamError, match="unknown model 'nope'; valid: .*tsn"):
        P.resolve_train({"model": "nope"})
    with pytest.raises(P.ParamError, match=r"unknown parameter\(s\) \['epoch'\].*valid: .*epochs"):
        P.resolve_train({"model": "tsn", "epoch": 3})
    with pytest.raises(P.ParamError, match="choose one of"):
        P.resolve_train({"model": "tsn", "class_balance": "magic"})
    with pytest.raises(P.ParamError, match="unknown model"):
        study.load_study(None, {"models": ["tsn", "nope"]})
    with pytest.raises(P.ParamError, match="valid:"):
        study.load_study(None, {"modles": ["tsn"]})


def test_resize_is_zero_or_at_least_the_crop():
    assert P.resolve_train({"model": "tsn", "profile": "quick"})["resize"] == 36
    P.resolve_train({"model": "tsn", "profile": "quick", "resize": 0})          # the 8/7 rule
    for bad in (20, 36.5, "36"):
        with pytest.raises(P.ParamError, match="resize must be 0 .* at least img_size 32"):
            P.resolve_train({"model": "tsn", "profile": "quick", "resize": bad})
    # fast_rcnn: the upper end of its training rescale, above its whole frames' img_size
    P.resolve_train({"model": "fast_rcnn", "profile": "quick", "resize": 0})
    for bad in (50, 72, 80.5):
        with pytest.raises(P.ParamError, match="fast_rcnn: resize must be 0 .* above img_size 72"):
            P.resolve_train({"model": "fast_rcnn", "profile": "quick", "resize": bad})


def test_from_notebook_refuses_injected_unknown_names():
    g = {"study": "x", "In": [], "get_ipython": print, "bogus": 1}
    with pytest.raises(P.ParamError, match="bogus"):
        P.from_notebook(g, "evaluate")
    assert P.from_notebook({"study": "x", "models": []}, "evaluate") == {"study": "x", "models": []}


def pins(lines):
    return dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", l.strip()).groups() for l in lines
                if re.match(r"\s*[A-Za-z0-9_.-]+==", l.strip()))


def test_environment_yml_agrees_with_requirements():
    req = pins(open(REPO / "requirements.txt").read().splitlines())
    env = yaml.safe_load(open(REPO / "environment.yml"))
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = pins(pip)
    after = re.search(r"# pinned-after: (.*)", open(REPO / "environment.yml").read()).group(1).split()
    env_pins.update(pins(after))
    assert env_pins == req


def test_notebooks_committed_clean_and_paired():
    import jupytext
    for nb_path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "petaction", nb_path
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, nb_path
        paired = jupytext.read(nb_path.with_suffix(".py"))
        assert [c.source for c in paired.cells] == ["".join(c["source"]) for c in nb["cells"]], \
            f"{nb_path.name} and its .py differ: jupytext --sync {nb_path}"


def test_repeated_yaml_key_is_an_error(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("per_profile:\n  quick: {epochs: 6}\n  quick: {clip_len: 16}\n")
    with pytest.raises(P.ParamError, match="'quick' appears twice"):
        P.load_yaml(f)
    f.write_text("per_profile:\n  quick: {epochs: 6, clip_len: 16}\n")
    assert P.load_yaml(f) == {"per_profile": {"quick": {"epochs": 6, "clip_len": 16}}}


def test_finetune_sections_layer_like_every_setting():
    """base.yaml's finetune, then the profile's (merged per kind), applied for the run's kind of
    init over per_profile; from scratch nothing of it applies."""
    base_ft = P.load_yaml(PARAMS / "base.yaml")["finetune"]
    full_ft = P.load_yaml(PARAMS / "profiles" / "full.yaml")["finetune"]
    scratch = P.resolve_train({"model": "tsn", "profile": "full"})
    zoo = P.resolve_train({"model": "tsn@zoo", "profile": "full"})
    merged = P.deep_merge(base_ft, full_ft)["zoo"]
    assert zoo["finetune"]["zoo"] == merged
    assert zoo["epochs"] == merged["epochs"] != scratch["epochs"]        # over tsn's per_profile.full epochs
    assert zoo["lr"] == pytest.approx(scratch["lr"] * merged["lr_scale"])
    tiny = P.resolve_train({"model": "tsn@action", "profile": "tiny"})   # tiny has no finetune section
    assert tiny["finetune"] == base_ft and tiny["epochs"] == P.resolve_train({"model": "tsn", "profile": "tiny"})["epochs"]


def test_merge_is_mmengines_with_the_delete_marker_kept():
    """A `_delete_` dict replaces what the params layers under it give, and keeps its marker so
    that it replaces the mmaction2 base model's dict too (mmconfig merges that last)."""
    profile = {"model_cfg": {"backbone": {"type": "ResNet", "depth": 18}}}
    model = {"model_cfg": {"backbone": {"_delete_": True, "type": "ResNeXt", "groups": 32}}}
    before = copy.deepcopy(model)
    layered = P.deep_merge(profile, model)
    assert layered["model_cfg"]["backbone"] == {"type": "ResNeXt", "groups": 32, "_delete_": True}
    assert model == before                                       # the layers are not consumed
    mm_base = {"backbone": {"type": "ResNet", "depth": 50, "pretrained": "x.pth"}, "cls_head": {"type": "TSNHead"}}
    built = P.strip_delete(P.deep_merge(mm_base, layered["model_cfg"]))
    assert built == {"backbone": {"type": "ResNeXt", "groups": 32}, "cls_head": {"type": "TSNHead"}}
    assert P.deep_merge({"a": {"b": 1, "c": [1, 2]}}, {"a": {"c": [3]}}) == {"a": {"b": 1, "c": [3]}}
    with pytest.raises(P.ParamError, match="_delete_"):          # mmengine's rule: a dict over a value
        P.deep_merge({"backbone": None}, {"backbone": {"depth": 18}})
