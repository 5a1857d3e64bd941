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
# # Explore a study: clips, labels, and where the best model goes wrong
# Open in JupyterLab (`make lab`), set the parameters below and re-run; or headless:
#
# `papermill notebooks/explore.ipynb out.ipynb -p study default -p label TAILING -p split test`
#
# Grad-CAM of any model on any test clip: `-p model tsm -p gradcam_clip <clip id>` (last cell).

# %% tags=["parameters"]
study = "default"
results_dir = ""
target = "action"
split = ""          # train, val or test (empty: every split)
label = ""          # a class, e.g. TAILING (empty: every class)
species = ""        # CAT or DOG (empty: both)
clip_index = 0      # which of the filtered clips to draw
model = ""          # a trained model (empty: the evaluation's best)
seed = 0
gallery_size = 8    # misclassified test clips shown
gradcam_clip = ""   # a test clip for Grad-CAM (empty: the clip above when it is a test clip, else the first)

# %%
from IPython.display import display
from petaction import setup
from petaction.evaluation import explore
from petaction import params
from petaction.core import paths
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

P = params.from_notebook(globals(), "explore")
R = dict(study=P["study"], target=P["target"], results_dir=P["results_dir"] or None)
data_dir = paths.target_dir(**R) / "data"
clips = explore.clips(**R, split=P["split"] or None, label=P["label"] or None, species=P["species"] or None)
display(clips.groupby(["split", "label"]).size().unstack(0, fill_value=0))

# %% [markdown]
# ## One clip: source frames with the labelled box and keypoints

# %%
clip = clips.iloc[P["clip_index"] % len(clips)]
display(clip[["id", "species", "label", "emotion", "split", "frames"]])
display(explore.clip_figure(clip))
display(explore.gallery(data_dir, clips.iloc[[P["clip_index"] % len(clips)]].assign(pred="(as cached)")))

# %% [markdown]
# ## The best model's predictions and its misclassified test clips
# (filtered by the class and species above; `correct` and `score` per clip)

# %%
name = P["model"] or explore.best_model(**R)
preds = explore.predictions(P["study"], name, P["seed"], P["target"], P["results_dir"] or None)
preds = preds[preds["id"].isin(explore.clips(**R, split="test", label=P["label"] or None,
                                             species=P["species"] or None)["id"])]
wrong = preds[~preds["correct"]].sort_values("score", ascending=False)
print(f"{name}: {int(preds['correct'].sum())} of {len(preds)} test clips right")
display(wrong.head(P["gallery_size"]))
display(explore.gallery(data_dir, wrong.head(P["gallery_size"])))

# %% [markdown]
# ## Its commonest confusions

# %%
confusions = explore.common_confusions(preds, k=5)
display(confusions)
display(explore.gallery(data_dir, confusions, id_col="example"))

# %% [markdown]
# ## Where the model looks: Grad-CAM on one test clip
# (`model` above, empty: the best; `gradcam_clip`; mmaction2's GradCAM of its prediction, as in the report)

# %%
from petaction.evaluation import gradcam
test_ids = list(explore.clips(**R, split="test")["id"])
gc_clip = P["gradcam_clip"] or (clip["id"] if clip["id"] in test_ids else test_ids[0])
gc_run = gradcam.find_run(P["study"], name, P["seed"], P["target"], P["results_dir"] or None, gc_clip)
display(gradcam.clip_figure(gc_run, gc_clip))
