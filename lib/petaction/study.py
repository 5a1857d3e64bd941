"""Run a whole study headlessly: prepare -> train (each model, seed) -> evaluate -> report.

    make study                                   # params/study.yaml
    python -m petaction study -f params/study.yaml [--force] [-p models '[tsn]']

Each step is a papermill run of its notebook; the executed notebook is kept beside the
step's outputs. A step whose parameters and inputs are unchanged is skipped (--force
re-runs). A failed model does not stop the others; a failed step stops what depends on it.
Every target is prepared first; then all trainings (every target's models, and the detector)
share one pool: the study's GPUs (`gpus`, `strategy`: see schedule.py), one model per GPU
longest first or one at a time on all of them with DDP; on a CPU-only machine `cpu_jobs`
trainings side by side, each on its share of the cores. Then each target is evaluated.
A killed training resumes from its last checkpoint when the study runs again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

from . import params as P
from . import phases, schedule
from .console import Console, clock, kernel_manager_class
from .core import atomic, lock, orphans, paths
from .core.provenance import files_digest
from .models import pretrained

STUDY_DEFAULTS = dict(
    study="default",     # results/<study>/, report/<study>.html
    results_dir="",      # results root ("" = results/ in the repository)
    data_root="",        # AI-Hub tree ("" = the embedded synthetic set)
    profile="quick",     # params/profiles/<profile>.yaml
    models=["tsn", "tsm"],
    seeds=[0],
    folds=0,             # k >= 2: k-fold cross-validation (each clip tested once; metrics pooled over folds)
    trials=0,            # n >= 1: n trials, trial t a split drawn with prepare seed + t - 1 and training seed
                         #   t - 1 (docs/study.md); every model of a trial shares its split
    confirm="auto",      # with trials > 1, which models train trials 2..n: auto (screen all on trial 1, then the
                         #   models its validation decisions involve), all, or {target: [models] | auto | all} (phases.py)
    targets=["action"],  # action and/or emotion
    target_models={},    # per-target model subsets, e.g. {emotion: [tsn, tsm]} (default: models)
    target_train={},     # per-target train overrides over `train`, e.g. {emotion: {epochs: 8}}
    detector=False,      # train the pet detector (detector.ipynb) on the action target's frames:
                         #   its box AP and latency join every model's real-time verdict
    prepare={},          # prepare.ipynb parameters (short_side, margin, split ...)
    train={},            # train.ipynb overrides for every model (epochs, lr ...)
    evaluate={},         # evaluate.ipynb parameters (update_hz, cost_repeats)
    gpus="auto",         # auto (every visible GPU) | a count | a list of GPU ids; none: the CPU (cpu_jobs)
    strategy="parallel", # parallel: one model per GPU, the rest queued | ddp: one model on all GPUs (torchrun)
    cpu_jobs="auto",     # without a GPU: trainings side by side, each on cores / cpu_jobs threads (schedule.py)
)
KERNEL = "petaction"


def load_study(path: Path | None, overrides: dict | None = None) -> dict:
    cfg = P.load_yaml(Path(path)) if path else {}
    # overrides merge as the params layers do: `prepare: {seed: 7}` keeps the file's other prepare keys
    cfg = P.strip_delete(P.deep_merge(cfg, overrides or {}))
    P.check_keys(cfg, STUDY_DEFAULTS, str(path or "study parameters"))
    cfg = {**STUDY_DEFAULTS, **cfg}
    for where, models in (("models", cfg["models"]), *((f"target_models.{t}", m) for t, m in cfg["target_models"].items())):
        for m in models:
            check_model_name(m, where)
    if cfg["profile"] not in P.names("profiles"):
        raise P.ParamError(f"unknown profile {cfg['profile']!r}; valid: {', '.join(P.names('profiles'))}")
    P.check_keys(cfg["prepare"], P.notebook_parameters("prepare"), "study prepare section")
    if "folds" in cfg["prepare"]:
        raise P.ParamError("set folds at the study's top level (folds: k), not under prepare: "
                           "the trainings must know about the folds too")
    P.check_folds(cfg["folds"])
    check_trials(cfg)
    phases.check(cfg, models_for)
    P.check_keys(cfg["train"], P.notebook_parameters("train"), "study train section")
    for target, over in cfg["target_train"].items():
        if target not in P.CHOICES["target"]:   # a target the study does not run is ignored
            raise P.ParamError(f"target_train names {target!r}; targets are {list(P.CHOICES['target'])}")
        P.check_keys(over, P.notebook_parameters("train"), f"study target_train.{target} section")
    P.check_keys(cfg["evaluate"], P.notebook_parameters("evaluate"), "study evaluate section")
    schedule.slots(schedule.resolve_gpus(cfg["gpus"]), cfg["strategy"],     # refuses bad values
                   schedule.resolve_cpu_jobs(cfg["cpu_jobs"]))
    bad = (set(cfg["targets"]) | set(cfg["target_models"])) - {"action", "emotion"}
    if bad:
        raise P.ParamError(f"unknown target(s) {sorted(bad)}; valid: action, emotion")
    check_sources(cfg)
    return cfg


def check_trials(cfg: dict) -> None:
    """trials: n draws each trial's split and training seed itself, so it goes alone: without
    folds, without a seeds list of its own, and not under prepare."""
    from .data.splits import check_trials as valid
    valid(cfg["trials"])
    if "trials" in cfg["prepare"]:
        raise P.ParamError("set trials at the study's top level (trials: n), not under prepare: "
                           "the trainings must know about the trials too")
    if cfg["trials"] and cfg["folds"]:
        raise P.ParamError("folds and trials both redraw the split: choose one")
    if cfg["trials"] and list(cfg["seeds"]) != STUDY_DEFAULTS["seeds"]:
        raise P.ParamError(f"trials: {cfg['trials']} trains trial t with seed t - 1 (the seed is redrawn with the "
                           f"split); leave seeds out (got seeds {cfg['seeds']})")


def check_model_name(m: str, where: str) -> None:
    """A study's model: a params/models file, or <file>@<init> (tsm@zoo, tsm@action: its own row)."""
    try:
        file, _ = pretrained.split_label(m)
    except pretrained.InitError as e:
        raise P.ParamError(f"{where}: {e}") from None
    if file not in P.names("models"):
        raise P.ParamError(f"unknown model {m!r} in {where}; valid: {', '.join(P.names('models'))} "
                           "(each optionally @<init>: tsm@zoo, tsm@action)")


