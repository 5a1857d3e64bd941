"""The study console: time left from planted estimates and durations, the bar only where it
redraws in place, and kernels started without ipykernel's transport warning."""
import io

import pytest

from petaction import console, schedule
from petaction.console import Console, TimeLeft


def planted() -> TimeLeft:
    """Four trainings (GFLOPs x epochs 4, 2, 2, 1) on 2 slots, then one evaluation of 2 models
    and the report."""
    t = TimeLeft(n_slots=2)
    for name, cost in (("a", 4), ("b", 2), ("c", 2), ("d", 1)):
        t.expect(name, "train", cost, pooled=True)
    t.expect("evaluate (action)", "evaluate", 2)
    t.expect("report", "report", 1)
    return t


def test_time_left_waits_for_the_first_training():
    t = planted()
    assert t.left(now=0)[1] == ["train", "evaluate", "report"]
    assert t.text(now=0) == "time left: known when the first training ends"


def test_time_left_scales_the_estimates_by_measured_over_estimated():
    t = planted()
    t.start("a", now=0)
    t.finish("a", 40.0)                       # cost 4 in 40 s: 10 s per unit
    assert t.rate("train") == pytest.approx(10.0)
    # b, c, d wait: 20, 20, 10 s on 2 slots, longest first -> 30 s
    assert t.left(now=40) == (pytest.approx(30.0), ["evaluate", "report"])
    assert t.text(now=40) == "~30 s left + evaluation, the report"
    t.start("b", now=40)                      # b has 15 s left at 45; c takes the free slot, d follows b
    assert t.left(now=45)[0] == pytest.approx(25.0)
    t.finish("b", 60.0)                       # 3x its estimate: the rate follows the measurements
    assert t.rate("train") == pytest.approx((40 + 60) / (4 + 2))
    assert t.left(now=100)[0] == pytest.approx(2 * 100 / 6)   # c and d side by side: c's 2 units
    t.finish("c", None)                                        # failed or skipped: gone, nothing learnt
    t.finish("d", 10.0)
    t.start("evaluate (action)", now=200)
    t.finish("evaluate (action)", 30.0)
    assert t.left(now=230) == (0.0, ["report"])


def test_costs_in_seconds_give_a_time_left_from_the_start():
    """Trainings costed in measured seconds (prior rate 1) have a time left before any ends,
    and the measured rate replaces the prior once one does."""
    t = planted()
    t.prior["train"] = 1.0
    assert t.left(now=0)[0] == pytest.approx(5.0)   # 4, 2, 2, 1 s on 2 slots, longest first
    assert "known when" not in t.text(now=0)
    t.start("a", now=0)
    t.finish("a", 8.0)                               # twice the measured seconds here
    assert t.rate("train") == pytest.approx(2.0)


def test_a_placeholder_cost_does_not_correct_the_rate():
    t = TimeLeft(n_slots=1)
    t.expect("train tsn", "train", 2, pooled=True)
    t.expect("detector", "train", 2, pooled=True, calibrates=False)
    t.finish("detector", 500.0)
    assert t.rate("train") is None
    t.finish("train tsn", 20.0)
    assert t.rate("train") == pytest.approx(10.0)


def test_serial_steps_add_after_the_pool():
    t = TimeLeft(n_slots=2)
    t.expect("evaluate (action)", "evaluate", 4)
    t.expect("evaluate (emotion)", "evaluate", 2)
    t.finish("evaluate (action)", 40.0)
    t.expect("x", "train", 1, pooled=True)
    t.finish("x", 5.0)
    t.expect("y", "train", 3, pooled=True)
    t.start("evaluate (emotion)", now=0)
    assert t.left(now=5) == (pytest.approx(15 + 20 - 5), [])


@pytest.mark.parametrize("n_slots", [1, 2, 3])
def test_pool_makespan_is_the_schedulers_plan(n_slots):
    costs = [7.0, 3.0, 5.0, 5.0, 1.0, 2.0]
    assert console.pool_makespan([], costs, n_slots) == pytest.approx(schedule.plan(costs, n_slots)["makespan"])
    assert console.pool_makespan([4.0], [], n_slots) == 4.0


def test_lines_carry_elapsed_count_and_time_left_and_no_bar_in_a_log():
    stream, lines = io.StringIO(), []
    con = Console(lines.append, n_slots=1, stream=stream)
    con.times.expect("train tsn", "train", 1.0, pooled=True)
    con.times.expect("train tsm", "train", 1.0, pooled=True)
    with con.pool(["train tsn", "train tsm"], refresh_s=0.01):
        con.started("train tsn")
        con(f"[done] train tsn in 3 s{con.finished('train tsn', 3.0)}")
    assert stream.getvalue() == ""            # not a terminal: the bar stays off
    assert lines[0].startswith("[done] train tsn in 3 s | 1/2 trainings, 0:00 elapsed, ~3 s left")


def test_the_bar_redraws_where_it_replaces_its_line():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    con = Console(lambda *_: None, n_slots=1, stream=stream)
    con.times.expect("a", "train", 1.0, pooled=True)
    with con.pool(["a"], refresh_s=0.01):
        con.started("a")
        con.finished("a", 2.0)
    assert "trainings: 1/1" in stream.getvalue() and "0 s left" in stream.getvalue()


