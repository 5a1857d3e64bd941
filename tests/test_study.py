"""The whole chain through papermill on the tiny profile: prepare -> train -> evaluate -> report.

Every notebook runs headlessly here, with the parameters the study runner gives it.
"""
import contextlib
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from petaction.core import paths, timing
from petaction.reporting import render
from petaction import study

pytestmark = pytest.mark.slow
from conftest import TINY_PREPARE


@contextlib.contextmanager
def stderr_fd_to(path):
    """File descriptor 2 into `path`: the kernels papermill starts inherit it (their warnings
    would reach the study's console there)."""
    saved = os.dup(2)
    with open(path, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    cfg = study.load_study(None, {"study": "tinytest", "results_dir": str(results), "profile": "tiny",
                                  "models": ["tsn", "tsm"], "prepare": TINY_PREPARE, "detector": True,
                                  "evaluate": {"cost_repeats": 2}})
    log, stderr = [], results / "stderr.txt"
    with stderr_fd_to(stderr):
        status = study.run(cfg, log=log.append)
    yield {"cfg": cfg, "status": status, "log": log, "root": results / "tinytest", "stderr": stderr.read_text()}
    for suffix in ("html", "pdf"):
        (paths.REPO / "report" / f"tinytest.{suffix}").unlink(missing_ok=True)


def test_every_step_ran(tiny_study):
    assert [s["status"] for s in tiny_study["status"]] == ["done"] * 6, tiny_study["log"]
    for s in tiny_study["status"]:
        assert s["notebook"].endswith(".ipynb")


def test_console_lines_time_left_and_the_report_paths(tiny_study):
    """One line per step with the study's elapsed time, the pool's count and the time left
    once a training has measured the rate; no kernel noise; the last line names the report."""
    log, pool = tiny_study["log"], 3                              # tsn, tsm, the detector
    assert "IPKernelApp" not in tiny_study["stderr"] and "without encryption" not in tiny_study["stderr"]
    done = [line for line in log if line.startswith("[done]")]
    assert len(done) == 6 and all(re.search(r" \| .*\d+:\d\d elapsed, ", line) for line in done)
    counts = [int(m.group(1)) for line in done if (m := re.search(r"(\d+)/3 trainings", line))]
    assert counts == list(range(1, pool + 1))
    first_training = next(i for i, line in enumerate(done) if line.startswith("[done] train "))   # not the detector
    assert "known when the first training ends" not in done[first_training]
    assert all(re.search(r"~\d+(\.\d)? (s|min|h) left", line) for line in done[first_training:])
    named = log[-1].split("; report: ")[1].split(", ")
    report = [paths.REPO / "report" / f"tinytest.{suffix}" for suffix in ("html", "pdf")]
    assert named[:2] == [study.shown(f) for f in report]          # then anything else report/tinytest.* holds
    assert all((paths.REPO / "report" / Path(f).name).is_file() and Path(f).name.startswith("tinytest.")
               for f in named)


def test_run_folder_has_everything(tiny_study):
    run = tiny_study["root"] / "models" / "tsm" / "seed0"
    for f in ("config.py", "params.json", "provenance.json", "log.csv", "test_scores.npz", "test_scores.csv",
              "metrics.json", "train.ipynb"):
        assert (run / f).is_file(), f
    assert list(run.glob("best_*.pth"))
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["git"]["commit"] and prov["versions"]["mmaction2"] == "1.2.0"
    log = pd.read_csv(run / "log.csv")
    assert list(log["epoch"]) == [1] and log["val_top1"].between(0, 1).all()


def test_tensorboard_lists_every_run_with_its_loss_and_validation_curves(tiny_study):
    """What `tensorboard --logdir results/<study>` shows, read as TensorBoard reads a logdir
    (its EventMultiplexer): one run per training, named by its folder, each with the training
    loss and learning rate and the validation metric it is selected on, per epoch."""
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.util import tensor_util
    root = tiny_study["root"]
    tb = EventMultiplexer().AddRunsFromDirectory(str(root))
    tb.Reload()
    runs = {"models/tsn/seed0/tensorboard": "acc/top1", "models/tsm/seed0/tensorboard": "acc/top1",
            "detector/tensorboard": "coco/bbox_mAP"}
    assert set(tb.Runs()) == set(runs)
    scalars = tb.PluginRunToTagToContent("scalars")         # what its Scalars tab lists per run
    for run, val_tag in runs.items():
        assert {"loss", "lr", val_tag} <= set(scalars[run]), (run, scalars[run])
        val = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in tb.Tensors(run, val_tag)]
        assert [step for step, _ in val] == [1]                # tiny profile: one epoch, validated once
        if run.startswith("models/"):                           # the curve the report draws, from log.csv
            log = pd.read_csv(root / run.rsplit("/", 1)[0] / "log.csv")
            assert val[0][1] == pytest.approx(log["val_top1"].iloc[0], abs=1e-6)
        else:
            det = json.loads((root / "detector" / "metrics.json").read_text())["selection"]["val_curve"]
            assert val[0][1] == pytest.approx(det[0]["box_ap"], abs=1e-6)