def check_sources(cfg: dict) -> None:
    """Every run a training starts from (init <target>[:<model>]) is one this study trains, or
    one that has finished already: otherwise the study could not order it first."""
    trains = {(t, m) for t in cfg["targets"] for m in models_for(cfg, t)}
    for target in cfg["targets"]:
        for model in models_for(cfg, target):
            for seed, fold, trial in runs(cfg):
                try:
                    p = P.resolve_train(step_params(cfg, target, model, seed, fold, trial))
                except P.ParamError:
                    continue   # the training itself will fail with this message
                run = pretrained.source_run(p)
                if run is None or (pretrained.parse(p["init"]).target, run.parent.name) in trains:
                    continue
                if not (run / "metrics.json").is_file():
                    src_target = pretrained.parse(p["init"]).target
                    raise P.ParamError(f"{target} model {model} starts from the {src_target} run of {run.parent.name} "
                                       f"(init {p['init']}), which this study does not train and which has not "
                                       f"finished: add {run.parent.name} to the {src_target} models"
                                       + ("" if src_target in cfg["targets"] else f" and {src_target} to targets"))


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def code_digest() -> str:
    """The package's source: evaluate and report (seconds to run) re-run when it changes;
    training re-runs only on changed parameters or data (use --force after code changes)."""
    return files_digest(sorted((paths.REPO / "lib" / "petaction").rglob("*.py")))


def source_digest(data_root: str) -> str:
    """A cheap fingerprint of a source tree: paths, sizes and times (never file contents)."""
    if not data_root or not Path(data_root).is_dir():
        return data_root
    h = hashlib.sha256()
    for p in sorted(Path(data_root).rglob("*")):
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def EnvKernelManager(kernel_name: str, extra_env: dict):
    """A Jupyter kernel manager whose kernel gets `extra_env` (CUDA_VISIBLE_DEVICES pins a
    training to its GPUs): papermill has no per-run environment, but passes `km` through.
    It starts the kernel quietly (console.kernel_manager_class)."""

    class _EnvKernelManager(kernel_manager_class()):
        def start_kernel(self, **kw):
            kw["env"] = {**os.environ, **kw.get("env", {}), **extra_env}
            kw.setdefault("preexec_fn", orphans.dies_with(os.getpid()))   # gone when the study is
            return super().start_kernel(**kw)

    return _EnvKernelManager(kernel_name=kernel_name)


