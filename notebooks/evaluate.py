# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
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

# %%
from IPython.display import display
from petaction import evaluate, params

P = params.from_notebook(globals(), "evaluate")
E = evaluate.evaluate(P["study"], P["target"], P["results_dir"] or None, P["models"] or None)
display(E["summary"])

# %% [markdown]
# ## Paired tests (McNemar, same test clips) between every two models

# %%
display(E["paired"])

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
