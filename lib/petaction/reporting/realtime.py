"""The report's compute cost and real-time verdict: the cost table, the pet detector, the accuracy
with its boxes, and the recommendation decisions.json holds, in words."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.fmt import num, p_text, pct, pts
from . import trialtext
from .common import budget_note, decisions, md_table


def cost_table(summary: pd.DataFrame, cost: dict) -> str:
    """Accuracy beside what each model costs (evaluation/cost.csv); GPU columns where one was present."""
    by_model = {row["model"]: row for row in cost["rows"]}
    batch = cost["rows"][0].get("throughput_batch", "") if cost["rows"] else ""
    gpu = any("gpu_latency_ms" in row for row in cost["rows"])
    e2e = "e2e_latency_p90_ms" in summary and summary["e2e_latency_p90_ms"].notna().any()
    hz = f"{cost['update_hz']:g}/s"
    rows = []
    for row in summary.to_dict("records"):
        c = by_model.get(row["model"], {})
        cells = {"Model": row["model"], "Top-1": pct(row["top1"])}
        if e2e:
            cells.update({"With detector, median (p90) ms": f"{num(row['e2e_latency_ms'], '{:.1f}')} "
                                                           f"({num(row['e2e_latency_p90_ms'], '{:.1f}')})",
                          f"Keeps up with detector at {hz}": verdict(row.get("realtime_e2e")),
                          "Headroom with detector": num(row.get("headroom_e2e"), "{:.1f}x")})
        cells.update({"Network latency, median (p90) ms": f"{num(row['cpu_latency_ms'], '{:.1f}')} "
                                                          f"({num(row['cpu_latency_p90_ms'], '{:.1f}')})",
                      f"Network alone keeps up at {hz}": verdict(row.get("realtime")),
                      "Params (M)": num(row["params_m"], "{:.2f}"), "GFLOPs / clip": num(row["gflops"], "{:.3f}"),
                      f"CPU clips/s (batch {batch})": num(c.get("cpu_throughput_cps")),
                      f"Peak memory, MB (batch 1 / {batch})": f"{num(c.get('peak_mem_mb'))} / "
                                                              f"{num(c.get('peak_mem_batch_mb'))}"})
        if gpu:
            cells.update({"GPU latency ms": num(c.get("gpu_latency_ms"), "{:.2f}"),
                          "GPU clips/s": num(c.get("gpu_throughput_cps"))})
        rows.append(cells)
    return md_table(pd.DataFrame(rows))


def verdict(v) -> str:
    """yes / no / not measured: a missing verdict is never read as keeping up."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "not measured"
    return "yes" if v is True or str(v) == "True" or v == 1 else "no"


def has_fast_rcnn(r: dict) -> bool:
    from ..training.detection import is_fast_rcnn
    return any(is_fast_rcnn(p) for p in r.get("run_params", {}).values())


def detector_text(r: dict) -> str:
    """The pet detector: its box AP on the test frames and what it adds to every prediction."""
    d = r.get("detector")
    if not d:
        return ("No pet detector was trained in this study (`detector: true` in the study's parameters): "
                "the latencies are the networks' alone, with the pet's box given.")
    text = (f"In real use nobody hands the model the pet's box: the study's pet detector ({d['detector']}, "
            f"trained from scratch on the whole frames' boxes, {d['img_size']} px) finds it with test box AP "
            f"{d['box_ap']:.3f} (AP50 {d['box_ap50']:.3f}, AP75 {d['box_ap75']:.3f}; COCO metric on "
            f"{d['n_images']['test']} test frames) in {d['cpu_latency_ms']:.1f} ms (p90 {d['cpu_latency_p90_ms']:.1f} ms) "
            f"per frame. {detector_selection(d)} A recogniser here was trained on frames each cropped to its own box, "
            "so every frame it sees needs a detection")
    if has_fast_rcnn(r):
        text += "; fast_rcnn needs one, its key frame's RoI"
    return text + (". The end-to-end columns add those detections to the model's latency; the real-time "
                   "verdict, the Pareto front and the recommendation use them. " + accuracy_source(r))


def detector_selection(d: dict) -> str:
    """How the detector's tested weights were chosen (its metrics.json's selection, via detector.json)."""
    sel = d.get("selection")
    if not sel:
        return ("Which of its epochs was kept is not recorded (a detector run from before it was): train the "
                "detector again for a checkpoint chosen on validation.")
    split = {"val": "validation"}.get(sel["split"], sel["split"])
    return (f"Its weights are those of the epoch with the best {split} box AP ({sel['metric']}: epoch "
            f"{sel['best_epoch']} of {sel['epochs']}, {split} AP {sel['val_box_ap']:.3f}), tested once on the test frames.")


def e2e_info(r: dict) -> dict:
    """decisions.json's record of the accuracy measured with the detector's boxes (evaluate.end_to_end)."""
    return (r.get("decisions") or {}).get("e2e") or {"models": [], "skipped": {}, "rows": []}


def accuracy_source(r: dict) -> str:
    """Where the accuracy and the cost come from (labelled boxes against a cost with the detector)."""
    text = ("Every accuracy in the tables was measured on the labelled (ground-truth) pet boxes, while the "
            "end-to-end cost includes the detector")
    if e2e_info(r)["rows"]:
        return text + ": the recommendation below also gives the accuracy with the detector's own boxes."
    return text + (": no model's accuracy was measured with the detector's boxes, so the deployed pipeline's "
                   "accuracy may be lower than these.")