class Step:
    """One papermill run with its stamp (parameters + inputs) for skipping."""

    def __init__(self, name: str, notebook: str, out_nb: Path, parameters: dict, inputs: str, done: Path,
                 after: Path | None = None, trusts: tuple = (), finish=None):
        self.name, self.notebook, self.out_nb, self.finish = name, notebook, out_nb, finish
        self.parameters, self.done, self.inputs, self.after = parameters, done, inputs, after
        self.trusts = (done, *trusts)   # the outputs a later step reads: each must parse for a skip
        self.stamp_file = out_nb.with_suffix(".stamp.json")
        self.said = set()   # unreadable outputs already named

    @property
    def stamp(self) -> dict:
        """Parameters and inputs; for a training that starts from another run (`after`: that
        run's metrics.json, read when asked), that run too: re-training it re-runs this one."""
        inputs = self.inputs + (files_digest([self.after]) if self.after else "")
        return {"parameters": self.parameters, "inputs": inputs}

    def fresh(self, log=print) -> bool:
        """Done with these parameters and inputs: the stamp matches, and the outputs later steps
        trust are there and parse (one a kill or a full disk truncated re-runs the step)."""
        if not (self.done.exists() and self.stamp_file.is_file()):
            return False
        stamp = atomic.read_json(self.stamp_file, f"{self.name} re-runs", log)
        if stamp != json.loads(json.dumps(self.stamp, default=str)):
            return False
        bad = next((f for f in self.trusts if not atomic.readable(f)), None)
        if bad is not None and bad not in self.said:   # asked twice (the pool, then the step): one line
            self.said.add(bad)
            log(f"[redo] {self.name}: {bad} is missing or cannot be read, so the step re-runs")
        return bad is None

    def run(self, force: bool, log, env: dict | None = None) -> dict:
        """Execute the notebook (unless fresh); `env` adds to the kernel's environment. The
        notebook's own output stays in the executed notebook (papermill's log_output would
        copy its stderr, every library warning, to the console); a failure names it."""
        import papermill as pm
        con = as_console(log)
        if not force and self.fresh(con):
            con(f"[skip] {self.name}: unchanged ({self.out_nb}){con.finished(self.name, None)}")
            return {"step": self.name, "status": "skipped", "notebook": str(self.out_nb)}
        con(f"[run ] {self.name} -> {self.out_nb}")
        con.started(self.name)
        t0 = time.time()
        self.out_nb.parent.mkdir(parents=True, exist_ok=True)
        self.stamp_file.unlink(missing_ok=True)
        km = EnvKernelManager(kernel_name=KERNEL, extra_env=env or {})
        try:
            pm.execute_notebook(str(paths.NOTEBOOKS / f"{self.notebook}.ipynb"), str(self.out_nb),
                                parameters=self.parameters, kernel_name=KERNEL, cwd=str(paths.NOTEBOOKS),
                                log_output=False, progress_bar=False, km=km)
        except Exception as e:  # papermill's execution error carries the failing cell's error
            ename = getattr(e, "ename", type(e).__name__)
            error = f"{ename}: {getattr(e, 'evalue', e)}"
            con(f"[FAIL] {self.name}: {error}{con.finished(self.name, None)}\n       notebook: {self.out_nb}")
            return {"step": self.name, "status": "failed", "error": error, "notebook": str(self.out_nb),
                    **({"disk_full": str(getattr(e, "evalue", e))} if ename == atomic.DiskFull.__name__ else {})}
        finally:
            if km.has_kernel:
                km.shutdown_kernel()   # nbclient leaves a kernel it did not start running
        if self.finish:   # what the step makes of its notebook (the report's HTML and PDF)
            self.finish(self.out_nb)
        # the stamp last, whole or absent: a step killed before this line runs again
        atomic.write_json(self.stamp_file, self.stamp, indent=1, default=str)
        seconds = time.time() - t0
        con(f"[done] {self.name} in {seconds:.0f} s{con.finished(self.name, seconds)}")
        return {"step": self.name, "status": "done", "seconds": round(seconds, 1), "notebook": str(self.out_nb)}