def test_summary_recomputed_from_scores(tiny_study):
    import numpy as np
    ev = tiny_study["root"] / "evaluation"
    s = pd.read_csv(ev / "summary.csv")
    assert set(s["model"]) == {"tsn", "tsm"}
    for col in ("top1", "top3", "top5", "mean_class_acc", "macro_f1", "top1_order_only"):
        assert s[col].between(0, 1).all(), col
    z = np.load(tiny_study["root"] / "models" / "tsn" / "seed0" / "test_scores.npz")
    top1 = float((z["scores"].argmax(1) == z["labels"]).mean())
    assert s.set_index("model").loc["tsn", "top1"] == pytest.approx(top1)
    # compute cost beside accuracy: measured, with the machine recorded next to it
    assert (s["params_m"] > 0).all() and (s["gflops"] > 0).all() and (s["cpu_latency_ms"] > 0).all()
    assert s["realtime"].isin([True, False]).all()
    cost = json.loads((ev / "cost.json").read_text())
    assert cost["torch_threads"] >= 1 and cost["versions"]["torch"]
    # at least cost_repeats (2) timed calls, and as many more as fill the time budget
    assert cost["rows"][0]["repeats"] >= 2 and cost["rows"][0]["min_time_s"] == timing.MIN_TIME_S == 0.1
    diag = pd.read_csv(ev / "diagnosis.csv")
    assert set(diag["model"]) == {"tsn", "tsm"} and diag["verdict"].notna().all()
    # the pet detector's latency joins every model's: end to end = detector + model
    det = json.loads((ev / "detector.json").read_text())
    trained = json.loads((tiny_study["root"] / "detector" / "metrics.json").read_text())
    assert det["box_ap"] == trained["box_ap"] and det["cpu_latency_ms"] > 0   # the trained detector's, re-timed
    boxes = pd.read_csv(ev / "cost.csv").set_index("model").loc[s["model"], "boxes_per_prediction"].values
    assert list(boxes) == [2, 2]                          # tiny profile: 2 segments, each its own crop
    assert s["e2e_latency_ms"].values == pytest.approx(s["cpu_latency_ms"].values + boxes * det["cpu_latency_ms"])
    assert s["realtime_e2e"].isin([True, False]).all()


def test_rerun_skips_unchanged_steps(tiny_study):
    log = []
    status = study.run(tiny_study["cfg"], log=log.append)
    assert [s["status"] for s in status] == ["skipped"] * 6, log


def test_report_html_and_pdf_hold_the_evaluated_numbers(tiny_study):
    html = paths.REPO / "report" / "tinytest.html"
    pdf = paths.REPO / "report" / "tinytest.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    text = html.read_text(encoding="utf-8")
    assert "def " not in text and "import " not in text        # code cells hidden
    s = pd.read_csv(tiny_study["root"] / "evaluation" / "summary.csv")
    assert "Recommendation:" in text and "Pareto front" in text and "what the training curves say" in text
    det = json.loads((tiny_study["root"] / "evaluation" / "detector.json").read_text())
    assert f"test box AP {det['box_ap']:.3f}" in text and "Keeps up with detector" in text
    for _, row in s.iterrows():
        # the model's own row of the comparison table holds its top-1 (no fallback to any "<x>%")
        assert re.search(rf"<td[^>]*>{row['model']}</td>(\s*<td[^>]*>[^<]*</td>)*?\s*<td[^>]*>{100 * row['top1']:.1f}%", text)
    for model in s["model"]:
        assert (tiny_study["root"] / "models" / model / "seed0" / "val_scores.npz").is_file()
    decisions = json.loads((tiny_study["root"] / "evaluation" / "decisions.json").read_text())
    assert decisions["best"] in set(s["model"])


