"""The evaluation's decisions and the report's sentences, on synthetic score tables: a claim
is made only when the combined, corrected test makes it, in its direction; the
recommendation is chosen on validation and never below the majority baseline."""
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from petaction.evaluation import evaluate
from petaction.core import metrics
from petaction.core.errors import ParamError
from petaction.reporting import report

CLASSES = ["X", "Y", "U", "D"]
ORDER_ONLY = ["U", "D"]


def labels_of(n: int) -> np.ndarray:
    """n clips, 40% X (the majority class), 30% Y, 15% U, 15% D."""
    share = np.array([0.4, 0.3, 0.15, 0.15])
    return np.repeat(np.arange(4), np.round(share * n).astype(int))[:n]


def scores_for(correct: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Class scores whose argmax is the label where correct, the next class where not."""
    pred = np.where(correct, labels, (labels + 1) % len(CLASSES))
    return np.eye(len(CLASSES))[pred] + 0.01


def hits(n: int, k: int, rng=None) -> np.ndarray:
    """A boolean vector of n clips with k right (at random positions when rng is given)."""
    out = np.zeros(n, bool)
    out[(rng.permutation(n) if rng is not None else np.arange(n))[:k]] = True
    return out


def study(models: dict, n_test: int = 200, n_val: int = 200, margin: float = 0.02, run_params=None,
          order_blind: str = "") -> dict:
    """A report's inputs from per-clip results: models = {name: {"test": [correct per seed],
    "val": [...], "latency": ms, "realtime": bool or NaN, "steps": int}}; decisions by
    evaluate.decide, as evaluate.evaluate makes them."""
    lt, lv = labels_of(n_test), labels_of(n_val)
    oo = [CLASSES.index(c) for c in ORDER_ONLY]
    test, val, runs = evaluate.Scored(), evaluate.Scored(), []
    ids_t, ids_v = np.array([f"t{i}" for i in range(n_test)]), np.array([f"v{i}" for i in range(n_val)])
    for name, m in models.items():
        for seed, (ct, cv) in enumerate(zip(m["test"], m["val"])):
            st = {"ids": ids_t, "labels": lt, "scores": scores_for(ct, lt)}
            sv = {"ids": ids_v, "labels": lv, "scores": scores_for(cv, lv)}
            test.add(name, seed, st)
            val.add(name, seed, sv)
            vm = metrics.all_metrics(sv["scores"], lv, oo)
            runs.append({"model": name, "seed": seed, **metrics.all_metrics(st["scores"], lt, oo), "n_folds": 0,
                         "train_time_s": 1.0, "train_steps": m.get("steps", 100), "train_cpu_s": 10.0,
                         "val_top1": vm["top1"], "val_mean_class_acc": vm["mean_class_acc"],
                         "val_top1_order_only": vm["top1_order_only"], "val_source": "val_scores.npz"})
    summary = evaluate.summarise(pd.DataFrame(runs))
    lat = {n: m.get("latency", 100.0) for n, m in models.items()}
    ok = {n: m.get("realtime", True) for n, m in models.items()}
    summary["cpu_latency_ms"] = summary["model"].map(lat) / 2
    summary["e2e_latency_ms"] = summary["model"].map(lat)
    summary["e2e_latency_p90_ms"] = summary["e2e_latency_ms"] * 1.1
    summary["realtime_e2e"] = summary["model"].map(ok)
    summary["headroom_e2e"] = 1000 / summary["e2e_latency_p90_ms"]
    summary["realtime"], summary["headroom"] = True, 2.0
    summary["params_m"], summary["gflops"], summary["cpu_latency_p90_ms"] = 1.0, 0.5, summary["cpu_latency_ms"] * 1.1
    decisions = evaluate.decide(summary, test, val, CLASSES, ORDER_ONLY, run_params or {}, margin=margin,
                                order_blind=order_blind)
    counts = pd.DataFrame({"label": CLASSES, "train": 50, "val": 5, "test": np.bincount(lt, minlength=4),
                           "total": 60})
    per_class = pd.DataFrame({n: [0.9, 0.5, 0.2, 0.1] for n in models}, index=CLASSES)
    cost = {"update_hz": 1.0, "hardware": {"cpu": "test CPU"}, "torch_threads": 1, "rows": []}
    return {"summary": summary, "decisions": decisions, "counts": counts, "per_class": per_class,
            "failed": pd.DataFrame(), "classes": {"classes": CLASSES, "order_only": ORDER_ONLY},
            "cost": cost, "run_params": run_params or {}}


def test_seeds_that_disagree_make_no_claim_and_agreeing_ones_the_right_one():
    rng = np.random.default_rng(0)
    n = 200
    strong, weak = hits(n, 150, rng), hits(n, 110, rng)
    val_a, val_b = hits(n, 150), hits(n, 140)            # a leads on validation, b is runner-up
    # seed 0 favours a, seed 1 favours b by as much
    r = study({"a": {"test": [strong, weak], "val": [val_a, val_a]},
               "b": {"test": [weak, strong], "val": [val_b, val_b]}})
    d = r["decisions"]
    assert (d["best"], d["runner_up"]) == ("a", "b")
    c = report.claim(r, "leader")
    assert c["n_seeds"] == 2 and "Cochran-Mantel-Haenszel" in c["test"] and c["winner"] is None
    text = report.conclusion(r)
    assert "a beats b" not in text and "b beats a" not in text
    assert "The difference between a and b on the same 200 test clips and 2 seeds is not significant" in text
    assert "The seeds disagree on its sign" in text
    # both seeds favour b, though a leads on validation: the claim is b's
    r = study({"a": {"test": [weak, weak], "val": [val_a, val_a]},
               "b": {"test": [strong, strong], "val": [val_b, val_b]}})
    text = report.conclusion(r)
    assert "b beats a on the same 200 test clips and 2 seeds" in text and "a beats b" not in text
    c = report.claim(r, "leader")
    assert c["p_holm"] >= c["p_value"] and c["p_holm"] < 0.05
    # both favour a
    r = study({"a": {"test": [strong, strong], "val": [val_a, val_a]},
               "b": {"test": [weak, weak], "val": [val_b, val_b]}})
    assert "a beats b on the same 200 test clips" in report.conclusion(r)


def test_holm_can_withdraw_a_claim_the_raw_test_would_make():
    n = 200
    a = hits(n, 150)
    b = a.copy()
    b[:12], b[150:152] = False, True   # 12 clips only a gets right, 2 only b: exact p = 2 * 106 / 2**14
    models = {"a": {"test": [a], "val": [hits(n, 150)]}, "b": {"test": [b], "val": [hits(n, 140)]}}
    for i in range(6):   # more models, more (baseline) tests in the family
        models[f"m{i}"] = {"test": [hits(n, 60 + i)], "val": [hits(n, 50 + i)]}
    c = report.claim(study(models), "leader")
    assert c["p_value"] == pytest.approx(2 * 106 / 2 ** 14)
    assert 0.05 <= c["p_holm"] and c["winner"] is None


def test_the_family_size_printed_is_the_rows_claims_csv_tests(tmp_path):
    """Holm runs over one family per target; the methods text says so and prints its size,
    which is the number of claims.csv rows with a corrected p-value (as evaluate writes it)."""
    import re
    n = 200
    models = {f"m{i}": {"test": [hits(n, 100 + 10 * i)], "val": [hits(n, 100 + 10 * i)]} for i in range(4)}
    r = {**study(models), "target": "emotion"}
    pd.DataFrame(r["decisions"]["claims"]).to_csv(tmp_path / "claims.csv", index=False)
    claims = pd.read_csv(tmp_path / "claims.csv")
    text = report.statistics_text(r)
    printed = re.search(r"one family per target: the (\d+) tests the report states for the emotion target", text)
    assert printed and int(printed.group(1)) == claims["p_holm"].notna().sum() == len(claims) > 4
    assert "this report states" not in text


def test_a_model_below_the_majority_baseline_has_not_learned_the_task():
    n = 200
    r = study({"a": {"test": [hits(n, 150)], "val": [hits(n, 150)]},
               "b": {"test": [hits(n, 84)], "val": [hits(n, 140)]}})      # 42% against 40% majority
    assert r["decisions"]["baseline"]["test"] == {"class": "X", "rate": 0.4, "n": 200,
                                                  "counts": {"X": 80, "Y": 60, "U": 30, "D": 30}}
    # the plain split's test column is not what was scored (k folds pool every clip): not read
    r["counts"]["test"] = [1, 9, 1, 1]
    text = report.conclusion(r)
    assert "b does not beat always predicting the commonest test class (X, 40.0%" in text
    assert "it has not learned the task, whatever the rank" in text
    r = study({"a": {"test": [hits(n, 70)], "val": [hits(n, 80)]}, "b": {"test": [hits(n, 60)], "val": [hits(n, 70)]}})
    assert "No model beats always predicting the commonest test class (X, 40.0%" in report.conclusion(r)


def order_only_hits(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The order-only clips among labels_of(n), and two models right on every other clip: one
    right on 90% of the order-only ones, one blind to order (it names U for both: the U half)."""
    lt = labels_of(n)
    oo = np.isin(lt, [2, 3])
    return oo, ~oo | (np.cumsum(oo) % 10 != 0), ~oo | (lt == 2)