def as_console(log) -> Console:
    """The study's Console, or one around a plain `log` callable (tests, a single step)."""
    return log if isinstance(log, Console) else Console(log)


def models_for(cfg: dict, target: str) -> list[str]:
    """The models trained for a target: its target_models entry, else the study's models."""
    return cfg["target_models"].get(target, cfg["models"])


def prepare_target(cfg: dict, target: str, force: bool, log) -> dict:
    root = paths.target_dir(cfg["study"], target, cfg["results_dir"] or None)
    prep = Step(f"prepare ({target})", "prepare", root / "data" / "prepare.ipynb",
                {**common_params(cfg, target), "data_root": cfg["data_root"], **cfg["prepare"],
                 **({"folds": cfg["folds"]} if cfg["folds"] else {}),
                 **({"trials": cfg["trials"]} if cfg["trials"] else {})},
                source_digest(cfg["data_root"]), root / "data" / "classes.json")
    status = prep.run(force, log)
    if status["status"] == "failed":
        log(f"[stop] {target}: preparation failed, nothing that depends on it can run")
    return status


def common_params(cfg: dict, target: str) -> dict:
    return dict(study=cfg["study"], results_dir=cfg["results_dir"], target=target)


def data_inputs(cfg: dict, target: str, fold: int = 0, trial: int = 0) -> str:
    from .training.train import data_lists
    return files_digest(data_lists(paths.target_dir(cfg["study"], target, cfg["results_dir"] or None) / "data",
                                   fold, trial))


def folds(cfg: dict) -> list[int]:
    """The data splits every model trains on: [0] (the prepared split) or the folds 1..k."""
    return list(range(1, cfg["folds"] + 1)) if cfg["folds"] else [0]


def runs(cfg: dict) -> list[tuple[int, int, int]]:
    """(seed, fold, trial) of every training of a model: each seed on each fold (fold 0: the
    prepared split), or with trials: n, trial t (1..n) with seed t - 1 on its own split."""
    if cfg["trials"]:
        return [(t - 1, 0, t) for t in range(1, cfg["trials"] + 1)]
    return [(s, f, 0) for s in cfg["seeds"] for f in folds(cfg)]


def step_params(cfg: dict, target: str, model: str, seed: int, fold: int, trial: int = 0) -> dict:
    """The train notebook's parameters for one training of the study."""
    return {**common_params(cfg, target), "model": model, "seed": seed, "profile": cfg["profile"],
            **({"fold": fold} if fold else {}), **({"trial": trial} if trial else {}),
            **cfg["train"], **cfg["target_train"].get(target, {})}


def train_steps(cfg: dict, target: str, models: list | None = None, trials: list | None = None) -> tuple[list, list, list]:
    """The target's training steps (model x seed), their resolved settings (None: cannot
    resolve, the notebook will say why) and the files evaluate reads from them; only `models`
    and only the runs of `trials` when given (the screen and confirm phases: phases.py)."""
    rd = cfg["results_dir"]
    gpus = schedule.resolve_gpus(cfg["gpus"])
    ddp = {"nproc": len(gpus)} if cfg["strategy"] == "ddp" and len(gpus) > 1 else {}
    steps, resolved, trained = [], [], []
    for model, (seed, fold, trial) in ((m, r) for m in models_for(cfg, target) if models is None or m in models
                                       for r in runs(cfg) if trials is None or r[2] in trials):
        run_dir = paths.run_dir(cfg["study"], model, seed, target, rd or None, fold, trial)
        nb_params = {**step_params(cfg, target, model, seed, fold, trial), **ddp}
        # the stamp holds the settings as resolved from params/ files, so an edited
        # profile or model file re-runs the training that depends on it
        try:
            resolved.append(P.resolve_train(nb_params))
            key = digest(resolved[-1])
        except P.ParamError as e:
            resolved.append(None)
            key = f"unresolvable: {e}"   # the notebook will fail with this message
        name = (f"train {model} seed {seed}" + (f" fold {fold}" if fold else "") + (f" trial {trial}" if trial else "")
                + f" ({target})")
        source = pretrained.source_run(resolved[-1]) if resolved[-1] else None
        steps.append(Step(name, "train", run_dir / "train.ipynb", nb_params,
                          data_inputs(cfg, target, fold, trial) + key, run_dir / "metrics.json",
                          after=source / "metrics.json" if source else None,
                          trusts=(run_dir / "test_scores.npz", run_dir / "val_scores.npz")))
        trained += [run_dir / "metrics.json", run_dir / "test_scores.npz"]
    return steps, resolved, trained