def run_in_kernel(code: str, tmp_path) -> list:
    """The outputs of one code cell run by papermill in the study's kernel, as a study runs it."""
    import nbformat
    import papermill as pm
    from petaction import study
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": study.KERNEL, "display_name": study.KERNEL, "language": "python"}
    nbformat.write(nb, tmp_path / "in.ipynb")
    km = study.EnvKernelManager(study.KERNEL, {})
    try:
        pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), kernel_name=study.KERNEL,
                            progress_bar=False, km=km)
    finally:
        if km.has_kernel:
            km.shutdown_kernel()
    return nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0].outputs


def test_a_kernel_starts_without_the_transport_warning(tmp_path, capfd):
    """The ipykernel warning goes to the kernel's stderr, the study's own fd 2."""
    outputs = run_in_kernel("print(6 * 7)", tmp_path)
    assert outputs[0]["text"] == "42\n"
    assert "without encryption" not in capfd.readouterr().err


def test_kinds_listed_later_are_unknown_until_listed():
    t = TimeLeft(n_slots=1)
    t.expect("prepare (action)", "prepare", 1)
    t.finish("prepare (action)", 5.0)
    t.later("train")                          # the trainings are listed after preparation
    assert t.text(now=5) == "time left: known when the first training ends"
    t.listed("train")                         # every training fresh: none to run
    assert t.text(now=5) == "~0 s left"


def test_the_pool_leaves_the_working_folder_as_it_found_it(tmp_path, monkeypatch):
    """papermill's cwd= chdirs the whole process; two runs side by side restore each other's."""
    import os
    from petaction import study

    class ChdirStep:
        def __init__(self, name):
            self.name, self.done, self.after = name, tmp_path / name / "metrics.json", None
            self.out_nb = self.done.with_name("train.ipynb")

        def fresh(self, log=print):
            return False

        def run(self, force, log, env=None):
            import time
            old = os.getcwd()         # as papermill.utils.chdir does
            os.chdir(tmp_path)
            time.sleep(0.1 if self.name == "a" else 0.2)
            os.chdir(old)
            return {"step": self.name, "status": "done", "notebook": str(self.out_nb)}

    monkeypatch.chdir(tmp_path.parent)
    steps = [ChdirStep("a"), ChdirStep("b")]
    study.train_all(steps, [None, None], {"gpus": [], "strategy": "parallel", "cpu_jobs": 2}, False, lambda *_: None)
    assert os.getcwd() == str(tmp_path.parent)


def test_in_a_jupyter_kernel_the_training_bar_is_a_widget(tmp_path):
    """In JupyterLab the pool's bar is tqdm.auto's ipywidgets bar (a widget view in the cell's
    output), not the text fallback tqdm prints when ipywidgets is missing."""
    outputs = run_in_kernel("from petaction.console import Console\n"
                            "con = Console(log=lambda m: None)\n"
                            "with con.pool(['a'], refresh_s=0.1):\n"
                            "    con.finished('a', 1.0)\n", tmp_path)
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    assert not any("IProgress not found" in o.get("text", "") for o in outputs)


def test_each_step_end_records_the_time_left_said_then(monkeypatch):
    """The forecasts study_status.json keeps (benchmarks/study_time.py compares the one nearest
    the half-way point with the time that actually remained)."""
    import importlib.util
    clock = iter([100.0, 100.0, 110.0, 110.0, 130.0, 130.0, 130.0])
    monkeypatch.setattr(console.time, "time", lambda: next(clock))
    con = Console(log=lambda _: None)
    for name, cost in (("a", 1), ("b", 1)):
        con.times.expect(name, "train", cost, pooled=True)
    con.times.later("evaluate")
    con.started("a")
    con.finished("a", 10.0)     # at 10 s: b has 10 s left at the measured rate; evaluation unknown
    assert con.forecasts == [[10.0, 10.0, ["evaluate"]]]
    spec = importlib.util.spec_from_file_location("study_time", console.__file__.replace(
        "lib/petaction/console.py", "benchmarks/study_time.py"))
    study_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study_time)
    status = {"wall_time_s": 40.0, "time_left_forecasts": [[5.0, None, ["train"]], [18.0, 30.0, []],
                                                           [20.0, 2.0, ["confirm"]], [30.0, 5.0, []]]}
    # nearest the half-way point (20 s) with a forecast of everything (not the lower bound at 20 s
    # that still names the confirm set's trials): 30 s said, 22 s remained
    assert study_time.halfway(status) == {"elapsed_s": 18.0, "forecast_left_s": 30.0, "actual_left_s": 22.0,
                                          "relative_error": round(8 / 22, 3)}
    assert study_time.halfway({"wall_time_s": 40.0}) is None
    t = TimeLeft()
    t.expect("a", "train", 1, pooled=True)
    t.later("confirm")
    t.start("a", now=0)
    t.finish("a", 10.0)
    assert t.text(now=10) == "~0 s left + the confirm set's trials"   # named until the screening lists them
    t.listed("confirm")
    assert t.text(now=10) == "~0 s left"
