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

# %%
from IPython.display import Image, Markdown, display
from petaction import setup
from petaction import params
from petaction.reporting import report
setup()   # the pinned OpenMMLab packages work, this project's parts registered (petaction.setup)

P = params.from_notebook(globals(), "report")
reports = [report.load(P["study"], P["results_dir"] or None, t) for t in P["targets"]]
display(Markdown(f"# Which video model for real-time pet behaviour recognition? Study `{P['study']}`"))
display(Markdown("**Abstract.** " + report.abstract_all(reports)))

# %%
for R in reports:
    for kind, content in report.sections(R):
        display(Markdown(content) if kind == "md" else Image(filename=content))

# %%
display(Markdown("## Appendix: provenance"))
for R in reports:
    display(Markdown(f"**{R['target'].capitalize()}**\n\n" + report.appendix(R)))