def detector_step(cfg: dict) -> Step:
    """One pet detector per study, on the action target's frames (boxes do not depend on the target)."""
    det_metrics = paths.target_dir(cfg["study"], "action", cfg["results_dir"] or None) / "detector" / "metrics.json"
    return Step("detector", "detector", det_metrics.parent / "detector.ipynb",
                {**common_params(cfg, "action"), "profile": cfg["profile"]}, data_inputs(cfg, "action"), det_metrics)


def evaluate_step(cfg: dict, target: str, trained: list, screen: bool = False) -> Step:
    """The target's evaluation; `screen`: the one after trial 1 that chooses the confirm set (its
    own notebook and stamp, so that a resumed study skips both)."""
    root = paths.target_dir(cfg["study"], target, cfg["results_dir"] or None)
    det = [detector_step(cfg).done] if cfg["detector"] else []
    return Step(f"{'screen' if screen else 'evaluate'} ({target})", "evaluate",
                root / "evaluation" / f"{'screen' if screen else 'evaluate'}.ipynb",
                {**common_params(cfg, target), "models": models_for(cfg, target), **cfg["evaluate"]},
                files_digest(trained + det) + code_digest(), root / "evaluation" / "summary.csv")


def run_targets(cfg: dict, force: bool, log) -> list[dict]:
    """Prepare every target, train everything (every target's models and the detector) in one
    pool of slots, then evaluate each target: one pool keeps every slot busy to the end. With
    trials and confirm auto, the pool trains trial 1 and confirm_phase the rest (phases.py)."""
    con = as_console(log)
    status, prepared = [], []
    for target in cfg["targets"]:
        status.append(prepare_target(cfg, target, force, con))
        if status[-1]["status"] != "failed":
            prepared.append(target)
        else:
            for step in ("screen", "evaluate"):
                con.finished(f"{step} ({target})", None)   # it cannot run
    if disk_full(status):
        return status
    screen = phases.screens(cfg, prepared)   # trial 1 of every model first, then its confirm set
    sets = {t: phases.known(cfg, t, models_for) for t in prepared}
    known = phases.with_sources(cfg, sets, step_params) if cfg["trials"] > 1 and not screen else {}
    steps, resolved, trained = [], [], {}
    for target in prepared:   # without screening, every run in one pool
        s, r, trained[target] = train_steps(cfg, target, trials=[1] if cfg["trials"] else None)
        if known:   # confirm: all or lists: trials 2..n of those models too
            s2, r2, f2 = train_steps(cfg, target, known[target], phases.later_trials(cfg))
            s, r, trained[target] = s + s2, r + r2, trained[target] + f2
        steps += s
        resolved += r
    if cfg["detector"] and "action" in prepared:
        steps.append(detector_step(cfg))
        resolved.append("detector")
    if screen:   # the time left names them until the screening says which they are
        con.times.later("confirm")
    status += train_all(steps, resolved, cfg, force, con)
    if screen and not disk_full(status):
        status += confirm_phase(cfg, prepared, sets, trained, force, con)
    for target in prepared:
        if disk_full(status):
            break
        status.append(evaluate_step(cfg, target, trained[target]).run(force, con))
    return status


