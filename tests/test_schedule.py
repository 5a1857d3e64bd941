"""The study's GPU scheduler with a fake GPU list: placement, pinning, longest first."""
import threading
import time

import pytest

from petaction import params as P
from petaction import schedule, study


def test_gpus_and_strategy_are_checked():
    assert schedule.resolve_gpus(4) == ["0", "1", "2", "3"]
    assert schedule.resolve_gpus("0,2") == ["0", "2"] and schedule.resolve_gpus([1, 3]) == ["1", "3"]
    assert schedule.resolve_gpus([]) == [] and schedule.resolve_gpus(0) == []
    with pytest.raises(P.ParamError, match="gpus must be auto"):
        schedule.resolve_gpus("all")
    assert schedule.slots(["0", "1"], "parallel") == [["0"], ["1"]]
    assert schedule.slots(["0", "1"], "ddp") == [["0", "1"]]
    assert schedule.slots([], "parallel") == [[]]          # CPU only, one job: one process, in turn
    assert schedule.slots([], "parallel", 2) == [[], []]   # two CPU trainings side by side
    assert schedule.resolve_cpu_jobs(3) == 3
    for bad in (0, "two", True):
        with pytest.raises(P.ParamError, match="cpu_jobs must be"):
            study.load_study(None, {"cpu_jobs": bad})
    with pytest.raises(P.ParamError, match="target_train names 'emotions'"):
        study.load_study(None, {"target_train": {"emotions": {"epochs": 2}}})
    study.load_study(None, {"targets": ["action"], "target_train": {"emotion": {"epochs": 2}}})   # not run: fine
    with pytest.raises(P.ParamError, match="target_train.emotion"):
        study.load_study(None, {"targets": ["action", "emotion"], "target_train": {"emotion": {"epochz": 2}}})
    for bad in (1, -2, "3"):
        with pytest.raises(P.ParamError, match="folds must be"):
            study.load_study(None, {"folds": bad})
    with pytest.raises(P.ParamError, match="choose one of"):
        study.load_study(None, {"strategy": "fast"})
    assert schedule.env(["0", "1"]) == {"CUDA_VISIBLE_DEVICES": "0,1"} and schedule.env([]) == {}
    # n CPU slots share the cores: each job's torch gets its share of threads (at least one)
    assert schedule.env([], n_slots=2) == {"OMP_NUM_THREADS": str(schedule.cpu_threads(2))}
    assert schedule.cpu_threads(10 ** 6) == 1