def test_order_only_leader_is_chosen_on_validation_and_its_ceiling_computed():
    _, good, blind = order_only_hits(200)
    val_good, val_blind = good.copy(), blind.copy()
    r = study({"seq": {"test": [good], "val": [val_good]}, "bag": {"test": [blind], "val": [val_blind]}})
    d = r["decisions"]["order_only"]
    assert d["leader"] == "seq" and d["n_test"] == 60 and d["blind_ceiling"] == pytest.approx(0.5)
    text = report.conclusion(r)
    assert "a model blind to frame order reaches at best 50.0%" in text
    assert "On those clips seq beats bag (50.0%, exact McNemar" in text
    # the leader on validation need not be the leader on test: then it is tested, not assumed
    r = study({"seq": {"test": [blind], "val": [val_good]}, "bag": {"test": [good], "val": [val_blind]}})
    assert "On those clips seq is beaten by bag" in report.conclusion(r)


def test_every_model_is_tested_against_the_order_blind_one_on_the_order_only_clips():
    oo, good, blind = order_only_hits(200)
    models = {"seq": {"test": [good], "val": [good]},                       # the order-only leader
              "tcn": {"test": [good.copy()], "val": [good & (np.cumsum(oo) % 5 != 0)]},
              "flat": {"test": [blind.copy()], "val": [blind.copy()]},    # as blind as the reference
              "bag": {"test": [blind], "val": [blind]}}
    r = study(models, order_blind="bag")
    d = r["decisions"]
    assert d["order_only"]["leader"] == "seq" and d["order_only"]["blind_model"] == "bag"
    vs_blind = {c["a"]: c for c in d["claims"] if c["kind"] == "order_blind"}
    assert set(vs_blind) == {"tcn", "flat"}             # seq's pair is in the leader's family, not twice
    assert vs_blind["tcn"]["winner"] == "tcn" and vs_blind["flat"]["winner"] is None
    assert "each other model against the order-blind model on the order-only test clips (2)" in d["family"]
    text = report.conclusion(r)
    assert "bag averages its frames' scores and so cannot see their order (50.0% on those clips); seq (90.0%, " \
           "exact McNemar" in text
    assert "tcn (90.0%, exact McNemar" in text and "beat it there; flat does not, after Holm's correction." in text
    # a blind reference that leads on validation is already compared with every model
    r = study({"seq": {"test": [good], "val": [blind]}, "bag": {"test": [blind], "val": [good]}}, order_blind="bag")
    assert not [c for c in r["decisions"]["claims"] if c["kind"] == "order_blind"]
    assert "cannot see their order" not in report.conclusion(r)
    # without a reference (or one the study did not train) there is no such family
    assert not [c for c in study(models)["decisions"]["claims"] if c["kind"] == "order_blind"]
    assert not [c for c in study(models, order_blind="tsn")["decisions"]["claims"] if c["kind"] == "order_blind"]
    evaluate.check_order_blind("tsn")                   # a model file: fine, trained or not
    with pytest.raises(ParamError, match=r"order_blind 'tns' is not a model of params/models/.*or pass '' for none"):
        evaluate.check_order_blind("tns")


