"""Screen, then confirm: which models a study with trials trains on trials 2..n (study `confirm`).

    confirm: auto      (default) screen every model on trial 1, evaluate, and train trials 2..n of
                       the models trial 1's validation decisions involve (decisions.json's confirm,
                       evaluation/confirm.py)
    confirm: all       every model on every trial
    confirm: {emotion: [tsn, tsm], action: auto}
                       per target: a list of its models, or auto / all (a target left out: auto)

Training every model n times costs n times the study; the report's conclusions rest only on the
models it compares, so those are trained again. A model started from another run of the study
(tsm@action) needs that run on the same trial: its source joins its target's confirm set.
"""
from __future__ import annotations

import json

from . import params as P
from .core import paths
from .models import pretrained

MODES = ("auto", "all")


def mode(cfg: dict, target: str):
    """"auto", "all" or the target's list of models."""
    c = cfg["confirm"]
    return c.get(target, "auto") if isinstance(c, dict) else c


def check(cfg: dict, models_for) -> None:
    """confirm: auto | all | {target: auto | all | [models of that target]}: one ParamError otherwise."""
    c = cfg["confirm"]
    how = "confirm: auto (the models trial 1's validation decisions involve), all, or {target: [models] | auto | all}"
    if c != "auto" and cfg["trials"] < 2:
        raise P.ParamError(f"confirm {c!r} chooses the models of trials 2..n, and this study has trials: "
                           f"{cfg['trials']}: set trials: n (n >= 2) or leave confirm out")
    if not isinstance(c, dict):
        return check_value("confirm", c, how)
    for target, v in c.items():
        if target not in ("action", "emotion"):
            raise P.ParamError(f"confirm names target {target!r}; targets are action, emotion ({how})")
        check_value(f"confirm.{target}", v, how, models_for(cfg, target))


def check_value(name: str, v, how: str, models: list[str] | None = None) -> None:
    """auto or all; with ``models`` (a target's entry) also a list of them."""
    if isinstance(v, str):
        if v not in MODES:
            raise P.ParamError(f"unknown {name} {v!r}; valid: {how}")
        return
    if models is None or not isinstance(v, list):
        raise P.ParamError(f"{name} is {v!r}; valid: {how}")
    target = name.split(".")[-1]
    bad = [m for m in v if m not in models]
    if bad:
        raise P.ParamError(f"{name} names {bad}, which the study does not train for {target} (its models: {models})")


def screens(cfg: dict, targets: list[str]) -> bool:
    """The study trains trial 1 first and reads the confirm set from its evaluation."""
    return cfg["trials"] > 1 and any(mode(cfg, t) == "auto" for t in targets)


def later_trials(cfg: dict) -> list[int]:
    return list(range(2, cfg["trials"] + 1))


def known(cfg: dict, target: str, models_for) -> list[str] | None:
    """The target's confirm set when known before training (all, a list); None for auto."""
    m = mode(cfg, target)
    return None if m == "auto" else list(models_for(cfg, target)) if m == "all" else list(m)


def from_decisions(cfg: dict, target: str) -> list[str]:
    """The confirm set trial 1's evaluation wrote (decisions.json's confirm)."""
    from .evaluation import confirm
    f = paths.target_dir(cfg["study"], target, cfg["results_dir"] or None) / "evaluation" / "decisions.json"
    return confirm.models(json.loads(f.read_text())) if f.is_file() else []


def with_sources(cfg: dict, sets: dict[str, list[str]], step_params) -> dict[str, list[str]]:
    """Each set with the models its models start from on trials 2..n (tsm@action: the action tsm),
    when the study trains that target."""
    sets = {t: list(ms) for t, ms in sets.items()}
    changed = True
    while changed:
        changed = False
        for target, ms in list(sets.items()):
            for model in ms:
                for t in later_trials(cfg):
                    try:
                        p = P.resolve_train(step_params(cfg, target, model, t - 1, 0, t))
                    except P.ParamError:
                        continue   # the training itself will say why
                    run = pretrained.source_run(p)
                    src = pretrained.parse(p["init"]).target if run is not None else None
                    if src in sets and run.parent.name not in sets[src]:
                        sets[src].append(run.parent.name)
                        changed = True
    return sets
