# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: petaction
#     language: python
#     name: petaction
# ---

# %% [markdown]
# # Cross-model evaluation
# Recomputes every metric from each run's saved per-clip test scores and writes
# `results/<study>/evaluation/`.
#
# `papermill notebooks/evaluate.ipynb out.ipynb -p study default`

# %% tags=["parameters"]
study = "default"
results_dir = ""
target = "action"
models = []
update_hz = 1.0       # real-time target: predictions per second a model must keep up with
cost_repeats = 15     # timed CPU forward passes per model (after 3 warm-up passes)
margin = 0.02         # non-inferiority margin (top-1, on validation) for recommending a faster model
e2e_models = "recommended"   # test top-1 with the pet detector's boxes: "recommended", "all", [models] or "none"
order_blind = "tsn"   # the model blind to frame order (TSN averages its segments): every other model is tested
                      #   against it on the order-only clips, what temporal modelling buys ("" for none)

# %%
from IPython.display import display
from petaction import setup
from petaction.evaluation import evaluate
from petaction import params
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

P = params.from_notebook(globals(), "evaluate")
E = evaluate.evaluate(P["study"], P["target"], P["results_dir"] or None, P["models"] or None,
                      update_hz=P["update_hz"], cost_repeats=P["cost_repeats"], margin=P["margin"],
                      e2e_models=P["e2e_models"], order_blind=P["order_blind"])
display(E["summary"])
D = E["decisions"]
print(f"selected on {D['selection']}: best {D['best']}, recommended {D['recommendation']['model']} "
      f"({D['recommendation']['reason']})")

# %% [markdown]
# ## Cross-validation folds (study `folds: k`; `evaluation/folds.csv`): each fold's own test metrics

# %%
display(E["folds"] if len(E["folds"]) else "no folds: one prepared train/val/test split")

# %% [markdown]
# ## Compute cost and the real-time verdict (CPU, batch 1; `evaluation/cost.csv`, `cost.json`)

# %%
display(E["cost"])
display(E["figures"]["pareto"])

# %% [markdown]
# ## The claims the report states (`evaluation/claims.csv`, `decisions.json`)
# Each with its test on the same test clips (exact McNemar for one seed, Cochran-Mantel-Haenszel
# over clips for several; exact one-sided binomial against the majority baseline) and its p-value
# after Holm's correction over this family.

# %%
display(E["claims"])

# %% [markdown]
# ## Runs that differ only in init, paired (`evaluation/transfer.csv`), and the accuracy with the
# pet detector's boxes instead of the labelled ones (`evaluation/e2e.csv`)

# %%
display(E["transfer"] if len(E["transfer"]) else "no two models differ only in init")
display(E["e2e"] if len(E["e2e"]) else D["e2e"])

# %% [markdown]
# ## Runs that failed

# %%
display(E["failed"] if len(E["failed"]) else "none")

# %% [markdown]
# ## Per-class accuracy and the best model's confusion matrix

# %%
display(E["per_class"].round(3))
display(E["figures"]["per_class"])
display(E["figures"]["confusion"])
