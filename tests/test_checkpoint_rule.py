"""The checkpoint rule chosen on validation alone (evaluation.checkpoint_rule), its benchmark
script and its report paragraph, on planted arrays and run folders (no training)."""
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from petaction.core import atomic, paths, provenance
from petaction.evaluation import checkpoint_rule as C
from petaction.reporting import checkpoint_section

K, PER_CLASS = 4, 10
LABELS = np.repeat(np.arange(K), PER_CLASS)


def epochs_correct(correct: np.ndarray) -> np.ndarray:
    """Predictions (epochs x clips) right exactly where ``correct`` is True."""
    return np.where(correct, LABELS, (LABELS + 1) % K).astype(np.int16)


def peak_then_collapse():
    """A real peak: one epoch right on every clip, the last epoch wrong on most."""
    rng = np.random.default_rng(1)
    c = rng.random((6, LABELS.size)) < 0.4
    c[2] = True
    c[-1] = rng.random(LABELS.size) < 0.2
    return epochs_correct(c)


def noise_then_plateau():
    """No real peak: 30 epochs right on a fresh random half of the clips each (their best is luck),
    then a last epoch right on the same 70% of every class."""
    rng = np.random.default_rng(2)
    c = rng.random((31, LABELS.size)) < 0.5
    c[-1] = np.tile(np.arange(PER_CLASS) < 7, K)
    return epochs_correct(c)


def test_heldout_picks_the_rule_that_holds_up_on_clips_it_did_not_pick_on():
    peak = C.heldout(peak_then_collapse(), LABELS)
    assert peak["best"]["heldout"] > peak["last"]["heldout"]
    noise = C.heldout(noise_then_plateau(), LABELS)
    assert noise["last"]["heldout"] > noise["best"]["heldout"]
    # the best of many noisy epochs looks better on the half it was picked on than on the other
    assert noise["best"]["within_val_optimism"] > 0.1
    assert abs(noise["last"]["within_val_optimism"]) < 0.05
    assert C.choose([peak])["chosen"] == "best" and C.choose([noise, noise])["chosen"] == "last"


def test_choose_pairs_runs_and_gives_an_interval_only_over_several():
    ev = lambda b, l: {"best": {"heldout": b, "within_val_optimism": 0.0},   # noqa: E731
                       "last": {"heldout": l, "within_val_optimism": 0.0}}
    one = C.choose([ev(0.5, 0.6)])
    assert one["chosen"] == "last" and one["ci_low"] is None
    many = C.choose([ev(0.5, 0.6), ev(0.7, 0.72), ev(0.4, 0.45)])
    assert many["chosen"] == "last" and many["diff_best_minus_last"] == pytest.approx(-0.17 / 3)
    assert many["ci_low"] <= many["diff_best_minus_last"] <= many["ci_high"] < 0
    assert C.choose([ev(0.6, 0.6)])["chosen"] == "best"   # a tie keeps the default
    assert C.choose([])["chosen"] is None


def scores(correct_share: float, n: int = LABELS.size) -> dict:
    s = np.full((n, K), 0.1, np.float32)
    right = np.arange(n) < round(correct_share * n)
    s[np.arange(n), np.where(right, LABELS, (LABELS + 1) % K)] = 0.7
    return {"ids": np.array([f"c{i}" for i in range(n)]), "labels": LABELS, "scores": s, "classes": np.arange(K)}


def fake_run(root, model, seed, preds, rule="best", val=(0.9, 0.6), test=(0.6, 0.55)):
    run = root / "models" / model / f"seed{seed}"
    run.mkdir(parents=True)
    atomic.write_json(run / "params.json", {"checkpoint": rule})
    atomic.write_json(run / "metrics.json", {})
    atomic.savez(run / "val_epochs.npz", epochs=np.arange(1, len(preds) + 1), preds=preds, labels=LABELS,
                 ids=np.array([f"c{i}" for i in range(LABELS.size)]))
    other = "last" if rule == "best" else "best"
    for split, (best, last) in (("val", val), ("test", test)):
        atomic.savez(run / f"{split}_scores.npz", **scores(best if rule == "best" else last))
        atomic.savez(run / f"{split}_scores_{other}.npz", **scores(best if other == "best" else last))
    return run