def e2e_row_text(x: dict) -> str:
    return (f"{x['model']} reaches {pct(x['top1_detector'])} top-1 on the same {x['n_clips']} test clips against "
            f"{pct(x['top1_labelled'])} on the labelled boxes (seed {x['seed']}): a paired difference of "
            f"{pts(x['diff'])} points (95% bootstrap interval {pts(x['diff_ci_low'])} to {pts(x['diff_ci_high'])}; "
            f"{x['test']} {p_text(x['p_value'])})")


def e2e_text(r: dict, model: str | None) -> str:
    """The accuracy of the deployed pipeline (evaluation/e2e.csv): the test clips cut around the
    detector's boxes and scored by the same model; said for the recommended model first."""
    info = e2e_info(r)
    rows = sorted(info["rows"], key=lambda x: x["model"] != model)
    out = []
    if rows:
        first = rows[0]
        out.append("With the pet detector's boxes instead of the labelled ones (`evaluation/e2e.csv`), "
                   + e2e_row_text(first) + ". The detector's boxes overlap the labelled ones with mean IoU "
                   f"{first['mean_iou']:.2f} ({pct(first['frames_iou50'])} of the test frames at IoU 0.5 or more"
                   + (f"; {first['frames_no_box']} frames before its first box, seen whole" if first["frames_no_box"] else "")
                   + ")." + (" This accuracy and the verdict's cost describe the same pipeline." if first["model"] == model else ""))
        out += [e2e_row_text(x) + "." for x in rows[1:]]
        out.append("These paired differences describe one model's pipeline each and are not in the Holm family.")
    for m, why in info["skipped"].items():
        out.append(f"{m}'s accuracy with the detector's boxes was not measured: {why}.")
    return " ".join(out)


def recommendation(r: dict) -> str:
    """Which model to run in real time: decisions.json's recommendation, in words."""
    from ..evaluation.cost import pareto_front
    s, c, rec = r["summary"], r["cost"], decisions(r)["recommendation"]
    if c is None or rec["reason"] == "no_cost":
        return "No cost measurements."
    hz, hw = c["update_hz"], c["hardware"]
    lat, head = rec["latency_column"], rec["headroom_column"]
    e2e = lat.startswith("e2e")
    by = s.set_index("model")
    out = [f"At {hz:g} prediction(s) per second on {hw['cpu']} ({c['torch_threads']} torch threads, batch 1, "
           f"{'end to end, the pet detector included' if e2e else 'network only'}), {len(rec['keeps_up'])} of "
           f"{len(s)} models keep up" + (f" ({', '.join(rec['unknown'])} not measured)" if rec["unknown"] else "") + "."]
    front = pareto_front(s, x=lat)
    out.append("The test accuracy-latency Pareto front, fastest first: " + " → ".join(
        f"{m} ({pct(by.loc[m, 'top1'])}, {by.loc[m, lat]:.0f} ms)" for m in front) + ".")
    if trialtext.over(r):
        return " ".join(out + [trialtext.recommendation(r)])
    margin = f"{100 * rec['margin']:g} points"
    reason = rec["reason"]
    if reason == "none_keep_up":
        out.append("Recommendation: none of these keeps up on this machine; lower the update rate or use a GPU.")
    elif reason == "no_val_scores":
        out.append("Recommendation: none. No run saved per-clip validation scores (`val_scores.npz`; runs "
                   "trained before it existed), so none can be chosen on validation: train them again.")
    elif reason == "none_learned":
        out.append("Recommendation: none. No model that keeps up beats the majority baseline on validation.")
    elif reason == "fails_test_baseline":
        out.append(f"Recommendation: none. {rec['vetoed']} was chosen on validation, but on test it does not "
                   "beat always predicting the commonest class, so it has not learned the task.")
    else:
        m, pick = rec["model"], rec["pick"]
        why = (f"It keeps up with {by.loc[m, head]:.1f}x headroom ({by.loc[m, lat]:.0f} ms per prediction"
               f"{', the detector included' if e2e else ''})")
        if reason == "faster_non_inferior":
            cand = next(x for x in rec["candidates"] if x["model"] == m)
            out.append(f"Recommendation: {m}. {why}, {by.loc[pick, lat] / by.loc[m, lat]:.1f} times faster than "
                       f"{pick} (the best on validation among the models that keep up), and is non-inferior to it "
                       f"within {margin} on validation: top-1 difference {pts(cand['val_diff'])} points, 95% "
                       f"bootstrap interval {pts(cand['val_diff_ci_low'])} to {pts(cand['val_diff_ci_high'])}, "
                       f"above -{100 * rec['margin']:g}.")
        else:
            out.append(f"Recommendation: {m}, the best on validation among the models that keep up and beat the "
                       f"majority baseline. {why}.")
            worse = [x for x in rec["candidates"] if not x["non_inferior"]]
            if worse:
                out.append(f"No faster model is non-inferior within {margin} on validation: " + "; ".join(
                    f"{x['model']} {pts(x['val_diff'])} points (95% interval {pts(x['val_diff_ci_low'])} to "
                    f"{pts(x['val_diff_ci_high'])})" for x in worse) + ".")
        note = budget_note(r, [x for x in dict.fromkeys([m, pick] + [x["model"] for x in rec["candidates"]])])
        if note:
            out.append(note.strip())
    if e2e:
        out.append(e2e_text(r, rec["model"]) or accuracy_source(r))
    return " ".join(t for t in out if t)