def test_report_shows_where_each_model_looks(tiny_study):
    """The Grad-CAM grid and every model's figure, from the evaluation's files, are in the HTML."""
    import base64
    text = (paths.REPO / "report" / "tinytest.html").read_text(encoding="utf-8")
    folder = tiny_study["root"] / "evaluation" / "gradcam"
    g = json.loads((folder / "gradcam.json").read_text())
    assert "where each model looks" in text and not g["skipped"]
    assert set(g["models"]) == set(pd.read_csv(tiny_study["root"] / "evaluation" / "summary.csv")["model"])
    for png in [g["grid"]] + [m["figure"] for m in g["models"].values()]:
        assert base64.b64encode((folder / png).read_bytes()).decode() in text, png


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (make setup installs it)")
def test_a_real_browser_renders_the_report(tiny_study, tmp_path):
    html = paths.REPO / "report" / "tinytest.html"
    dom = render.page_text(html)
    assert "Which video model" in dom and "Action: conclusion" in dom and "Abstract" in dom
    png = render.screenshot(html, tmp_path / "shot.png")
    assert png.is_file() and png.stat().st_size > 10_000


def test_a_failed_model_does_not_stop_the_others(tiny_study):
    broken = paths.PARAMS / "models" / "zz_test_broken.yaml"     # a model whose backbone cannot build
    broken.write_text("mm_base: tsn_r50\nmodel_cfg: {backbone: {pretrained: null, depth: 7}}\n")
    try:
        cfg = dict(tiny_study["cfg"], models=["zz_test_broken", "tsn"])
        log = []
        status = {s["step"]: s for s in study.run(cfg, log=log.append)}
    finally:
        broken.unlink()
    assert status["train zz_test_broken seed 0 (action)"]["status"] == "failed"
    assert "depth" in status["train zz_test_broken seed 0 (action)"]["error"]
    assert any("notebook:" in line and "zz_test_broken" in line for line in log)
    assert status["train tsn seed 0 (action)"]["status"] == "skipped"
    assert status["evaluate (action)"]["status"] == "done" and status["report"]["status"] == "done"
    failed = pd.read_csv(tiny_study["root"] / "evaluation" / "failed.csv")
    assert list(failed["model"]) == ["zz_test_broken"]
    assert "zz_test_broken" in (paths.REPO / "report" / "tinytest.html").read_text(encoding="utf-8")


def test_action_and_emotion_in_one_study(tmp_path):
    """targets: [action, emotion] -> two comparisons, both in the one report; target_models
    gives a target its own subset of models, target_train its own training settings."""
    cfg = study.load_study(None, {"study": "tinyemo", "results_dir": str(tmp_path), "profile": "tiny",
                                  "models": ["tsn"], "target_models": {"emotion": ["tsm"]},
                                  "target_train": {"emotion": {"epochs": 2}},
                                  "targets": ["action", "emotion"], "prepare": TINY_PREPARE})
    try:
        status = study.run(cfg, log=lambda *_: None)
        assert all(s["status"] == "done" for s in status), status
        emo = pd.read_csv(tmp_path / "tinyemo" / "emotion" / "evaluation" / "summary.csv")
        assert list(emo["target"]) == ["emotion"] and list(emo["model"]) == ["tsm"]
        assert list(pd.read_csv(tmp_path / "tinyemo" / "evaluation" / "summary.csv")["model"]) == ["tsn"]
        emo_log = pd.read_csv(tmp_path / "tinyemo" / "emotion" / "models" / "tsm" / "seed0" / "log.csv")
        assert list(emo_log["epoch"]) == [1, 2]                    # target_train: emotion trains 2 epochs
        assert len(pd.read_csv(tmp_path / "tinyemo" / "models" / "tsn" / "seed0" / "log.csv")) == 1
        html = (paths.REPO / "report" / "tinyemo.html").read_text(encoding="utf-8")
        assert "Emotion: results" in html and "Action: results" in html
        assert "The emotion comparison trains tsm (the study's <code>target_models</code>)" in html
        assert f"{100 * emo['top1'].iloc[0]:.1f}%" in html
    finally:
        for suffix in ("html", "pdf"):
            (paths.REPO / "report" / f"tinyemo.{suffix}").unlink(missing_ok=True)


