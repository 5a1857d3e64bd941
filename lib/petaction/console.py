"""What `make study` prints: one line per step with the study's elapsed time and time left, a
progress bar over the training pool, and the Jupyter kernels started quietly.

Time left: every step the study will still run has a cost in its kind's unit (a training:
the scheduler's estimate, schedule.job_cost: seconds measured by benchmarks/throughput.py where
it holds the training, GFLOPs x epochs scaled to them where not; an evaluation: its number of models; the
report: 1). A kind's seconds per unit is measured on this machine, from the steps of that kind
that finished in this run (measured / estimated), so the estimate corrects itself as trainings
finish. The training pool's remaining time is the longest-first schedule (schedule.py) of
what waits, on slots busy for what the running trainings have left; the other steps run one
after another. A kind nothing has measured yet is named instead of guessed ("+ evaluation"),
unless its costs are seconds already (the trainings' measured ones: ``prior``).

The bar (tqdm.auto: a widget in JupyterLab when ipywidgets is installed, text in a terminal)
redraws every second where a redraw replaces the line: a terminal or a notebook. Written to a
file or a pipe it stays off, so a log holds the step lines only (they carry the same count).
"""
from __future__ import annotations

import contextlib
import sys
import threading
import time
import warnings

from . import schedule

KIND_WORDS = {"prepare": "preparation", "train": "training", "evaluate": "evaluation", "report": "the report",
              "confirm": "the confirm set's trials"}   # known once trial 1 is screened (phases.py)


def kernel_manager_class():
    """A jupyter_client KernelManager that starts kernels without the ipykernel warning
    "Kernel is running over TCP without encryption": with CurveZMQ keys where pyzmq has curve
    (the kernelspec ipykernel installs declares it), else with the kernel app's log level at
    ERROR, which hides that warning and keeps the kernel's errors."""
    import zmq
    from jupyter_client.manager import KernelManager

    class QuietKernelManager(KernelManager):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.transport_encryption = "auto" if zmq.has("curve") else "disabled"

        def start_kernel(self, **kw):
            if not self.curve_encryption_available():
                kw["extra_arguments"] = [*kw.get("extra_arguments", []), "--IPKernelApp.log_level=ERROR"]
            return super().start_kernel(**kw)

        def curve_encryption_available(self) -> bool:
            return self.transport_encryption == "auto" and self._kernel_supports_curve_encryption()

    return QuietKernelManager


def clock(seconds: float) -> str:
    """h:mm:ss or m:ss."""
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def duration(seconds: float) -> str:
    """A time left, as rounded as an estimate deserves."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TimeLeft:
    """The study's remaining steps and what finished ones measured (module docstring)."""

    def __init__(self, n_slots: int = 1):
        self.n_slots = max(1, n_slots)
        self.steps = {}      # name -> dict(kind, cost, pooled, calibrates)
        self.started = {}    # name -> start time (time.time())
        self.measured = {}   # name -> seconds (done steps only)
        self.gone = set()    # finished, skipped or failed: no time left
        self.unlisted = set()   # kinds the study will run whose steps are not known yet
        self.prior = {}      # kind -> seconds per unit before any step of it finished (costs in seconds: 1)

    def expect(self, name: str, kind: str, cost: float, pooled: bool = False, calibrates: bool = True) -> None:
        """A step the study will run; `pooled`: in the training pool; `calibrates`: its
        measured time corrects its kind's rate (false for a placeholder cost)."""
        self.steps[name] = dict(kind=kind, cost=float(cost), pooled=pooled, calibrates=calibrates)
        self.gone.discard(name)
        self.unlisted.discard(kind)

    def later(self, kind: str) -> None:
        """Steps of this kind come, not listed yet (the trainings, known once the data is
        prepared): until expect() lists one, or listed(kind) says there are none, unknown."""
        self.unlisted.add(kind)

    def listed(self, kind: str) -> None:
        self.unlisted.discard(kind)

    def start(self, name: str, now: float | None = None) -> None:
        self.started[name] = time.time() if now is None else now

    def finish(self, name: str, seconds: float | None) -> None:
        """Done after `seconds`; None: skipped or failed (no time left, nothing learnt)."""
        self.gone.add(name)
        self.started.pop(name, None)
        if seconds is not None:
            self.measured[name] = seconds

    def rate(self, kind: str) -> float | None:
        """Seconds per cost unit of a kind: measured / estimated over its finished steps."""
        done = [(self.measured[n], s["cost"]) for n, s in self.steps.items()
                if n in self.measured and s["kind"] == kind and s["calibrates"] and s["cost"] > 0]
        cost = sum(c for _, c in done)
        return sum(m for m, _ in done) / cost if cost else self.prior.get(kind)

    def left(self, now: float | None = None) -> tuple[float, list[str]]:
        """(seconds left of what can be estimated, the kinds still unmeasured)."""
        now = time.time() if now is None else now
        unknown, pool_busy, pool_wait, serial = list(self.unlisted), [], [], 0.0
        for name, s in self.steps.items():
            if name in self.gone:
                continue
            r = self.rate(s["kind"])
            if r is None:
                unknown.append(s["kind"])
                continue
            est = s["cost"] * r
            if name in self.started:
                est = max(est - (now - self.started[name]), 0.0)
            if not s["pooled"]:
                serial += est
            elif name in self.started:
                pool_busy.append(est)
            else:
                pool_wait.append(est)
        kinds = [k for k in KIND_WORDS if k in unknown] + sorted(set(unknown) - set(KIND_WORDS))
        return pool_makespan(pool_busy, pool_wait, self.n_slots) + serial, kinds

    def text(self, now: float | None = None) -> str:
        seconds, unknown = self.left(now)
        if "train" in unknown:
            return "time left: known when the first training ends"
        more = f" + {', '.join(KIND_WORDS.get(k, k) for k in unknown)}" if unknown else ""
        return f"~{duration(seconds)} left{more}"