def confirm_phase(cfg: dict, prepared: list[str], sets: dict, trained: dict, force: bool, con) -> list[dict]:
    """After trial 1 of every model: evaluate each auto target (its confirm set, decided on
    validation), then train trials 2..n of every target's confirm set in one pool; `trained`
    gains their files (the final evaluation's inputs)."""
    status = []
    for target in prepared:
        if sets[target] is None and not disk_full(status):
            status.append(evaluate_step(cfg, target, trained[target], screen=True).run(force, con))
            sets[target] = phases.from_decisions(cfg, target) if status[-1]["status"] != "failed" else []
        elif sets[target] is None:
            con.finished(f"screen ({target})", None)
            sets[target] = []
    con.times.listed("confirm")   # listed as trainings below, or none
    if disk_full(status):
        return status
    sets = phases.with_sources(cfg, sets, step_params)
    steps, resolved = [], []
    for target in prepared:
        con(f"[conf] {target}: trials 2..{cfg['trials']} of {', '.join(sets[target]) or 'no model'}")
        s, r, f = train_steps(cfg, target, sets[target], phases.later_trials(cfg))
        steps += s
        resolved += r
        trained[target] += f
    return status + train_all(steps, resolved, cfg, force, con)


def disk_full(status: list[dict]) -> str | None:
    """The first step's disk-full message (atomic.DiskFull, in a kernel or here), if any: the
    study stops there, since every later step would write too."""
    for s in status:
        if s.get("disk_full"):
            return s["disk_full"]
        if s["status"] == "failed" and str(s.get("error", "")).startswith(f"{atomic.DiskFull.__name__}: "):
            return s["error"].split(": ", 1)[1]
    return None


def train_all(steps: list, resolved: list, cfg: dict, force: bool, log) -> list[dict]:
    """Run the training steps on the study's slots (schedule.run): longest first when several
    slots share them, each pinned to its GPUs or its share of the CPU cores. A finished model
    (fresh stamp) is skipped; a killed one resumes from its last checkpoint (train.resume_or_clear)."""
    con = as_console(log)
    steps, resolved, back = dependency_order(steps, resolved)
    after = dependencies(steps)
    gpus = schedule.resolve_gpus(cfg["gpus"])
    slot_list = schedule.slots(gpus, cfg["strategy"], schedule.resolve_cpu_jobs(cfg["cpu_jobs"]))
    costs = [1.0] * len(steps)
    todo = [i for i, st in enumerate(steps) if force or not st.fresh(con)]
    for i, j in after.items():   # in dependency order: a re-trained source re-trains what starts from it
        if j in todo and i not in todo:
            todo = sorted([*todo, i])
    estimated = estimates([resolved[i] if i in todo else None for i in range(len(steps))])
    expect_trainings(con, [steps[i].name for i in todo], [estimated[i] for i in todo],
                     [resolved[i] == "detector" for i in todo])
    where = f"{len(slot_list)} GPUs" if gpus else f"{len(slot_list)} CPU slots of {schedule.cpu_threads(len(slot_list))} thread(s)"
    if len(slot_list) > 1 and len(todo) > 1:
        costs = after_sources(estimated, after)
        pl = schedule.plan([costs[i] for i in todo], len(slot_list))
        con(f"[plan] {len(todo)} trainings on {where}, longest first (measured CPU seconds, schedule.job_cost): "
            f"predicted makespan {100 * pl['over_per_slot']:.1f}% over total work / {len(slot_list)}")

    visible = schedule.visible_gpus() if any(slot_list) else []

    finished = [threading.Event() for _ in steps]
    outcome = [None] * len(steps)

    def start(i: int, slot: list) -> dict:
        try:
            j = after.get(i)
            if j is not None:   # queued after its source (after_sources): this waits only while it runs
                finished[j].wait()
                if outcome[j]["status"] == "failed":
                    outcome[i] = {"step": steps[i].name, "status": "failed", "notebook": str(steps[i].out_nb),
                                  "error": f"it starts from {steps[j].name}, which failed"}
                    con(f"[FAIL] {steps[i].name}: {outcome[i]['error']}{con.finished(steps[i].name, None)}")
                    return outcome[i]
            if slot and i in todo:
                con(f"[gpu ] {steps[i].name} on GPU {','.join(slot)}")
            outcome[i] = steps[i].run(force, con, env=schedule.env(slot, visible, len(slot_list)))
            return outcome[i]
        finally:
            outcome[i] = outcome[i] or {"status": "failed"}
            if steps[i].name not in con.times.gone:   # raised: nothing of it is left to run
                con.finished(steps[i].name, None)
            finished[i].set()

    cwd = os.getcwd()
    with con.pool([steps[i].name for i in todo]):
        results, _ = schedule.run(costs, slot_list, start, con)
    os.chdir(cwd)   # papermill's cwd= is a process-wide chdir: runs side by side can leave it in notebooks/
    results = [results[i] for i in back]
    steps = [steps[i] for i in back]
    status = []
    for st, s in zip(steps, results):
        if isinstance(s, Exception):
            s = {"step": st.name, "status": "failed", "error": f"{type(s).__name__}: {s}", "notebook": str(st.out_nb)}
        run_dir = st.done.parent
        (run_dir / "error.json").unlink(missing_ok=True)
        if s["status"] == "failed":
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic.write_json(run_dir / "error.json", {"error": s["error"], "notebook": s["notebook"]})
        status.append(s)
    return status


