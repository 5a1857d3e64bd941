"""Runs that differ only in init, through the evaluation and into the report: the pair is a
claim of the Holm family, evaluation/transfer.csv holds it, and the report's section states the
direction the numbers have (planted better, worse, equal), with each run's init in the methods."""
import json

import numpy as np
import pandas as pd
import pytest

from petaction import params as P
from petaction.evaluation import evaluate
from petaction.models import pretrained
from petaction.reporting import report
from petaction.evaluation import transfer
from test_report import hits, study

REC = {"init": "action", "kind": "run", "source": "the action run tsm seed 0", "loaded": 120, "missing": 2,
       "unexpected": 2, "head_reinitialised": True, "finetune": {"lr_scale": 0.5}}


def emotion_params():
    return {m: P.resolve_train({"model": m, "profile": "quick", "target": "emotion"}) for m in ("tsm", "tsm@action")}


def planted(k_scratch: int, k_transfer: int, n: int = 200) -> dict:
    """A report's inputs with tsm right on k_scratch test clips and tsm@action on k_transfer
    (tsm@action right wherever tsm is, or the reverse), the evaluation's transfer table loaded."""
    rp = emotion_params()
    lo, hi = sorted((k_scratch, k_transfer))
    a, b = (hits(n, lo), hits(n, hi)) if k_scratch <= k_transfer else (hits(n, hi), hits(n, lo))
    r = study({"tsm": {"test": [a], "val": [hits(n, 150)]}, "tsm@action": {"test": [b], "val": [hits(n, 140)]}},
              n_test=n, run_params=rp)
    correct = {"tsm": {0: a}, "tsm@action": {0: b}}
    r.update(target="emotion", study="default", results_dir=None, init={"tsm": {"init": "scratch"}, "tsm@action": REC},
             transfer=transfer.compare(rp, correct, {"tsm@action": REC}, r["decisions"]["claims"]))
    return r


def section_text(r: dict) -> str:
    return "\n".join(c for _, c in report.transfer_section(r))


@pytest.mark.parametrize("k_scratch,k_transfer,answer", [
    (100, 140, "helps emotion recognition here: +20.0 points"),
    (140, 100, "hurts emotion recognition here: -20.0 points"),
    (120, 122, "does not make a significant difference to emotion recognition here: +1.0 points"),
])
def test_the_report_states_the_planted_direction_of_transfer(k_scratch, k_transfer, answer):
    r = planted(k_scratch, k_transfer)
    claim = report.claim(r, "init")
    assert (claim["a"], claim["b"]) == ("tsm", "tsm@action")       # a claim of the family, Holm-corrected
    row = r["transfer"].iloc[0]
    assert row["p_holm"] == claim["p_holm"] >= row["p_value"] == pytest.approx(claim["p_value"])
    assert row["diff"] == pytest.approx((k_transfer - k_scratch) / 200) == pytest.approx(-claim["diff"])
    assert row["diff_ci_low"] <= row["diff"] <= row["diff_ci_high"]
    text = section_text(r)
    assert "## Emotion: behaviour -> emotion transfer" in text
    assert f"Behaviour -> emotion transfer (tsm@action against tsm): starting from the backbone that learned " \
           f"pet behaviour {answer}" in text
    assert f"Holm-corrected {report.p_text(row['p_holm'])}" in text
    assert f"95% bootstrap interval {100 * row['diff_ci_low']:+.1f} to {100 * row['diff_ci_high']:+.1f}" in text
    assert "120 of its 122 tensors from the action run tsm seed 0, the classifier head re-initialised" in text


def test_holm_over_the_family_can_withdraw_the_transfer_claim():
    """Significant alone (exact McNemar p = 2 * 106 / 2**14 = 0.013), not after Holm over the report's family."""
    n = 200
    rp = emotion_params()
    a = hits(n, 120)
    b = a.copy()
    b[120:132], b[:2] = True, False                  # 12 clips only tsm@action gets right, 2 only tsm
    models = {"tsm": {"test": [a], "val": [hits(n, 150)]}, "tsm@action": {"test": [b], "val": [hits(n, 140)]}}
    for i in range(6):
        models[f"m{i}"] = {"test": [hits(n, 60 + i)], "val": [hits(n, 50 + i)]}   # below the baseline
    r = study(models, run_params={**rp, **{f"m{i}": {"model": f"m{i}"} for i in range(6)}})
    t = transfer.compare(rp, {"tsm": {0: a}, "tsm@action": {0: b}}, {"tsm@action": REC}, r["decisions"]["claims"])
    row = t.iloc[0]
    assert row["p_value"] == pytest.approx(2 * 106 / 2 ** 14) and row["p_holm"] >= 0.05
    assert sum(c["kind"] == "init" for c in r["decisions"]["claims"]) == 1
    assert "does not make a significant difference" in transfer.section(t, "emotion")