def test_the_choice_reads_no_test_file(tmp_path):
    runs = [fake_run(tmp_path, "tsn", 0, noise_then_plateau()), fake_run(tmp_path, "tsn", 1, peak_then_collapse()),
            fake_run(tmp_path, "tsm", 0, noise_then_plateau(), rule="last")]
    assert C.run_folders(tmp_path) == sorted(runs)
    table, decision = C.measure(runs)
    assert decision["in_force"] == "mixed" and decision["n_runs"] == 3
    tsn = table.set_index("model").loc["tsn"]
    assert tsn["n_runs"] == 2
    assert tsn["val_minus_test_best"] == pytest.approx(0.9 - 0.6, abs=0.03)
    assert tsn["val_minus_test_last"] == pytest.approx(0.6 - 0.55, abs=0.03)
    assert decision["val_minus_test"]["best"] == pytest.approx(0.3, abs=0.03)
    for f in tmp_path.rglob("test_scores*.npz"):
        f.unlink()
    table2, decision2 = C.measure(runs)
    assert table2["val_minus_test_best"].isna().all() and decision2["val_minus_test"]["best"] is None
    drop = lambda d: {k: v for k, v in d.items() if k != "val_minus_test"}   # noqa: E731
    assert drop(decision2) == drop(decision)
    assert C.write(runs, tmp_path)["chosen"] == decision["chosen"]
    assert list(pd.read_csv(tmp_path / C.CSV)["model"]) == ["tsn", "tsm", "all"]   # in the runs' order


def bench():
    spec = importlib.util.spec_from_file_location("bench_checkpoint_rule", paths.REPO / "benchmarks" / "checkpoint_rule.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_refuses_a_dirty_tree_and_records_a_clean_one(tmp_path, monkeypatch, capsys):
    target = tmp_path / "study"
    fake_run(target, "tsn", 0, peak_then_collapse())
    fake_run(target, "tsn", 1, noise_then_plateau())
    monkeypatch.setattr(provenance, "REPO", tmp_path)   # save_benchmark's benchmarks/results/ here
    args = ["--study", "study", "--results-dir", str(tmp_path)]
    dirty = lambda: {"commit": "abc", "dirty": True}   # noqa: E731
    assert bench().main(args, git=dirty) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "dirty" in err and "commit" in err
    assert not (tmp_path / "benchmarks").exists()
    assert bench().main(args, git=lambda: {"commit": "abc", "dirty": False}) == 0
    saved = json.loads((tmp_path / "benchmarks" / "results" / "checkpoint_rule.json").read_text())
    assert saved["decision"]["n_runs"] == 2 and "provenance" in saved
    assert [m["model"] for m in saved["models"]] == ["tsn", "all"]


def test_report_paragraph_states_the_rule_its_evidence_and_its_optimism(tmp_path):
    runs = [fake_run(tmp_path, "tsn", 0, noise_then_plateau()), fake_run(tmp_path, "tsn", 1, noise_then_plateau())]
    (tmp_path / "evaluation").mkdir()
    decision = C.write(runs, tmp_path / "evaluation")
    r = {"study": "s", "target": "action", "eval": tmp_path / "evaluation", "decisions": {"checkpoint_rule": decision}}
    text = " ".join(t for _, t in checkpoint_section.section(r))
    assert decision["chosen"] == "last" and decision["in_force"] == "best"
    assert "`checkpoint: best`" in text and "not the rule in force: set `checkpoint: last`" in text
    table = pd.read_csv(tmp_path / "evaluation" / C.CSV).set_index("model")
    assert "The rule in force (`best`) leaves a validation-minus-test optimism" in text
    assert checkpoint_section.pts(table.loc["all", "val_minus_test_best"]) in text
    assert "The rule chosen on validation (`last`) leaves" in text
    assert checkpoint_section.pts(table.loc["all", "val_minus_test_last"]) in text
    assert checkpoint_section.section({**r, "decisions": {}}) == []