def expect_trainings(con: Console, names: list[str], costs: list[float], detector: list[bool]) -> None:
    """The pool's steps for the time left: a training at its cost estimate; the detector,
    whose ordering cost is a placeholder (estimates), at the mean training's and without
    correcting the trainings' rate."""
    con.times.listed("train")
    if schedule.costs_in_seconds():   # measured seconds: a time left from the start, corrected as trainings end
        con.times.prior["train"] = 1.0
    trainings = [c for c, d in zip(costs, detector) if not d]
    mean = sum(trainings) / len(trainings) if trainings else 1.0
    for name, cost, det in zip(names, costs, detector):
        con.times.expect(name, "train", mean if det else cost, pooled=True, calibrates=not det)


def dependency_order(steps: list, resolved: list) -> tuple[list, list, list]:
    """The steps with every training after the run it starts from (stable otherwise), the
    resolved settings alike, and for each original position its new one (to restore order)."""
    done_files = {st.done: i for i, st in enumerate(steps)}
    order, placed = [], set()

    def place(i: int, chain: tuple = ()) -> None:
        if i in placed:
            return
        if i in chain:
            raise P.ParamError("trainings start from each other in a loop: "
                               + " -> ".join(steps[k].name for k in (*chain, i)))
        j = done_files.get(steps[i].after)
        if j is not None:
            place(j, (*chain, i))
        placed.add(i)
        order.append(i)

    for i in range(len(steps)):
        place(i)
    position = {i: n for n, i in enumerate(order)}
    return [steps[i] for i in order], [resolved[i] for i in order], [position[i] for i in range(len(steps))]


def dependencies(steps: list) -> dict[int, int]:
    """{step: the step whose run it starts from} among these steps."""
    done_files = {st.done: i for i, st in enumerate(steps)}
    return {i: done_files[st.after] for i, st in enumerate(steps) if st.after in done_files}


def after_sources(costs: list[float], after: dict[int, int]) -> list[float]:
    """Costs no higher than the source's, so that the longest-first queue (a stable sort, the
    steps in dependency order) hands out every source before what starts from it."""
    costs = list(costs)
    for i in sorted(after):   # sources come first in dependency order
        costs[i] = min(costs[i], costs[after[i]])
    return costs


def estimates(resolved: list) -> list[float]:
    """Each step's cost for ordering: schedule.job_cost for a training (0 when it cannot be
    built: it will fail fast, or when it need not run); the detector, on another scale,
    counts as the costliest training so that it starts first rather than last."""
    costs = [estimate(p) if isinstance(p, dict) else 0.0 for p in resolved]
    top = max(costs, default=1.0) or 1.0
    return [top if p == "detector" else c for p, c in zip(resolved, costs)]


def estimate(p: dict | None) -> float:
    """A training's cost for ordering; 0 when its model cannot be built (it will fail fast)."""
    try:
        return schedule.job_cost(p) if p else 0.0
    except Exception:
        return 0.0


def run(cfg: dict, force: bool = False, log=None) -> list[dict]:
    """The whole study; `log` takes every printed line (default: the console, beside the
    training pool's bar). The last line names the report's files."""
    con = Console(log, n_slots=len(schedule.slots(schedule.resolve_gpus(cfg["gpus"]), cfg["strategy"],
                                                  schedule.resolve_cpu_jobs(cfg["cpu_jobs"]))))
    # one writer per results folder, for the whole study (its kernels run under this lock)
    with lock.hold(cfg["study"], cfg["results_dir"] or None, what=f"study {cfg['study']}", log=con):
        return run_locked(cfg, force, con)