def recommend_case(small_only_wrong: int) -> dict:
    """big: best on validation, 800 ms; small: 100 ms, wrong on `small_only_wrong` validation
    clips big gets right and right on 2 that big misses (a paired difference)."""
    n = 400
    big_val = hits(n, 320)
    small_val = big_val.copy()
    small_val[:small_only_wrong] = False
    small_val[320:322] = True
    test = hits(n, 300)
    return study({"big": {"test": [test], "val": [big_val], "latency": 800.0},
                  "small": {"test": [test], "val": [small_val], "latency": 100.0}}, n, n)


def test_a_faster_model_is_recommended_only_when_non_inferior():
    rec = recommend_case(3)["decisions"]["recommendation"]         # a quarter point worse
    assert rec["pick"] == "big" and rec["model"] == "small" and rec["reason"] == "faster_non_inferior"
    assert rec["candidates"][0]["val_diff_ci_low"] > -0.02
    r = recommend_case(22)                                           # 5 points worse on validation
    rec = r["decisions"]["recommendation"]
    assert rec["model"] == "big" and rec["instead"] is None and not rec["candidates"][0]["non_inferior"]
    text = report.recommendation(r)
    assert "Recommendation: big" in text and "No faster model is non-inferior within 2 points" in text
    text = report.recommendation(recommend_case(3))
    assert "Recommendation: small. It keeps up" in text and "8.0 times faster than big" in text
    assert "measured on the labelled (ground-truth) pet boxes" in text