@pytest.mark.parametrize("cores, mem_gib, jobs", [(8, 64, 4), (2, 64, 2), (8, 6, 1), (1, 2, 1)])
def test_auto_cpu_jobs_is_one_per_core_at_most_four_and_one_per_4_gib(monkeypatch, cores, mem_gib, jobs):
    import os
    page = 4096
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    monkeypatch.setattr(os, "sysconf", lambda k: page if k == "SC_PAGE_SIZE" else mem_gib * 2 ** 30 // page)
    assert schedule.resolve_cpu_jobs("auto") == jobs


@pytest.mark.parametrize("name", ["tsn", "x3d", "fast_rcnn"])
def test_training_cost_estimate_is_the_whole_forward_on_a_training_clip(name):
    """The estimate counts forward.py's forward (head included) on the train pipeline's input
    (one clip, whatever test_clips is); fast_rcnn's too."""
    from petaction.evaluation import cost, forward
    p = P.resolve_train({"model": name, "profile": "tiny", "test_clips": 3})
    model = forward.build_model(p, num_classes=12)
    x = forward.example_inputs(p, split="train")
    box = forward.is_box_model(model)
    if not box:
        assert x[0].shape[1] == (p["num_segments"] if p["sampling"] == "segments" else 1)
    pre = forward.preprocess(model, x[0])
    backbone_only = cost.gflops(model.backbone if box else model, pre)   # model(x): mmaction2's tensor mode
    g = schedule.gflops_per_clip(p)
    assert g > backbone_only > 0
    assert schedule.job_cost(p, rows=[]) == pytest.approx(g * p["epochs"])   # nothing measured: GFLOPs x epochs
    if p["sampling"] == "clip" and not box:   # a prediction's three test views cost about 3x a training clip
        assert cost.gflops(forward.build(model), forward.example_inputs(p)) == pytest.approx(3 * g, rel=0.05)


def throughput_row(p, step_ms, cl_ms=None, load_ms=5.0, val_s=2.0, steps=10, gmacs=1.0):
    """A benchmarks/throughput.py row for p's step settings."""
    cands = {"contiguous": {"median_ms": step_ms}}
    if cl_ms:
        cands["channels_last"] = {"median_ms": cl_ms}
    return {"model": p["model"], "step_key": schedule.step_key(p), "steps_per_epoch": steps, "candidates": cands,
            "load_ms_per_batch": load_ms, "validation": {"load_s": val_s / 2, "forward_s": val_s / 2},
            "gmacs_per_clip": gmacs, "epoch": {"epoch_s": steps * (step_ms + load_ms) / 1000 + val_s}}


def test_training_cost_is_the_measured_seconds_of_its_step_settings():
    """A training throughput.json measured costs epochs x (steps x (its layout's step + a batch's
    loading) + a validation pass); one it did not measure costs its GFLOPs x epochs at the measured
    trainings' seconds per GFLOP-epoch, so both are in seconds; a changed step setting is not
    the measured one."""
    p = P.resolve_train({"model": "tsn", "profile": "tiny", "study": "nowhere"})
    rows = [throughput_row(p, 100.0, cl_ms=50.0, steps=10)]
    assert schedule.job_cost(p, rows) == pytest.approx(p["epochs"] * (10 * 0.105 + 2.0))
    assert schedule.job_cost({**p, "channels_last": True}, rows) == pytest.approx(p["epochs"] * (10 * 0.055 + 2.0))
    other = {**p, "img_size": p["img_size"] * 2}
    assert schedule.measured_cost(other, rows) is None
    rate = schedule.seconds_per_gflop_epoch(rows)
    assert rate == pytest.approx(rows[0]["epoch"]["epoch_s"] / 1.0)
    assert schedule.job_cost(other, rows) == pytest.approx(schedule.gflops_per_clip(other) * p["epochs"] * rate)
    assert schedule.costs_in_seconds(rows) and not schedule.costs_in_seconds([])
    # a row timed while the machine was twice as busy (half the matmul peak) counts half its seconds
    busy = [{**rows[0], "peak_gflops_s": 10.0}, {**throughput_row(other, 100.0), "peak_gflops_s": 20.0}]
    assert schedule.job_cost(p, busy) == pytest.approx(p["epochs"] * (10 * 0.105 + 2.0) / 2)


def test_the_pool_orders_trainings_by_measured_seconds_not_flops(monkeypatch):
    """x3d has the fewest FLOPs but the slowest step: measured, it starts first."""
    ps = [P.resolve_train({"model": m, "profile": "tiny", "study": "nowhere"}) for m in ("tsn", "x3d")]
    g = [schedule.gflops_per_clip(p) for p in ps]
    assert g[1] < g[0]
    rows = [throughput_row(ps[0], 100.0), throughput_row(ps[1], 400.0)]
    monkeypatch.setattr(schedule, "measured", lambda path=None: rows)
    costs = study.estimates(ps)
    assert schedule.lpt_order(costs) == [1, 0]
    monkeypatch.setattr(schedule, "measured", lambda path=None: [])
    assert schedule.lpt_order(study.estimates(ps)) == [0, 1]   # GFLOPs alone: the other way round


def test_lpt_plan_balances_the_full_profile_shape():
    # nine jobs shaped like the full study (GFLOPs x epochs, arbitrary units): LPT on 4 slots
    costs = [330, 329, 627, 315, 2175, 290, 103, 1083, 980]
    pl = schedule.plan(costs, 4)
    assert pl["total"] == sum(costs) and pl["per_slot"] == sum(costs) / 4
    assert pl["makespan"] >= max(costs)
    by_slot = {}
    for i, (s, b, e) in enumerate(pl["jobs"]):
        assert e - b == costs[i]
        by_slot.setdefault(s, []).append((b, e))
    for spans in by_slot.values():                        # one job at a time per slot
        spans.sort()
        assert all(e1 <= b2 for (_, e1), (b2, _) in zip(spans, spans[1:]))
    assert pl["jobs"][costs.index(max(costs))][1] == 0     # the costliest starts at once
    # one huge job bounds any schedule: the plan then equals it
    assert schedule.plan([10, 1, 1, 1], 4)["makespan"] == 10


def test_run_on_fake_gpus_matches_the_plan():
    costs = [3, 1, 2, 2, 1, 3]
    unit = 0.05
    seen, busy, lock = [], set(), threading.Lock()

    def start(i, slot):
        with lock:
            assert slot[0] not in busy, "two jobs on one GPU"
            busy.add(slot[0])
            seen.append((i, schedule.env(slot)["CUDA_VISIBLE_DEVICES"]))
        time.sleep(costs[i] * unit)
        with lock:
            busy.discard(slot[0])
        return {"status": "done", "job": i}

    gpus = schedule.resolve_gpus("0,1,2")
    t0 = time.perf_counter()
    results, timeline = schedule.run(costs, schedule.slots(gpus, "parallel"), start)
    wall = time.perf_counter() - t0
    assert [r["job"] for r in results] == list(range(len(costs)))
    assert {g for _, g in seen} == {"0", "1", "2"}
    assert sorted(i for i, _ in seen[:3]) in ([0, 2, 5], [0, 3, 5])   # the three costliest first
    predicted = schedule.plan(costs, 3)["makespan"] * unit
    assert predicted <= wall < predicted + 0.25
    assert all(end - begin >= costs[i] * unit for i, (_, begin, end) in enumerate(timeline))


def test_a_failing_job_does_not_stop_its_gpu():
    def start(i, slot):
        if i == 0:
            raise RuntimeError("boom")
        return i
    results, _ = schedule.run([5, 1, 1], [["0"]], start, log=lambda *_: None)
    assert isinstance(results[0], RuntimeError) and results[1:] == [1, 2]


def test_study_pins_each_training_to_its_gpu(tmp_path, monkeypatch):
    """The study on two fake GPUs: every training step gets its own CUDA_VISIBLE_DEVICES;
    with ddp one step at a time gets both and nproc 2; on two CPU slots each gets one thread.
    Both targets' trainings and the detector share one pool, the detector first."""
    for target in ("", "emotion"):
        (tmp_path / "s" / target / "data").mkdir(parents=True)
        for f in ("train.txt", "val.txt", "test.txt", "classes.json"):
            (tmp_path / "s" / target / "data" / f).write_text("x")
    calls = []

    def fake_run(self, force, log, env=None):
        env = env or {}
        calls.append((self.name, self.parameters.get("nproc"), env.get("CUDA_VISIBLE_DEVICES"), env.get("OMP_NUM_THREADS")))
        time.sleep(0.2)
        return {"step": self.name, "status": "done", "notebook": str(self.out_nb)}

    monkeypatch.setattr(study.Step, "run", fake_run)
    monkeypatch.setattr(schedule, "job_cost", lambda p: {"tsn": 3.0, "tsm": 2.0, "x3d": 1.0}[p["model"]])
    monkeypatch.setattr(schedule, "cpu_threads", lambda n: 1)
    base = {"study": "s", "results_dir": str(tmp_path), "profile": "tiny", "models": ["x3d", "tsm", "tsn"]}
    study.run_targets(study.load_study(None, {**base, "gpus": [0, 1]}), False, lambda *_: None)
    train = [c for c in calls if c[0].startswith("train")]
    assert [c[0].split()[1] for c in train[:2]] == ["tsn", "tsm"]      # longest first
    assert {c[2] for c in train} == {"0", "1"} and all(c[1] is None for c in train)
    calls.clear()
    study.run_targets(study.load_study(None, {**base, "gpus": [0, 1], "strategy": "ddp"}), False, lambda *_: None)
    train = [c for c in calls if c[0].startswith("train")]
    assert [c[1:3] for c in train] == [(2, "0,1")] * 3
    calls.clear()
    study.run_targets(study.load_study(None, {**base, "gpus": [], "cpu_jobs": 2, "detector": True,
                                              "targets": ["action", "emotion"],
                                              "target_models": {"emotion": ["tsm"]}}), False, lambda *_: None)
    names = [c[0] for c in calls]
    assert names[:2] == ["prepare (action)", "prepare (emotion)"]     # every target prepared first
    assert "detector" in names[2:4] and "train tsm seed 0 (emotion)" in names   # the detector starts at once
    assert names[-2:] == ["evaluate (action)", "evaluate (emotion)"]  # evaluated once all have trained
    assert {c[3] for c in calls if c[0].startswith(("train", "detector"))} == {"1"}


def test_kernel_gets_the_pinned_environment(tmp_path):
    """papermill has no per-run environment: the kernel manager study passes adds it."""
    import nbformat
    import papermill as pm
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'))")]
    nb.metadata["kernelspec"] = {"name": study.KERNEL, "display_name": study.KERNEL, "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    km = study.EnvKernelManager(study.KERNEL, schedule.env(["3"]))
    try:
        out = pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name=study.KERNEL,
                                  km=km, progress_bar=False)
    finally:
        km.shutdown_kernel()
    assert out.cells[0].outputs[0]["text"].strip() == "3"
