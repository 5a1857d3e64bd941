"""The init training parameter: where a training's first weights come from (pretrained.py),
fine-tuning settings, the trust rule for checkpoints from elsewhere, and the paired comparison
of runs that differ only in init (transfer.py)."""
import json
import os
import pickle
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY_PREPARE
from petaction import params as P
from petaction.models import pretrained
from petaction.evaluation import transfer


# ---- syntax and layering (fast) ----

def test_init_forms_and_model_names():
    assert [pretrained.parse(v).kind for v in ("scratch", "zoo", "action", "emotion:tsm@zoo", "/x/y.pth",
                                               "https://host/a.pth")] == ["scratch", "zoo", "run", "run",
                                                                          "checkpoint", "checkpoint"]
    assert pretrained.parse("emotion:tsm@zoo").model == "tsm@zoo"
    assert pretrained.split_label("tsm") == ("tsm", None)
    assert pretrained.split_label("tsn@action:tsm") == ("tsn", "action:tsm")
    with pytest.raises(pretrained.InitError, match="checkpoint file is given as the init parameter"):
        pretrained.split_label("tsm@/data/k400.pth")
    with pytest.raises(pretrained.InitError, match="name the source model"):
        pretrained.parse("action:")
    assert set(pretrained.TARGETS) == set(P.CHOICES["target"])


def test_model_at_init_resolves_to_its_file_with_the_finetune_settings():
    plain = P.resolve_train({"model": "tsm", "profile": "quick"})
    tuned = P.resolve_train({"model": "tsm@action", "profile": "quick"})
    assert (tuned["model"], tuned["init"], plain["init"]) == ("tsm@action", "action", "scratch")
    scale = tuned["finetune"]["run"]["lr_scale"]
    assert tuned["lr"] == pytest.approx(plain["lr"] * scale) and scale != 1
    assert {k for k in plain if plain[k] != tuned[k]} == {"model", "init", "lr"}
    # an explicit learning rate is kept as given; the files' lr is scaled
    assert P.resolve_train({"model": "tsm@action", "profile": "quick", "lr": 0.01})["lr"] == 0.01
    # a finetune section layers train parameters over per_profile, under explicit overrides
    ft = {"zoo": {"epochs": 3, "lr_scale": 0.5}}
    q = P.resolve_train({"model": "tsm", "profile": "full", "init": "zoo", "finetune": ft})
    assert q["epochs"] == 3 and q["lr"] == pytest.approx(P.resolve_train({"model": "tsm", "profile": "full"})["lr"] * 0.5)
    assert P.resolve_train({"model": "tsm", "profile": "full", "init": "zoo", "finetune": ft, "epochs": 7})["epochs"] == 7


def test_bad_inits_are_refused_with_the_fix():
    with pytest.raises(P.ParamError, match="names init 'zoo' but init is 'action'"):
        P.resolve_train({"model": "tsm@zoo", "init": "action"})
    with pytest.raises(P.ParamError, match="no such checkpoint file"):
        P.resolve_train({"model": "tsm", "init": "no/such.pth"})
    with pytest.raises(P.ParamError, match=r"unknown parameter\(s\) \['epoch'\] in finetune.zoo"):
        P.resolve_train({"model": "tsm", "init": "zoo", "finetune": {"zoo": {"epoch": 3}}})
    with pytest.raises(P.ParamError, match="fast_rcnn trains from scratch only"):
        P.resolve_train({"model": "fast_rcnn@zoo"})


# ---- the model zoo: URLs from the installed metafile, never downloaded here ----

