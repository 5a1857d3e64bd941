"""Equal footing in the methods table: every training setting that differs between the models,
and the tuning effort each model received before the study (the recipe-search runs of
benchmarks/results/recipe_search.json), so that a reader sees unequal effort: a model tuned
over more configurations looks better for that reason alone.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..core import paths
from ..models import pretrained

RECIPE_SEARCH = paths.REPO / "benchmarks" / "results" / "recipe_search.json"
PROBE_STEPS = 200   # shorter runs were timing probes (tools/docs.py leaves them out of its table too)

# settings the table shows elsewhere (its own columns, or the Input column), or that say where and
# how a run executes rather than what it learns from
SHOWN = {"model", "init", "epochs", "lr", "batch_size", "img_size", "num_segments", "clip_len", "sampling"}
NOT_TRAINING = {"study", "target", "seed", "fold", "results_dir", "profile", "num_workers", "deterministic",
                "amp", "channels_last", "nproc", "nnodes", "lite", "mm_base"}


def recipe_runs(path: Path = RECIPE_SEARCH) -> Counter:
    """Recipe-search runs per model file: every recorded run with a learning curve of at least
    PROBE_STEPS steps. An empty Counter when the file is absent (a reader's own data tree)."""
    if not Path(path).is_file():
        return Counter()
    runs = json.loads(Path(path).read_text())["runs"]
    return Counter(r["spec"]["model"] for r in runs
                   if r.get("curve") and max(c["step"] for c in r["curve"]) >= PROBE_STEPS)


def differing(run_params: dict) -> list[str]:
    """The scalar training settings (weight decay, optimizer, warm-up ...) whose value is not
    the same for every model, in the parameters' own order."""
    models = list(run_params.values())
    keys = [k for k in dict.fromkeys(k for p in models for k in p) if k not in SHOWN | NOT_TRAINING]
    scalar = lambda v: v is None or isinstance(v, (str, int, float, bool))   # noqa: E731
    return [k for k in keys if all(scalar(p.get(k)) for p in models)
            and len({json.dumps(p.get(k)) for p in models}) > 1]


def columns(run_params: dict, models: list[str], counts: Counter | None = None) -> dict[str, dict]:
    """{model: {setting: value, ..., "Recipe runs": n}}: the columns the methods table adds
    (the weight decay always, so that equal decay is visible too). A <model>@<init> row counts
    its model file's runs: its recipe is that file's."""
    counts = recipe_runs() if counts is None else counts
    keys = list(dict.fromkeys(["weight_decay", *differing({m: run_params[m] for m in models})]))
    return {m: {**{k: run_params[m].get(k) for k in keys},
                "Recipe runs": counts.get(pretrained.split_label(m)[0], 0)} for m in models}


def note(counts: Counter | None = None) -> str:
    """The sentence under the table: where the recipe-run counts come from."""
    counts = recipe_runs() if counts is None else counts
    if not counts:
        return "No recipe-search record (benchmarks/results/recipe_search.json) was found: tuning runs not counted."
    return ("Recipe runs: the exploration runs each model file received while its recipe was chosen "
            f"(benchmarks/results/recipe_search.json, {sum(counts.values())} runs of {PROBE_STEPS} steps or more; "
            "a <model>@<init> row counts its file's); settings shown are those that differ between the "
            "models, and the weight decay.")
