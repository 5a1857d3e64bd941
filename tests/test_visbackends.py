"""vis_backends: where every training's scalars go (mmengine's visualisation backends).

The event files a tiny study writes are read back in test_study.py (what TensorBoard lists)."""
import json

import pytest

from petaction import params as P
from petaction.core.paths import PARAMS
from petaction.models import mmconfig


def config(tiny_data, tmp_path, **over):
    results, study, data = tiny_data
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "study": study, "results_dir": str(results), **over})
    classes = json.loads((data / "classes.json").read_text())["classes"]
    run = results / study / "models" / "tsn" / "seed0"
    return mmconfig.build(p, data, run, classes, [1] * len(classes)), run, results / study


def test_default_backends_are_local_and_tensorboard_in_the_run_folder(tiny_data, tmp_path):
    assert P.load_yaml(PARAMS / "base.yaml")["vis_backends"] == ["LocalVisBackend", "TensorboardVisBackend"]
    cfg, run, _ = config(tiny_data, tmp_path)
    local, tb = cfg.visualizer.vis_backends
    assert local == {"type": "LocalVisBackend"}   # mmengine's place: <run>/<timestamp>/vis_data
    assert tb == {"type": "TensorboardVisBackend", "save_dir": str(run / mmconfig.TENSORBOARD_DIR)}


def test_an_unknown_backend_is_one_error_listing_mmengines(tiny_data, tmp_path):
    with pytest.raises(P.ParamError, match=r"unknown backend 'Tensorboard'; valid \(mmengine's VISBACKENDS\): "
                                           r".*MLflowVisBackend.*TensorboardVisBackend"):
        P.resolve_train({"model": "tsn", "vis_backends": ["LocalVisBackend", "Tensorboard"]})
    with pytest.raises(P.ParamError, match="vis_backends must be a list"):
        P.resolve_train({"model": "tsn", "vis_backends": "TensorboardVisBackend"})


def test_a_backend_mapping_keeps_its_own_arguments(tiny_data, tmp_path):
    cfg, run, _ = config(tiny_data, tmp_path, vis_backends=[{"type": "TensorboardVisBackend", "save_dir": str(tmp_path)},
                                                            {"type": "WandbVisBackend", "init_kwargs": {"project": "pets"}}])
    assert cfg.visualizer.vis_backends == [{"type": "TensorboardVisBackend", "save_dir": str(tmp_path)},
                                           {"type": "WandbVisBackend", "init_kwargs": {"project": "pets"}}]


def test_mlflow_backend_logs_every_run_of_the_study_into_one_store(tiny_data, tmp_path):
    """The config carries MLflow with the study's store, experiment and run name; where mlflow
    is installed, the backend built from it records a scalar there."""
    cfg, run, study_dir = config(tiny_data, tmp_path, vis_backends=["LocalVisBackend", "MLflowVisBackend"])
    mlf = cfg.visualizer.vis_backends[1]
    assert mlf == {"type": "MLflowVisBackend", "save_dir": str(study_dir / "mlruns"), "exp_name": study_dir.name,
                   "run_name": "models/tsn/seed0", "tracking_uri": f"sqlite:///{study_dir / 'mlflow.db'}",
                   "artifact_location": (study_dir / "mlruns").as_uri()}
    mlflow = pytest.importorskip("mlflow")
    from mmengine.registry import VISBACKENDS
    backend = VISBACKENDS.build({**mlf, "save_dir": str(tmp_path / "mlruns"), "tracking_uri": f"sqlite:///{tmp_path / 'm.db'}",
                                 "artifact_location": (tmp_path / "mlruns").as_uri()})
    backend.add_scalar("loss", 0.5, step=1)
    mlflow.end_run()
    runs = mlflow.search_runs(experiment_names=[study_dir.name])   # the store the backend set
    assert list(runs["tags.mlflow.runName"]) == ["models/tsn/seed0"] and list(runs["metrics.loss"]) == [0.5]


def test_the_tensorboard_command_opens_the_study_results_folder(monkeypatch, tmp_path):
    """`make tensorboard` = `python -m petaction tensorboard -f params/study.yaml`: TensorBoard
    over results/<study> of that file (after -p), where every run's event files lie."""
    import subprocess
    from petaction.__main__ import main
    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert main(["tensorboard", "-f", str(PARAMS / "study.yaml"), "-p", "results_dir", str(tmp_path),
                 "-p", "study", "mine", "--port", "6123"]) == 0
    cmd, = calls
    assert cmd[1:4] == ["-m", "tensorboard.main", "--logdir"] and cmd[4] == str(tmp_path / "mine")
    assert cmd[-2:] == ["--port", "6123"]
    assert "tensorboard: $(STAMP)\n\t$(PY) -m petaction tensorboard -f $(STUDY)" in (PARAMS.parent / "Makefile").read_text()


def test_a_training_that_starts_again_clears_its_old_curves(tmp_path):
    """A re-run that does not resume (resume_or_clear) starts its TensorBoard run empty: the old
    attempt's curves would be drawn under the new ones. Other files of the folder stay."""
    from petaction.training import runfolder
    tb = tmp_path / mmconfig.TENSORBOARD_DIR
    tb.mkdir()
    (tb / "events.out.tfevents.1.host").write_bytes(b"x")
    (tmp_path / "epoch_1.pth").write_bytes(b"x")
    (tmp_path / "log.csv").write_text("epoch\n")
    assert runfolder.resume_or_clear(tmp_path, "key") is False
    assert not list(tb.iterdir()) and not (tmp_path / "epoch_1.pth").exists() and (tmp_path / "log.csv").exists()


def test_a_training_logs_one_mlflow_run_with_its_curves(tiny_data):
    """Through the Runner (train, then test on the same Runner, which closes the visualizer
    twice): one MLflow run per training, named by its folder, with its loss and validation
    top-1 (runner.close_once keeps the second close from opening an unnamed run)."""
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("sqlalchemy")
    from petaction.training import train
    results, study, _ = tiny_data
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "study": study, "results_dir": str(results), "seed": 77,
                         "vis_backends": ["MLflowVisBackend"]})
    train.run(p)
    mlflow.set_tracking_uri(f"sqlite:///{results / study / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[study])
    assert list(runs["tags.mlflow.runName"]) == ["models/tsn/seed77"]   # the only training of this store
    assert runs["metrics.loss"].iloc[0] > 0 and 0 <= runs["metrics.acc/top1"].iloc[0] <= 1
