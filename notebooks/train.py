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
# # Train one model
# Builds the mmaction2 config from `params/` (base -> profile -> model -> overrides), trains
# with mmengine's Runner on the prepared train split, keeps the best checkpoint on val and
# tests it once. Outputs: `results/<study>/models/<model>/seed<k>/` (`seed<k>_fold<i>/` for fold i).
#
# `papermill notebooks/train.ipynb out.ipynb -p model tsn [-p seed 0 -p epochs 3]`
#
# With `nproc` > 1 the training cell starts `torchrun` (DistributedDataParallel, one process
# per GPU), shows its log as it runs and loads the results it wrote. Re-running after a
# crash or kill resumes from the last checkpoint when the settings and data are unchanged.

# %% tags=["parameters"]
model = "tsn"
profile = "quick"
study = "default"
target = "action"
seed = 0
fold = 0  # 0: the prepared split; i in 1..k: cross-validation fold i (prepare folds)
trial = 0  # 0: the prepared split; t in 1..n: trial t's split (prepare trials)
results_dir = ""
# Layered settings: None takes the value from params/ (see params/base.yaml).
img_size = None
resize = None
num_segments = None
clip_len = None
frame_interval = None
test_clips = None
epochs = None
batch_size = None
optimizer = None
lr = None
momentum = None
weight_decay = None
warmup_epochs = None
lr_decay_from = None
grad_clip = None
fused_optimizer = None
class_balance = None
checkpoint = None
lite = None
num_workers = None
deterministic = None
amp = None
channels_last = None
nproc = None
nnodes = None
vis_backends = None
mm_base = None
sampling = None
model_cfg = None
model_cfg_lite = None
per_profile = None
zoo = None
init = None
finetune = None

# %%
from IPython.display import display
from petaction import setup
from petaction import params
from petaction.training import train
from petaction.reporting import views
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

P = params.resolve_train(params.from_notebook(globals(), "train"))
views.settings(P)

# %% [markdown]
# ## Training (mmengine's log follows; one line per logging interval)

# %%
metrics = train.run(P)

# %% [markdown]
# ## Curves and test result

# %%
display(views.run_curves(P))
display(views.test_metrics(metrics))
