# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: petaction
#     language: python
#     name: petaction
# ---

# %% tags=["parameters"]
study = "default"
results_dir = ""
targets = ["action"]

# %% tags=["remove-input"]
from IPython.display import Image, Markdown, display
from petaction import params, report

P = params.from_notebook(globals(), "report")
R = report.load(P["study"], P["results_dir"] or None)
display(Markdown(f"# Which video model for real-time pet behaviour recognition? Study `{R['study']}`"))
display(Markdown("**Abstract.** " + report.abstract(R)))

# %%
display(Markdown("## 1. Dataset"))
display(Markdown(report.dataset(R)))
display(Image(filename=str(R["eval"].parent / "data" / "class_counts.png")))

# %%
display(Markdown("## 2. Methods"))
display(Markdown(report.methods(R)))

# %%
display(Markdown("## 3. Results"))
display(Markdown("Test-split metrics, recomputed from each run's saved per-clip scores "
                 f"(`results/{R['study']}/evaluation/summary.csv`), best first:"))
display(Markdown(report.table(R["summary"])))
display(Markdown("Training loss and validation top-1 per epoch:"))
display(Image(filename=str(R["eval"] / "curves.png")))
display(Image(filename=str(R["eval"] / "confusion_best.png")))
display(Image(filename=str(R["eval"] / "per_class.png")))

# %%
display(Markdown("## 4. Conclusion"))
display(Markdown(report.conclusion(R)))

# %%
display(Markdown("## Appendix: provenance"))
display(Markdown(report.appendix(R)))
