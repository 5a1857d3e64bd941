"""The report's "where each model looks" part, rendered from evaluation/gradcam/ (gradcam.json,
gradcam.csv and the figures evaluation.gradcam writes): report.sections includes it."""
from __future__ import annotations

import json

import pandas as pd

from ..core.fmt import pct


def load(r: dict) -> tuple[dict, pd.DataFrame] | None:
    """gradcam.json and gradcam.csv of a target's evaluation, or None when it wrote none."""
    folder = r["eval"] / "gradcam"
    if not (folder / "gradcam.json").is_file():
        return None
    rows = pd.read_csv(folder / "gradcam.csv") if (folder / "gradcam.csv").is_file() else pd.DataFrame()
    return json.loads((folder / "gradcam.json").read_text()), rows


def clips_text(g: dict) -> str:
    """Which clips, and how they were chosen."""
    clips = pd.DataFrame(g["clips"])
    classes = ", ".join(f"{lab}{' (order-only)' if oo else ''}" for lab, oo in
                        clips.groupby("label", sort=False)["order_only"].first().items())
    per = "one test clip" if g["per_class"] == 1 else f"{g['per_class']} test clips"
    return (f"Grad-CAM (mmaction2's `GradCAM`) of each model's predicted class on {per} of every class, "
            f"{len(clips)} clips drawn from the test split by a generator seeded {g['seed']} (the same clips for "
            f"every model): {classes}. The heat map weights the activations of the layer each figure names by "
            "the gradient of the predicted class's raw score, on the frames the model was given (bright: where "
            "the evidence for its prediction lies). That layer is the last stage of the backbone whose map keeps "
            f"at least {g['min_cells']} cells on its short side (at small frames the last stages end in one "
            "cell, which says when but not where). Each panel's title is the prediction, marked ✗ where it is "
            "wrong.")


def correct_text(rows: pd.DataFrame) -> str:
    if rows.empty:
        return ""
    oo = rows[rows["order_only"].astype(bool)]
    parts = [f"{m} {int(g['correct'].sum())} of {len(g)}" for m, g in rows.groupby("model", sort=False)]
    text = "Right on these clips: " + ", ".join(parts) + "."
    if len(oo):
        parts = [f"{m} {int(g['correct'].sum())} of {len(g)}" for m, g in oo.groupby("model", sort=False)]
        text += " On the order-only ones among them: " + ", ".join(parts) + "."
    return text


def box_text(name: str, b: dict) -> str:
    """The box-level model's in-box share beside the box's share of the frame."""
    return (f"{name} sees the whole frame; its figure shows the pet's labelled box at the key frame (red). "
            f"On the key frame {pct(b['in_box_share'])} of its Grad-CAM mass lies inside the box (95% interval "
            f"{pct(b['in_box_ci_low'])} to {pct(b['in_box_ci_high'])}, bootstrap over its {b['n_clips']} clips), "
            f"where the box covers {pct(b['box_area_share'])} of the frame ({pct(b['area_ci_low'])} to "
            f"{pct(b['area_ci_high'])}): a map spread evenly would put that share inside it. The difference, "
            f"{pct(b['diff'])} ({pct(b['diff_ci_low'])} to {pct(b['diff_ci_high'])}), "
            + ("says the map is on the pet more than on the scene."
               if b["diff_ci_low"] > 0 else "says the map is on the scene at least as much as on the pet."
               if b["diff_ci_high"] <= 0 else "does not tell the pet from the scene.")
            + (f" On {b['n_empty']} more clips its map was zero everywhere (no positive evidence at that layer), "
               "so they have no share." if b.get("n_empty") else ""))


def section(r: dict) -> list[tuple[str, str]]:
    """("md", text) and ("img", path) items: the grid, each model's figure, the in-box share."""
    t = r["target"].capitalize()
    loaded = load(r)
    if loaded is None:
        return [("md", f"## {t}: where each model looks"),
                ("md", "No Grad-CAM figures: the evaluation wrote no `gradcam/gradcam.json` (evaluate again).")]
    g, rows = loaded
    folder = r["eval"] / "gradcam"
    out = [("md", f"## {t}: where each model looks"), ("md", clips_text(g))]
    if g.get("grid"):
        out += [("md", "Each clip's key frame (the middle of the frames shown below), one column per model:"),
                ("img", str(folder / g["grid"]))]
    out.append(("md", correct_text(rows)))
    for name, m in g["models"].items():
        out.append(("md", f"**{name}** (layer `{m['layer']}`), each clip's frames over time:"))
        if name in g["box"]:
            out.append(("md", box_text(name, g["box"][name])))
        out.append(("img", str(folder / m["figure"])))
    if g["skipped"]:
        out.append(("md", "Not mapped: " + "; ".join(f"{m} ({why})" for m, why in g["skipped"].items()) + "."))
    return out