def test_zoo_url_of_every_model_comes_from_the_installed_metafile(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    found, none = {}, []
    for name in P.names("models"):
        p = P.resolve_train({"model": name, "profile": "full"})
        zoo = p["zoo"].get("name")
        if not zoo:
            continue
        try:
            entry = pretrained.zoo_entry(p)
        except pretrained.InitError as e:
            assert zoo in str(e) and "no metafile.yml" in str(e)
            none.append(name)
            continue
        url = entry["url"]
        # mmaction2's zoo convention: .../<config name>/<config name>_<date>-<hash>.pth
        assert url.startswith("https://download.openmmlab.com/mmaction/"), url
        assert re.fullmatch(rf"{re.escape(zoo)}_\d{{8}}-[0-9a-f]{{8}}\.pth", url.rsplit("/", 1)[1]), url
        assert Path(entry["config"]).stem == zoo and Path(entry["metafile"]).is_file()
        cached = pretrained.cache_file(url)
        assert cached == tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
        found[name] = url
    # mmaction2 1.2.0's metafile lists no MobileNetV2 TSM weights (its entry repeats the R101 one)
    assert none == ["tsm_mobilenetv2"]
    assert found["tsm_balanced"] == found["tsm"] and len(set(found.values())) == len(found) - 1
    assert not list(tmp_path.rglob("*.pth"))   # nothing downloaded


def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def refuse(url, dst, *a, **k):
        raise urllib.error.URLError("no network (test)")
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_offline_zoo_fails_before_training_with_what_to_download_and_exit_2(monkeypatch, tmp_path, tiny_data, capsys):
    from petaction.__main__ import main
    results, study, _ = tiny_data
    offline(monkeypatch, tmp_path)
    rc = main(["train", "-p", "model", "tsn@zoo", "-p", "profile", "full", "-p", "study", study,
               "-p", "results_dir", str(results), "-p", "seed", "91"])
    err = capsys.readouterr().err
    p = P.resolve_train({"model": "tsn", "profile": "full"})
    url = pretrained.zoo_entry(p)["url"]
    assert rc == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert url in err and url.rsplit("/", 1)[1] in err and str(tmp_path / "torch" / "hub" / "checkpoints") in err
    run = results / study / "models" / "tsn@zoo" / "seed91"
    assert not (run / "config.py").exists()   # failed before training started


# ---- the trust rule: files this study did not write load weights-only ----

class NotATensor:
    pass


def test_downloaded_and_foreign_checkpoints_load_weights_only(monkeypatch, tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    offline(monkeypatch, tmp_path)
    url = "https://example.org/ckpts/foreign_20990101-00000000.pth"
    cached = pretrained.cache_file(url)
    cached.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(2)}}, cached)
    assert torch.equal(_load_checkpoint(url)["state_dict"]["w"], torch.ones(2))   # from the cache, no download
    torch.save({"state_dict": {"w": torch.ones(2)}, "obj": NotATensor()}, cached)
    with pytest.raises(ValueError, match="loads weights-only"):
        _load_checkpoint(url)
    local = tmp_path / "foreign.pth"
    torch.save({"obj": NotATensor()}, local)
    with pytest.raises(ValueError, match="loads weights-only"):
        _load_checkpoint(str(local))
    with pytest.raises(pretrained.InitError, match=re.escape(cached.name.replace("foreign", "other"))):
        _load_checkpoint(url.replace("foreign", "other"))                 # not cached, offline


# ---- loading a checkpoint written by a tiny training ----

@pytest.fixture(scope="module")
def source(tiny_data):
    """The tiny study with its emotion target prepared too and a 1-epoch TSM (seed 17) trained on
    the action target."""
    from petaction.data import prepare
    from petaction.training import train
    results, study, _ = tiny_data
    prepare.prepare(study=study, results_dir=results, target="emotion", **TINY_PREPARE)
    train.run(P.resolve_train({"model": "tsm", "profile": "tiny", "study": study, "results_dir": str(results),
                               "seed": SEED}))
    run = results / study / "models" / "tsm" / f"seed{SEED}"
    ckpt = run / json.loads((run / "metrics.json").read_text())["best_checkpoint"]
    return results, torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"], ckpt


SEED = 17


