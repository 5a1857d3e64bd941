"""ONNX export: ONNX Runtime's class scores match mmaction2's for every model that exports."""
import numpy as np
import pytest
import torch

from petaction.deploy import export
from petaction import params as P


def tiny_model(name):
    """A model of the tiny profile with its initial weights: parity needs no training."""
    from petaction.evaluation import forward
    p = P.resolve_train({"model": name, "profile": "tiny"})
    torch.manual_seed(0)
    return forward.build_model(p, 5), p


@pytest.mark.slow
@pytest.mark.parametrize("name", P.names("models"))
def test_onnx_runtime_matches_pytorch_or_says_why_not(name, tmp_path):
    """Every model file builds; a recogniser exports and ONNX Runtime gives mmaction2's scores;
    the box-level detector (its forward takes its RoIs too) is refused with the reason."""
    from petaction.evaluation import forward
    model, p = tiny_model(name)
    if not forward.is_box_model(model):
        r = export.parity_model(model, p, export.export_model(model, p, tmp_path / f"{name}.onnx"))
        assert r["max_abs_diff"] < export.PARITY_TOL and r["top1_equal"], r
        return
    with pytest.raises(ValueError, match="not a clip recogniser"):
        export.export_model(model, p, tmp_path / f"{name}.onnx")
    assert not (tmp_path / f"{name}.onnx").exists()


def test_parity_check_can_fail(tmp_path):
    """A stale export (weights changed since) is caught: the check compares real numbers."""
    model, p = tiny_model("tsn")
    path = export.export_model(model, p, tmp_path / "tsn.onnx")
    assert export.parity_model(model, p, path)["max_abs_diff"] < export.PARITY_TOL
    with torch.no_grad():
        model.cls_head.fc_cls.bias += torch.arange(5.0)
    assert export.parity_model(model, p, path)["max_abs_diff"] > export.PARITY_TOL


def test_export_all_lists_a_model_that_cannot_export_with_the_reason(tmp_path):
    run = tmp_path / "models" / "ghost" / "seed0"
    run.mkdir(parents=True)
    rows = export.export_all([run], tmp_path / "onnx")
    assert rows[0]["model"] == "ghost" and not rows[0]["exported"] and "no config.py" in rows[0]["reason"]


def test_scorenet_input_is_the_packed_clip():
    _, p = tiny_model("i3d")
    x = export.example_input(p)
    assert x.shape == (1, p["test_clips"], 3, p["clip_len"], p["img_size"], p["img_size"])
    assert x.min() >= 0 and x.max() <= 255 and np.allclose(x, x.round())
