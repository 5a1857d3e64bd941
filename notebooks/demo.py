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
# # Demo: a trained recogniser on a video
# Sliding windows over a video, smoothed into a behaviour timeline, and an annotated copy;
# then the same model fed frame by frame (streaming). Everything here is
# `python -m petaction infer` (lib/petaction/deploy/infer.py); the notebook only shows it.
#
# `papermill notebooks/demo.ipynb out.ipynb -p video sample -p run results/default/models/tsm/seed0_trial1`

# %% tags=["parameters"]
video = "sample"      # an mp4, an AI-Hub frame folder, a webcam index, or "sample" (the bundled mp4)
run = "results/default/models/tsm/seed0_trial1"   # a trained run folder (relative to the repository root)
out = "results/demo"  # output folder (replaced as a whole)
stride = 1.0          # seconds between window starts
smooth = 3            # majority over the last n windows (1: none)
topk = 3
backend = "torch"     # "torch" (mmaction2's inference_recognizer) or "onnx" (ONNX Runtime)
boxes = "auto"        # pet box: "auto" (the study's pet detector if trained, else whole frame), "detector", "none", "label"

# %%
import time

import cv2
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Image, display
from petaction import setup
from petaction.deploy import infer
from petaction.core import paths
from petaction.data import video as V
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

src = V.sample_video() if video == "sample" else video
run_dir, out_dir = paths.REPO / run, paths.REPO / out
localiser = infer.make_localiser(boxes, src, run_dir)
T = infer.infer(src, run_dir, out_dir, stride_s=stride, smooth_n=smooth, k=topk, backend=backend, localiser=localiser)

# %% [markdown]
# ## Timeline (`timeline.json`, `timeline.csv`)

# %%
rows = pd.DataFrame([{**{k: w[k] for k in ("start_s", "end_s", "label", "label_score", "padded")},
                      "raw top-k": ", ".join(f"{t['label']} {t['score']:.2f}" for t in w["topk"])}
                     for w in T["windows"]])
print("\n".join(T["notes"]))
display(rows)

# %% [markdown]
# ## Behaviour over time (`timeline.png`)

# %%
display(Image(filename=str(out_dir / "timeline.png")))   # infer.timeline_chart, as written beside the timeline

# %% [markdown]
# ## Annotated frames (`annotated.mp4`), one per window's end

# %%
cap = cv2.VideoCapture(str(out_dir / "annotated.mp4"))
fps = cap.get(cv2.CAP_PROP_FPS)
shots = []
for w in T["windows"][:4]:
    cap.set(cv2.CAP_PROP_POS_FRAMES, max(0, int(w["end_s"] * fps) - 1))
    ok, img = cap.read()
    if ok:
        shots.append((w, img[:, :, ::-1]))
cap.release()
fig, axes = plt.subplots(1, len(shots), figsize=(4 * len(shots), 3), squeeze=False)
for ax, (w, img) in zip(axes[0], shots):
    ax.imshow(img)
    ax.set_title(f"{w['end_s']:.1f} s", fontsize=9)
    ax.axis("off")
display(fig)
plt.close(fig)

# %% [markdown]
# ## Streaming: frames consumed as they arrive
# Any iterator of frames works (a camera callback, a queue); a webcam index where one exists.
# Only one window of model frames is buffered. Throughput covers decode + localise + recognise.

# %%
rec = infer.Recogniser(run_dir, backend)
source = V.open_source(src)
windows, t0 = [], time.perf_counter()
for w in infer.stream(source, rec, stride, localiser):
    windows.append(w)
    print(f"{w.start_s:5.1f}-{w.end_s:5.1f} s  raw top-1 {rec.classes[w.scores.argmax()]:<10} {w.scores.max():.2f}"
          f"  latency {w.latency_ms:.0f} ms")
S = infer.stream_stats(windows, time.perf_counter() - t0, windows[-1].end_s)
print(f"{S['windows_per_s']} windows/s, latency median {S['latency_ms_median']} ms, {S['realtime_factor']}x real time")