def test_never_recommends_below_the_majority_baseline_nor_an_unmeasured_verdict():
    n = 200
    # lazy is fast and keeps up but does no better than always predicting X (40%)
    models = {"good": {"test": [hits(n, 150)], "val": [hits(n, 150)], "latency": 3000.0, "realtime": False},
              "lazy": {"test": [hits(n, 80)], "val": [hits(n, 80)], "latency": 10.0}}
    rec = study(models)["decisions"]["recommendation"]
    assert rec["model"] is None and rec["reason"] == "none_learned"
    # a verdict that was not measured (NaN) is not "keeps up"
    models["good"]["realtime"] = np.nan
    r = study(models)
    rec = r["decisions"]["recommendation"]
    assert "good" not in rec["keeps_up"] and rec["unknown"] == ["good"] and rec["model"] is None
    assert "(good not measured)" in report.recommendation(r)
    # no validation scores saved at all: nothing can be chosen on validation
    rec = evaluate.recommend(r["summary"], evaluate.Scored(), {}, {"good": True, "lazy": True})
    assert rec["reason"] == "no_val_scores" and rec["model"] is None
    # chosen on validation but no better than the baseline on test: vetoed
    models = {"fluke": {"test": [hits(n, 78)], "val": [hits(n, 150)]}, "b": {"test": [hits(n, 70)], "val": [hits(n, 100)]}}
    r = study(models)
    assert r["decisions"]["recommendation"]["reason"] == "fails_test_baseline"
    assert "Recommendation: none. fluke was chosen on validation" in report.recommendation(r)


