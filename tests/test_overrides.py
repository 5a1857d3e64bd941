"""-p overrides merge key by key over the layers below, and dotted keys reach into a section,
as mmengine's --cfg-options: on the study command and on every `python -m petaction` verb."""
import pytest

from petaction import params as P
from petaction import study
from petaction.__main__ import main, parse_pairs
from petaction.core.dicts import from_dotted
from petaction.core.paths import PARAMS

STUDY_FILE = PARAMS / "study.yaml"


def test_dotted_keys_nest_and_pairs_merge_in_order():
    assert parse_pairs([["prepare.seed", "7"], ["train.lr", "0.002"], ["models", "[tsn]"]]) == \
        {"prepare": {"seed": 7}, "train": {"lr": 0.002}, "models": ["tsn"]}
    # a mapping and a dotted key of the same section both hold; a later value of one key wins
    assert parse_pairs([["prepare", "{seed: 7, margin: 0.1}"], ["prepare.margin", "0.2"]]) == \
        {"prepare": {"seed": 7, "margin": 0.2}}
    assert from_dotted([("target_train.emotion.epochs", 8)]) == {"target_train": {"emotion": {"epochs": 8}}}
    with pytest.raises(P.ParamError, match="empty part"):
        parse_pairs([["prepare.", "7"]])


@pytest.mark.parametrize("pairs", [[["prepare.seed", "7"]], [["prepare", "{seed: 7}"]]])
def test_a_prepare_override_keeps_every_other_prepare_key_of_the_file(pairs):
    file_prepare = P.load_yaml(STUDY_FILE)["prepare"]
    assert file_prepare["seed"] != 7 and len(file_prepare) > 1
    cfg = study.load_study(STUDY_FILE, parse_pairs(pairs))
    assert cfg["prepare"] == {**file_prepare, "seed": 7}


def test_delete_replaces_a_section_as_in_mmengine():
    cfg = study.load_study(STUDY_FILE, parse_pairs([["prepare", "{_delete_: true, seed: 7}"]]))
    assert cfg["prepare"] == {"seed": 7}


def test_the_study_command_merges_without_running_the_study(monkeypatch):
    seen = []
    monkeypatch.setattr(study, "run", lambda cfg, force=False, log=None: seen.append(cfg) or [])
    assert main(["study", "-f", str(STUDY_FILE), "-p", "prepare.seed", "7", "-p", "train.lr", "0.002",
                 "-p", "evaluate.cost_repeats", "3"]) == 0
    file = P.load_yaml(STUDY_FILE)
    cfg, = seen
    assert cfg["prepare"] == {**file["prepare"], "seed": 7}
    assert cfg["train"] == {**file["train"], "lr": 0.002} and cfg["evaluate"] == {"cost_repeats": 3}
    assert cfg["models"] == file["models"] and cfg["target_models"] == file["target_models"]
    # the section's value reaches every training of the study
    assert P.resolve_train(study.step_params(cfg, "action", "tsn", 0, 0))["lr"] == 0.002


def test_unknown_dotted_keys_are_refused_with_the_valid_choices(capsys):
    with pytest.raises(P.ParamError, match=r"unknown parameter\(s\) \['sed'\] in study prepare section; valid: .*seed"):
        study.load_study(STUDY_FILE, parse_pairs([["prepare.sed", "7"]]))
    with pytest.raises(P.ParamError, match=r"unknown parameter\(s\) \['epoch'\] in study train section; valid: .*epochs"):
        study.load_study(STUDY_FILE, parse_pairs([["train.epoch", "3"]]))
    assert main(["study", "-f", str(STUDY_FILE), "-p", "prepre.seed", "7"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "prepre" in err and "prepare" in err


def test_train_overrides_merge_into_nested_settings(monkeypatch):
    """`python -m petaction train -p model_cfg_lite.backbone.depth 34` changes that key only
    (the backbone's type and width stay, and the head); the finetune section merges per kind
    of init; an unknown key is still refused."""
    from petaction.training import train
    seen = []
    monkeypatch.setattr(train, "run", lambda p: seen.append(p) or {"test": {}})
    layered = P.resolve_train({"model": "tsn", "profile": "quick"})["model_cfg_lite"]
    assert layered["backbone"]["depth"] != 34 and len(layered["backbone"]) > 1 and "cls_head" in layered
    assert main(["train", "-p", "model", "tsn", "-p", "profile", "quick", "-p", "model_cfg_lite.backbone.depth",
                 "34", "-p", "finetune.zoo.lr_scale", "0.3", "-p", "lr", "0.002"]) == 0
    p, = seen
    assert p["model_cfg_lite"] == {**layered, "backbone": {**layered["backbone"], "depth": 34}}
    layered = P.resolve_train({"model": "tsn", "profile": "quick"})
    assert p["finetune"]["zoo"] == {**layered["finetune"]["zoo"], "lr_scale": 0.3}
    assert p["finetune"]["run"] == layered["finetune"]["run"] and p["lr"] == 0.002
    with pytest.raises(P.ParamError, match=r"unknown parameter\(s\) \['finetun'\].*valid: .*finetune"):
        P.resolve_train(parse_pairs([["model", "tsn"], ["finetun.zoo.lr_scale", "0.3"]]))


def test_prepare_and_evaluate_verbs_take_the_same_pairs(monkeypatch):
    import pandas as pd
    from petaction.data import prepare
    from petaction.evaluation import evaluate
    seen = {}

    def fake_prepare(**kw):
        seen["prepare"] = kw
        return {"clips_kept": 0, "rejected": 0, "data_dir": ""}

    def fake_evaluate(**kw):
        seen["evaluate"] = kw
        return {"summary": pd.DataFrame()}

    monkeypatch.setattr(prepare, "prepare", fake_prepare)
    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
    assert main(["prepare", "-p", "study", "x", "-p", "seed", "7"]) == 0
    assert main(["evaluate", "-p", "study", "x", "-p", "models", "[tsn, tsm]"]) == 0
    assert seen == {"prepare": {"study": "x", "seed": 7}, "evaluate": {"study": "x", "models": ["tsn", "tsm"]}}