def test_methods_and_abstract_state_each_runs_init():
    r = planted(100, 140)
    text = report.init_text(r)
    assert text.startswith("tsm trains from scratch (mmaction2's own initialisation).")
    assert "tsm@action starts from the study's action run (init `action`: 120 of its 122 tensors loaded from " \
           "the action run tsm seed 0, 2 kept fresh, 2 of the checkpoint's not used; the classifier head " \
           "re-initialised; fine-tuning settings lr_scale 0.5)." in text
    assert "All models train from scratch" not in text
    assert report.inits_short(r) in ("1 from scratch, 1 from the study's action run",
                                     "1 from the study's action run, 1 from scratch")
    r["init"]["tsm@action"] = None                  # init.json missing: said, not guessed
    assert "what loaded is unknown" in report.init_text(r)
    only = {"tsm": r["run_params"]["tsm"]}
    assert report.init_text({**r, "run_params": only, "summary": r["summary"][r["summary"]["model"] == "tsm"]}) \
        .startswith("All models train from scratch")


def test_no_pair_no_section_and_an_empty_table_with_its_columns():
    rp = emotion_params()
    t = transfer.compare({"tsm": rp["tsm"]}, {"tsm": {0: hits(10, 5)}}, {})
    assert list(t.columns) == transfer.COLUMNS and t.empty
    r = planted(100, 140)
    r["transfer"] = t
    assert report.transfer_section(r) == []


# ---- the real chain on tiny runs: training writes the init record, evaluate writes transfer.csv ----

@pytest.mark.slow
def test_evaluate_writes_the_transfer_table_and_the_report_renders_it(tiny_run, tiny_data):
    """The tiny action TSM (seed 0), then tsm and tsm@action on the tiny emotion target."""
    from conftest import TINY_PREPARE
    from petaction.data import prepare
    from petaction.training import train
    results, study_name, _ = tiny_data
    prepare.prepare(study=study_name, results_dir=results, target="emotion", **TINY_PREPARE)
    for m in ("tsm", "tsm@action"):
        train.run(P.resolve_train({"model": m, "profile": "tiny", "study": study_name, "target": "emotion",
                                   "seed": 0, "results_dir": str(results)}))
    runs = results / study_name / "emotion" / "models"
    metrics = json.loads((runs / "tsm@action" / "seed0" / "metrics.json").read_text())
    rec = pretrained.load_report(runs / "tsm@action" / "seed0")
    assert metrics["init"] == {k: rec[k] for k in ("init", "kind", "source", "loaded", "missing", "unexpected",
                                                   "head_reinitialised")}
    assert metrics["init"]["loaded"] > 0 and metrics["init"]["head_reinitialised"]
    assert json.loads((runs / "tsm" / "seed0" / "metrics.json").read_text())["init"] == {"init": "scratch"}

    evaluate.evaluate(study_name, "emotion", results, models=["tsm", "tsm@action"], cost_repeats=2)
    ev = results / study_name / "emotion" / "evaluation"
    t = pd.read_csv(ev / "transfer.csv")
    assert list(t[["model_a", "model_b"]].itertuples(index=False, name=None)) == [("tsm", "tsm@action")]
    claims = json.loads((ev / "decisions.json").read_text())["claims"]
    init_claim = next(c for c in claims if c["kind"] == "init")
    assert t.loc[0, "p_holm"] == pytest.approx(init_claim["p_holm"])
    assert t.loc[0, "loaded_b"] == rec["loaded"]
    s = pd.read_csv(ev / "summary.csv").set_index("model")
    assert t.loc[0, "diff"] == pytest.approx(s.loc["tsm@action", "top1"] - s.loc["tsm", "top1"])

    r = report.load(study_name, results, "emotion")
    text = section_text(r)
    assert "Behaviour -> emotion transfer (tsm@action against tsm)" in text
    assert f"{100 * t.loc[0, 'diff']:+.1f} points" in text
    assert f"{rec['loaded']} of its {rec['loaded'] + rec['missing']} tensors" in report.methods(r)
    assert "All models train from scratch" not in report.methods(r)
    assert "weight_decay" in report.methods(r) and "Recipe runs" in report.methods(r)
    assert json.loads((ev / "decisions.json").read_text())["leak_check"]["runs"] == 2   # one split: no leak
    assert any("## Emotion: behaviour -> emotion transfer" in c for _, c in report.sections(r))