def test_unequal_budgets_are_said_beside_the_ranking():
    n = 200
    r = study({"a": {"test": [hits(n, 150)], "val": [hits(n, 150)], "steps": 1600},
               "b": {"test": [hits(n, 140)], "val": [hits(n, 140)], "steps": 300}})
    text = report.conclusion(r)
    assert "The training budgets differ (a: 1600 optimizer steps, 10 CPU s; b: 300 optimizer steps" in text
    table = report.table(r["summary"])
    assert "| Training steps" in table and "1600" in table
    r["summary"]["train_steps"] = np.nan            # a run that did not record it
    assert "| n/a" in report.table(r["summary"])
    assert "may compare unequal budgets" in report.conclusion(r)


def test_balance_claim_uses_the_corrected_paired_test():
    n = 200
    base = {"lr": 0.002, "epochs": 16, "class_balance": "none"}
    params = {"a": {**base, "model": "a"}, "b": {**base, "model": "b", "class_balance": "sampler"}}
    r = study({"a": {"test": [hits(n, 140)], "val": [hits(n, 150)]},
               "b": {"test": [hits(n, 138)], "val": [hits(n, 140)]}}, run_params=params)
    assert evaluate.balance_pairs(params) == [("a", "b")]
    text = report.balance_comparison(r)
    assert "b is a trained with class balancing by sampling: top-1 69.0% against 70.0%" in text
    assert "not a significant difference in top-1 (exact McNemar, Holm-corrected p = 1.000" in text
    params["b"]["epochs"] = 8                       # differs in more than balancing: no pair
    assert evaluate.balance_pairs(params) == []


def test_schedule_is_described_from_the_resolved_config():
    from petaction.models import mmconfig
    p = {"epochs": 16, "warmup_epochs": 1, "lr_decay_from": 0.5}
    cfg = {"param_scheduler": mmconfig.schedule(p), "optimizer": {"type": "AdamW", "lr": 0.002}, "max_epochs": 16}
    assert report.schedule_text(cfg) == ("AdamW at peak lr 0.002: linear warm-up from 0.1 to 1 times the peak over "
                                         "epochs 0 to 1, then held at the peak over epochs 1 to 8, then cosine decay "
                                         "to 0 over epochs 8 to 16 (stepped per iteration)")
    cfg["param_scheduler"] = mmconfig.schedule({**p, "warmup_epochs": 0, "lr_decay_from": 0})
    assert report.schedule_text(cfg).endswith("cosine decay to 0 over epochs 0 to 16 (stepped per iteration)")


def test_wide_tables_are_split_and_unmeasured_verdicts_say_so():
    df = pd.DataFrame([{f"c{i}": i for i in range(10)}])
    md = report.md_table(df, max_columns=4)
    assert md.count("| c0 ") == 3 and "c9" in md           # 3 tables, each led by the first column
    r = recommend_case(3)
    r["summary"]["realtime_e2e"] = r["summary"]["realtime_e2e"].astype(object)
    r["summary"].loc[0, "realtime_e2e"] = np.nan
    table = report.cost_table(r["summary"], r["cost"])
    assert "not measured" in table
    assert all(line.count("|") <= report.MAX_COLUMNS + 1 for line in table.splitlines())


def test_detector_text_names_only_models_the_study_holds():
    det = {"detector": "ssd", "img_size": 64, "box_ap": 0.5, "box_ap50": 0.7, "box_ap75": 0.4,
           "n_images": {"test": 10}, "cpu_latency_ms": 5.0, "cpu_latency_p90_ms": 6.0}
    r = {"detector": det, "run_params": {"tsn": {"model_cfg": {}}}}
    assert "fast_rcnn" not in report.detector_text(r)
    r["run_params"]["fast_rcnn"] = {"model_cfg": {"type": "FastRCNN"}}
    assert "fast_rcnn needs one" in report.detector_text(r)
    assert "No pet detector" in report.detector_text({"detector": None})
    assert "Which of its epochs was kept is not recorded" in report.detector_text(r)
    det["selection"] = {"metric": "coco/bbox_mAP", "split": "val", "epochs": 5, "best_epoch": 3, "val_box_ap": 0.4567}
    assert ("Its weights are those of the epoch with the best validation box AP (coco/bbox_mAP: epoch 3 of 5, "
            "validation AP 0.457), tested once on the test frames.") in report.detector_text(r)