def first_step_weights(results, model: str, target: str, **over):
    """The model's tensors when its first training step starts (mmengine's Runner, one iteration)
    and the run's init record."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    from petaction.models import mmconfig
    from petaction.training import train

    p = P.resolve_train({"model": model, "profile": "tiny", "study": "tiny", "target": target, "seed": SEED,
                         "results_dir": str(results), **over})
    data = train.data_dir("tiny", target, results)
    classes = json.loads((data / "classes.json").read_text())["classes"]
    run = Path(results) / "tiny" / ("" if target == "action" else target) / "models" / model / f"seed{SEED}"
    run.mkdir(parents=True, exist_ok=True)
    cfg = mmconfig.build(p, data, run, classes, [1] * len(classes))
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=1, val_interval=10)
    cfg.default_hooks.checkpoint = dict(type="CheckpointHook", interval=10, by_epoch=False)
    cfg.log_processor = dict(type="LogProcessor", by_epoch=False)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h["type"] == "InitFromCheckpointHook"]
    seen = {}

    class Capture(Hook):
        priority = "LOWEST"

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if not seen:
                seen.update({k: v.detach().clone() for k, v in runner.model.state_dict().items()})

    runner = Runner.from_cfg(cfg)
    runner.register_hook(Capture())
    runner.train()
    return seen, json.loads((run / pretrained.REPORT).read_text()), len(classes)


@pytest.mark.slow
def test_emotion_from_the_action_run_starts_with_its_backbone_and_a_fresh_head(source):
    results, ckpt, _ = source
    seen, rec, n_emotion = first_step_weights(results, "tsm@action", "emotion")
    backbone = [k for k in ckpt if k.startswith("backbone.")]
    assert backbone and all(torch.equal(seen[k], ckpt[k]) for k in backbone)
    w = "cls_head.fc_cls.weight"
    assert seen[w].shape[0] == n_emotion != ckpt[w].shape[0]            # a fresh head for the emotion classes
    assert rec["loaded"] == len(backbone) and rec["head_reinitialised"] and rec["kind"] == "run"
    assert rec["groups"]["backbone"] == {"loaded": len(backbone), "total": len(backbone)}
    assert rec["groups"]["cls_head"]["loaded"] == 0 and rec["missing"] == rec["groups"]["cls_head"]["total"]


@pytest.mark.slow
def test_same_classes_load_the_head_too(source):
    results, ckpt, _ = source
    seen, rec, _ = first_step_weights(results, "tsm@action:tsm", "action")   # same target: same classes
    assert all(torch.equal(seen[k], ckpt[k]) for k in ckpt if k.startswith(("backbone.", "cls_head.")))
    assert not rec["head_reinitialised"] and rec["missing"] == 0


@pytest.mark.slow
def test_a_mismatched_checkpoint_fails_naming_the_layers(source):
    from petaction.training import train
    results, _, path = source
    p = P.resolve_train({"model": "tsm", "profile": "tiny", "study": "tiny", "results_dir": str(results),
                         "init": str(path), "lite": False, "seed": 5})            # ResNet-50 from a ResNet-18 run
    with pytest.raises(pretrained.InitError) as e:
        train.run(p)
    msg = str(e.value)
    assert "does not match the Recognizer2D architecture" in msg
    assert re.search(r"backbone\.layer1\.0\.conv1\.conv\.net\.weight: checkpoint \[\d+, \d+, 3, 3\], model \[64, 64, 1, 1\]", msg)
    assert "more" in msg and len(msg) < 2000                                  # names layers, not all of them
    assert not (results / "tiny" / "models" / "tsm" / "seed5" / "config.py").exists()


# ---- runs that differ only in init, paired (transfer.py) ----

def test_pairs_are_runs_that_differ_only_in_init():
    params = {m: P.resolve_train({"model": m, "profile": "quick"}) for m in ("tsm", "tsm@action", "tsm_balanced", "tsn")}
    assert transfer.pairs(params) == [("tsm", "tsm@action")]


def test_compare_gives_the_paired_difference_its_interval_and_mcnemar():
    params = {m: P.resolve_train({"model": m, "profile": "quick", "target": "emotion"}) for m in ("tsm", "tsm@action")}
    rng = np.random.default_rng(0)
    a = rng.random(200) < 0.3
    b = a | (rng.random(200) < 0.4)                     # b right wherever a is, and on more clips
    rec = {"tsm@action": {"source": "the action run tsm seed 0", "loaded": 120, "missing": 2, "unexpected": 2,
                          "head_reinitialised": True}}
    t = transfer.compare(params, {"tsm": {0: a}, "tsm@action": {0: b}}, rec)
    row = t.iloc[0]
    assert (row["model_a"], row["model_b"], row["n_clips"]) == ("tsm", "tsm@action", 200)
    assert row["diff"] == pytest.approx(b.mean() - a.mean()) and row["diff_ci_low"] > 0 < row["diff_ci_high"]
    assert row["a_only"] == 0 and row["b_only"] == int((b & ~a).sum()) and row["p_value"] < 0.001
    text = transfer.section(t, "emotion")
    assert f"{100 * (b.mean() - a.mean()):+.1f} points" in text and "120 of its 122 tensors" in text
    assert "Behaviour -> emotion transfer" in text and "helps emotion recognition" in text
    same = transfer.compare(params, {"tsm": {0: a}, "tsm@action": {0: a.copy()}}, rec)
    assert same.iloc[0]["p_value"] == 1.0 and "does not make a significant difference" in transfer.section(same, "emotion")
    assert "No two action models" in transfer.section(transfer.compare(params, {}, rec), "action")
