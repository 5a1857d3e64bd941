"""Online TSM on the study's own test clips (deploy/online_eval.py, benchmarks/online_clips.py):
one row per test clip on the offline scores' own clips, the online scores equal to the
offline model's where the online variant sees the same frames, a clear error on mismatched
scores, and a benchmark that refuses a dirty tree."""
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from petaction.deploy import infer, online, online_eval
from petaction.training import runfolder

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def evaluated(tiny_run, tmp_path_factory, request):
    """evaluate() on the tiny TSM run, with a stand-in for a trained pet detector (counting its calls)."""
    calls = []

    def loc(frame):
        calls.append(frame.index)
        return None
    loc.name = "a test localiser"
    fake = tmp_path_factory.mktemp("detector")
    (fake / "metrics.json").write_text("{}")
    mp = pytest.MonkeyPatch()
    request.addfinalizer(mp.undo)
    mp.setattr(infer, "detector_dir", lambda run: fake)
    mp.setattr(infer, "make_localiser", lambda boxes, spec, run: loc if boxes == "detector" else None)
    return online_eval.evaluate(tiny_run, backend="torch"), calls


def test_one_row_per_test_clip_and_both_top1s_on_the_same_clips(tiny_run, evaluated):
    res, calls = evaluated
    split = runfolder.read_split(Path(res["split"]).parent, "test")
    rows = res["rows"]
    with np.load(tiny_run / "test_scores.npz") as z:
        ids, labels, scores = [str(i) for i in z["ids"]], z["labels"], z["scores"]
    assert [r["id"] for r in rows] == [c for c, _, _ in split] == ids
    assert [r["frames"] for r in rows] == [n for _, n, _ in split]
    assert [r["offline_pred"] for r in rows] == scores.argmax(1).tolist()
    s = res["summary"]
    assert s["clips"] == len(split)
    # the offline top-1 is the run's own test top-1 (metrics.json), on the clips the online one is scored on
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert s["offline"]["top1"] == pytest.approx(metrics["test"]["top1"], abs=1e-6)
    assert s["online"]["top1"] == pytest.approx(np.mean([r["online_pred"] == r["label"] for r in rows]))
    assert s["agreement"]["rate"] == pytest.approx(np.mean([r["online_pred"] == r["offline_pred"] for r in rows]))
    d = s["difference"]
    assert d["ci_low"] <= d["online_minus_offline"] <= d["ci_high"]
    assert s["agreement"]["ci_low"] <= s["agreement"]["rate"] <= s["agreement"]["ci_high"]
    assert res["variant"]["shift"] == "exact" and s["predictions_per_s_median"] > 0
    # the detector pass: infer's localiser on every 5th frame of every clip
    assert res["detector"]["available"] and res["detector"]["detect_every"] == online_eval.DETECT_EVERY
    assert len(calls) == sum(-(-r["frames"] // online_eval.DETECT_EVERY) for r in rows)


def test_online_equals_the_offline_model_where_it_sees_the_same_frames(evaluated):
    """Where the exact stream about the last sampled frame holds only the test-sampled frames,
    the online scores are the offline test scores (test_scores.npz, mmaction2's test loop)."""
    rows = evaluated[0]["rows"]
    exact = [r for r in rows if r["exact_expected"]]
    assert exact, "no tiny test clip has the training clips' length: the check would be vacuous"
    assert max(r["max_abs_diff"] for r in exact) < online.EQUIV_TOL
    assert all(r["online_pred"] == r["offline_pred"] for r in exact)


def test_which_frames_the_online_prediction_sees():
    seen = online_eval.seen_frames
    assert seen(7, 5, 2) == [2, 7] and seen(3, 5, 2) == [3] and seen(9, 1, 3) == [7, 8, 9]
    off = np.array([0.2, 0.8])
    on = {i: off for i in range(20)}

    def row(frames, sampled, gap):
        return online_eval.clip_row("c", 1, off, {i: on[i] for i in range(frames)}, np.array(sampled), gap, 2, 1.0)
    r = row(10, [2, 7], 5)
    assert r["same_frames"] and r["exact_expected"] and r["at_frame"] == 7
    assert not row(9, [2, 6], 5)["same_frames"]              # uneven spacing: other frames
    r = row(20, [5, 15], 5)                                  # spacing 10 seen at gap 5
    assert not r["same_frames"] and not r["exact_expected"]
    r = row(20, [7, 12], 5)                                  # the same frames, but 2 and 17 on their stream
    assert r["same_frames"] and not r["exact_expected"]


def test_scores_of_other_clips_are_refused_in_one_line(tiny_run, tmp_path):
    run = tmp_path / "seed0"
    shutil.copytree(tiny_run, run)
    with np.load(run / "test_scores.npz") as z:
        planted = {k: z[k] for k in z.files}
    planted["ids"] = planted["ids"][::-1].copy()
    np.savez(run / "test_scores.npz", **planted)
    with pytest.raises(ValueError, match="clip ids are not the test split's") as e:
        online_eval.evaluate(run, backend="torch", detector=False)
    assert len(str(e.value).splitlines()) == 1


def load_bench():
    spec = importlib.util.spec_from_file_location("online_clips_bench", REPO / "benchmarks" / "online_clips.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_benchmark_refuses_a_dirty_tree_in_one_line(monkeypatch, capsys, tmp_path):
    bench = load_bench()
    monkeypatch.setattr(bench.provenance, "git_state", lambda: {"commit": "x", "dirty": True})
    monkeypatch.setattr(bench.online_eval, "evaluate", lambda *a, **k: pytest.fail("evaluated on a dirty tree"))
    monkeypatch.setattr(bench.provenance, "save_benchmark", lambda *a: pytest.fail("wrote a result"))
    with pytest.raises(SystemExit) as e:
        bench.main(["--run", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "uncommitted changes" in err