def test_curve_verdicts():
    from petaction.evaluation import diagnose
    def log(losses, vals):
        return pd.DataFrame({"epoch": range(1, len(losses) + 1), "train_loss": losses, "val_top1": vals,
                             "epoch_time_s": 2.0})
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 2.35, 2.3, 2.3], [.2, .2, .25, .2]))) == "stalled"
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 1.8, 1.2, 0.8], [.2, .4, .5, .6]))) == "under-trained"
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 1.2, 0.6, 0.2, 0.1, 0.05], [.5, .6, .5, .5, .45, .45]))) == "overfitting"
    assert diagnose.verdict(diagnose.curve_facts(log([2.4, 1.0, 0.5, 0.48, 0.47, 0.47], [.3, .5, .6, .62, .61, .62]))) == "converged"


def test_detector_latency_joins_the_verdict():
    from petaction.evaluation import cost
    df = pd.DataFrame({"model": ["a", "b"], "cpu_latency_ms": [10.0, 600.0], "cpu_latency_p90_ms": [12.0, 700.0],
                       "boxes_per_prediction": [2, 1]})
    det = {"cpu_latency_ms": 300.0, "cpu_latency_p90_ms": 350.0}
    out = cost.add_detector(df, det, update_hz=1.0)
    assert list(out["e2e_latency_ms"]) == [610.0, 900.0]     # a: two detections, b: one
    assert list(out["realtime_e2e"]) == [True, False]        # 700 + 350 ms > the 1000 ms budget
    assert out["headroom_e2e"].iloc[0] == pytest.approx(1000 / 712)
    assert cost.boxes_per_prediction({"model": "tsm", "mm_base": "tsm_r50", "model_cfg": {}, "sampling": "segments",
                                      "num_segments": 4, "clip_len": 8, "test_clips": 1}) == 4


@pytest.mark.skipif(not (shutil.which("pdftotext") and (shutil.which("chromium") or shutil.which("chromium-browser"))),
                    reason="needs poppler-utils' pdftotext and Debian's chromium")
def test_every_table_fits_the_printed_page(tmp_path):
    """The widest tables the report prints, through the report's own HTML and PDF path: every
    header cell's words are in the PDF's text (a table cut at the margin loses its last ones)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from petaction.reporting import render
    r = recommend_case(3)
    r["cost"]["rows"] = [{"model": m, "throughput_batch": 8, "cpu_throughput_cps": 50.0, "peak_mem_mb": 100.0,
                          "peak_mem_batch_mb": 300.0, "gpu_latency_ms": 1.0, "gpu_throughput_cps": 900.0}
                         for m in r["summary"]["model"]]
    tables = [report.table(r["summary"]), report.cost_table(r["summary"], r["cost"])]
    nb = new_notebook(cells=[new_code_cell("", outputs=[new_output("display_data", {"text/markdown": t})])
                             for t in tables])
    nbformat.write(nb, tmp_path / "t.ipynb")
    pdf = render.to_pdf(render.to_html(tmp_path / "t.ipynb", tmp_path / "t.html"), tmp_path / "t.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    words = set(text.split())
    header_rows = [block.splitlines()[0] for t in tables for block in t.split("\n\n")]
    assert len(header_rows) >= 4                      # both tables were split to fit
    for row in header_rows:
        for cell in row.strip("|").split("|"):
            for word in cell.split():
                assert word in words, f"header word {word!r} of {cell.strip()!r} is not on the page"
