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
# # The pet detector
# Trains mmdet's Faster R-CNN from scratch on the study's whole frames (one class, "pet"),
# reports box AP on the test split and the CPU latency of one frame, and writes
# `results/<study>/detector/metrics.json` (`lib/petaction/training/detector.py`).
#
# `papermill notebooks/detector.ipynb out.ipynb -p study default -p profile quick`

# %% tags=["parameters"]
study = "default"
results_dir = ""
target = "action"
profile = "quick"     # detector settings: petaction.training.detector.PROFILES
seed = 0

# %%
import json
from petaction import setup
from petaction.training import detector
from petaction import params
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

P = params.from_notebook(globals(), "detector")
M = detector.run(P["study"], P["target"], P["profile"], P["results_dir"] or None, P["seed"])
print(json.dumps({k: v for k, v in M.items() if k != "settings"}, indent=1))