def test_explore_notebook_browses_clips_and_mistakes(tiny_study, tmp_path):
    import papermill as pm
    out = tmp_path / "explore.ipynb"
    pm.execute_notebook(str(paths.NOTEBOOKS / "explore.ipynb"), str(out), kernel_name=study.KERNEL,
                        parameters={"study": "tinytest", "results_dir": tiny_study["cfg"]["results_dir"],
                                    "split": "test"}, cwd=str(paths.NOTEBOOKS), progress_bar=False)
    nb = json.loads(out.read_text())
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3                                         # the clip with its labels, a gallery, Grad-CAM
    assert any("test clips right" in "".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


# ---- trainings that start from another run (init <target>[:<model>]) ----

class FakeStep:
    """A training step that records when it ran (train_all's scheduling only)."""

    def __init__(self, name, done, after=None, fail=False, events=None):
        self.name, self.done, self.after, self.fail, self.events = name, done, after, fail, events
        self.out_nb = done.with_name("train.ipynb")

    def fresh(self, log=print):
        return False

    def run(self, force, log, env=None):
        import time
        self.events.append(("start", self.name))
        time.sleep(0.2)
        self.events.append(("end", self.name))
        return {"step": self.name, "status": "failed" if self.fail else "done", "error": "boom",
                "notebook": str(self.out_nb)}


def test_a_training_waits_for_the_run_it_starts_from(tmp_path):
    """Listed first and on two slots, the emotion run starting from the action run starts only
    after it ended; a failed source fails what starts from it; results keep the given order."""
    events = []
    src = tmp_path / "action" / "metrics.json"
    steps = [FakeStep("emotion tsm@action", tmp_path / "emo" / "metrics.json", after=src, events=events),
             FakeStep("action tsm", src, events=events),
             FakeStep("action tsn", tmp_path / "tsn" / "metrics.json", events=events)]
    cfg = {"gpus": [], "strategy": "parallel", "cpu_jobs": 2}
    status = study.train_all(steps, [None] * 3, cfg, False, lambda *_: None)
    assert [s["step"] for s in status] == ["emotion tsm@action", "action tsm", "action tsn"]
    assert events.index(("end", "action tsm")) < events.index(("start", "emotion tsm@action"))
    events.clear()
    steps[1].fail = True
    status = study.train_all(steps, [None] * 3, cfg, False, lambda *_: None)
    assert status[0]["status"] == "failed" and "action tsm, which failed" in status[0]["error"]
    assert ("start", "emotion tsm@action") not in events
    loop = [FakeStep("a", tmp_path / "a" / "m.json", after=tmp_path / "b" / "m.json", events=events),
            FakeStep("b", tmp_path / "b" / "m.json", after=tmp_path / "a" / "m.json", events=events)]
    with pytest.raises(Exception, match="in a loop"):
        study.train_all(loop, [None] * 2, cfg, False, lambda *_: None)


def test_a_study_refuses_a_source_run_it_does_not_train(tmp_path):
    from petaction import params as P
    with pytest.raises(P.ParamError, match="add tsm to the action models"):
        study.load_study(None, {"results_dir": str(tmp_path), "models": ["tsn"], "targets": ["action", "emotion"],
                                "target_models": {"emotion": ["tsm@action"]}})
    with pytest.raises(P.ParamError, match="unknown model 'nope@zoo'"):
        study.load_study(None, {"results_dir": str(tmp_path), "models": ["nope@zoo"]})


def test_emotion_from_the_action_runs_in_one_study(tmp_path):
    """tsm and tsm@action on the emotion target, the action target listed last: the action run
    trains first, tsm@action starts from it (init.json), both are rows of the emotion tables,
    and the transfer comparison pairs them."""
    from petaction.models import pretrained
    from petaction.evaluation import transfer
    cfg = study.load_study(None, {"study": "tinyxfer", "results_dir": str(tmp_path), "profile": "tiny",
                                  "models": ["tsm"], "target_models": {"emotion": ["tsm", "tsm@action"]},
                                  "targets": ["emotion", "action"], "prepare": TINY_PREPARE, "cpu_jobs": 2,
                                  "evaluate": {"cost_repeats": 2}})
    log = []
    try:
        status = study.run(cfg, log=log.append)
        assert all(s["status"] == "done" for s in status), log
        done = [l for l in log if l.startswith("[done] train")]
        runs = [l for l in log if l.startswith("[run ] train")]
        assert any("tsm seed 0 (action)" in l for l in done)
        first_done = next(i for i, l in enumerate(log) if l.startswith("[done] train tsm seed 0 (action)"))
        assert log.index(next(l for l in runs if "tsm@action" in l)) > first_done
        run = tmp_path / "tinyxfer" / "emotion" / "models" / "tsm@action" / "seed0"
        rec = pretrained.load_report(run)
        assert rec["kind"] == "run" and rec["loaded"] > 0 and rec["head_reinitialised"]
        assert rec["checkpoint"].startswith(str(tmp_path / "tinyxfer" / "models" / "tsm" / "seed0"))
        emo = pd.read_csv(tmp_path / "tinyxfer" / "emotion" / "evaluation" / "summary.csv")
        assert set(emo["model"]) == {"tsm", "tsm@action"}
        params = {m: json.loads((run.parent.parent / m / "seed0" / "params.json").read_text()) for m in emo["model"]}
        assert transfer.pairs(params) == [("tsm", "tsm@action")]
        assert [s["status"] for s in study.run(cfg, log=lambda *_: None)] == ["skipped"] * len(status)
    finally:
        for suffix in ("html", "pdf"):
            (paths.REPO / "report" / f"tinyxfer.{suffix}").unlink(missing_ok=True)
