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
# # Prepare a dataset
# Turns an AI-Hub pet behaviour tree (or, with `data_root` empty, the embedded synthetic set)
# into the cropped frame cache, mmaction2 annotation lists and split of `results/<study>/data/`.
# What it reads and writes, the split policies, `group_by`, folds and every rejection reason:
# `docs/data.md`.
#
# `papermill notebooks/prepare.ipynb out.ipynb -p data_root PATH -p study NAME`

# %% tags=["parameters"]
study = "default"
results_dir = ""
data_root = ""
target = "action"
emotion_source = "inspect"
species = "both"
max_per_class = 0
split_policy = "stratified"
train_ratio = 0.7
val_ratio = 0.1
test_ratio = 0.2
group_by = ""
folds = 0  # k of 2 or more: also k cross-validation folds
trials = 0  # n of 1 or more: also n trial splits, trial t drawn with seed + t - 1
seed = 0
crop = True
margin = 0.15
short_side = 64
min_frames = 1
workers = 2
synth_seed = 0
synth_scale = 1.0
synth_frames = 20
synth_size = [192, 144]

# %%
from IPython.display import display
from petaction import setup
from petaction import params
from petaction.data import prepare
from petaction.reporting import views
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

P = params.from_notebook(globals(), "prepare")
info = prepare.prepare(**P)
print(f"{info['clips_kept']} clips kept of {info['clips_found']} found; {info['rejected']} rejected")

# %% [markdown]
# ## Clips per class and split

# %%
counts, fig = views.dataset_summary(info)
display(counts)

# %% [markdown]
# ## Rejected clips and files (each with its reason)

# %%
views.rejected(info)