def pool_makespan(busy: list[float], waiting: list[float], n_slots: int) -> float:
    """When the last of the pool's jobs ends: slots busy for `busy` (the running jobs' time
    left), then the waiting jobs longest first, each on the slot that frees first (the
    scheduler's LPT rule)."""
    return schedule.plan(waiting, n_slots, busy)["makespan"]


def in_jupyter_kernel() -> bool:
    """Running inside a Jupyter kernel (JupyterLab, a notebook), as tqdm.auto decides."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


class Console:
    """The study's printed lines (through `log`, default: tqdm.write beside the bar), its
    time left, and the training pool's bar. Safe to call from the pool's threads."""

    def __init__(self, log=None, n_slots: int = 1, stream=None):
        self._log, self.stream = log, stream or sys.stderr
        self.t0 = time.time()
        self.times = TimeLeft(n_slots)
        self.lock = threading.RLock()
        self.bar = None
        self.pool_done = self.pool_total = 0
        self.forecasts = []   # [elapsed s, predicted s left or None, kinds unmeasured] at each step's end

    def __call__(self, message: str) -> None:
        with self.lock:
            if self._log is not None:
                self._log(message)
            else:
                from tqdm.auto import tqdm
                tqdm.write(message, file=sys.stdout)
                sys.stdout.flush()   # a log file or pipe gets each line as it happens

    def started(self, name: str) -> None:
        with self.lock:
            self.times.start(name)

    def finished(self, name: str, seconds: float | None) -> str:
        """Record a step's end (seconds None: skipped or failed) and return the line's tail:
        the study's elapsed time, the pool's count for a training, and the time left."""
        with self.lock:
            self.times.finish(name, seconds)
            step = self.times.steps.get(name, {})
            count = ""
            if step.get("pooled"):
                self.pool_done += 1
                count = f"{self.pool_done}/{self.pool_total} trainings, "
                if self.bar is not None:
                    self.bar.update(1)
                    self.bar.set_postfix_str(self.times.text(), refresh=True)
            self.forecast()
            return f" | {count}{clock(time.time() - self.t0)} elapsed, {self.times.text()}"

    def forecast(self) -> None:
        """Record what the time left says now, so that the study's status file can show how
        good the forecast was (benchmarks/study_time.py compares it with what remained)."""
        seconds, unknown = self.times.left()
        self.forecasts.append([round(time.time() - self.t0, 1),
                               None if "train" in unknown else round(seconds, 1), unknown])

    def live(self) -> bool:
        """A redraw replaces the bar's line: a terminal or a Jupyter kernel's output."""
        return in_jupyter_kernel() or bool(getattr(self.stream, "isatty", lambda: False)())

    @contextlib.contextmanager
    def pool(self, names: list[str], refresh_s: float = 1.0):
        """The training pool's bar over `names` (the trainings that run), redrawn every
        refresh_s with the time left while live; no bar where it is not (module docstring)."""
        self.pool_total, self.pool_done = len(names), 0
        if not names or not self.live():
            yield
            return
        with warnings.catch_warnings():   # tqdm.auto's notes on its choice (no ipywidgets: text)
            warnings.filterwarnings("ignore", module="tqdm")
            from tqdm.auto import tqdm
        stop = threading.Event()
        with self.lock:
            self.bar = tqdm(total=len(names), desc="trainings", unit="run", file=self.stream,
                            bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed} {postfix}")
            self.bar.set_postfix_str(self.times.text())

        def redraw() -> None:
            while not stop.wait(refresh_s):
                with self.lock:
                    self.bar.set_postfix_str(self.times.text())

        thread = threading.Thread(target=redraw, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            with self.lock:
                self.bar.close()
                self.bar = None