def run_locked(cfg: dict, force: bool, con: Console) -> list[dict]:
    expect_serial_steps(con, cfg)
    status = run_targets(cfg, force, con)
    evaluated = [paths.target_dir(cfg["study"], t, cfg["results_dir"] or None) / "evaluation" / "summary.csv" for t in cfg["targets"]]
    report, full = [], disk_full(status)
    if full:
        con.finished("report", None)
        con(f"[stop] the disk is full: {full}")
    elif all(p.is_file() for p in evaluated):
        status.append(report_step(cfg, evaluated).run(force, con))
        report = report_files(cfg, status[-1])
    else:
        con.finished("report", None)
        con("[stop] report: an evaluation is missing")
    study_root = paths.study_dir(cfg["study"], cfg["results_dir"] or None)
    wall = time.time() - con.t0
    try:
        atomic.write_json(study_root / "study_status.json",
                          {"config": cfg, "steps": status, "wall_time_s": round(wall, 1),
                           "time_left_forecasts": con.forecasts}, indent=1)
    except atomic.DiskFull:
        if not full:
            raise
    failed = [s for s in status if s["status"] == "failed"]
    con(f"study {cfg['study']}: {len(status) - len(failed)} steps ok, {len(failed)} failed, {clock(wall)}"
        + (f"; report: {', '.join(shown(f) for f in report)}" if report else "; no report"))
    return status


def expect_serial_steps(con: Console, cfg: dict) -> None:
    """The steps outside the training pool, for the time left: each target's preparation and
    evaluation (its cost: the number of models it evaluates), then the report; the trainings
    are listed once the data they read is prepared."""
    for target in cfg["targets"]:
        con.times.expect(f"prepare ({target})", "prepare", 1)
        if phases.screens(cfg, [target]):   # trial 1's evaluation, which chooses the confirm set
            con.times.expect(f"screen ({target})", "evaluate", len(models_for(cfg, target)))
        con.times.expect(f"evaluate ({target})", "evaluate", len(models_for(cfg, target)))
    con.times.expect("report", "report", 1)
    con.times.later("train")   # listed once the data is prepared (train_all)


def report_step(cfg: dict, evaluated: list[Path]) -> Step:
    study_root = paths.study_dir(cfg["study"], cfg["results_dir"] or None)
    return Step("report", "report", study_root / "report" / "report.ipynb",
                dict(study=cfg["study"], results_dir=cfg["results_dir"], targets=cfg["targets"]),
                files_digest([p.parent / f for p in evaluated for f in ("summary.csv", "runs.csv", "failed.csv", "decisions.json", "claims.csv")])
                + code_digest(),
                paths.REPO / "report" / f"{cfg['study']}.pdf", finish=lambda nb: render_report(cfg, nb))


def render_report(cfg: dict, notebook: Path) -> list[Path]:
    """The executed report notebook as report/<study>.html and .pdf, before the step's stamp:
    a study killed while rendering renders again."""
    from .reporting import render
    html = render.to_html(notebook, paths.REPO / "report" / f"{cfg['study']}.html")
    return [html, render.to_pdf(html, paths.REPO / "report" / f"{cfg['study']}.pdf")]


def report_files(cfg: dict, status: dict) -> list[Path]:
    """The report's files: the HTML and PDF rendered from the executed report notebook
    (render_report, when the step ran or in its last run), then whatever else the report
    step wrote as report/<study>.*; none when it failed."""
    if status["status"] == "failed":
        return []
    html, pdf = paths.REPO / "report" / f"{cfg['study']}.html", paths.REPO / "report" / f"{cfg['study']}.pdf"
    rendered = [f for f in (html, pdf) if f.is_file()]
    return rendered + sorted(set((paths.REPO / "report").glob(f"{cfg['study']}.*")) - set(rendered))


def shown(path: Path) -> str:
    """A path as a user types it: relative to the working folder when under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(path: str | None, overrides: dict, force: bool) -> int:
    try:
        cfg = load_study(path, overrides)
    except P.ParamError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        status = run(cfg, force)
    except lock.LockBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except atomic.DiskFull as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 1 if any(s["status"] == "failed" for s in status) else 0
