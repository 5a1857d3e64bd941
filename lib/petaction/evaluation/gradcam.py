"""Where each model looks: Grad-CAM of every model of a study on one fixed set of test clips.

    from petaction.evaluation import gradcam
    gradcam.run(target_dir, {"tsm": run, "fast_rcnn": run2}, out)   # evaluate.evaluate calls this
    gradcam.clip_figure(run, "dog-tailing-000012")                   # one clip, one model (explore)

Every map is mmaction2's own ``mmaction.utils.GradCAM`` (the utility its demo/demo_gradcam.py
runs) on the run's best checkpoint and its own test pipeline: the gradient of the predicted
class's raw score (before softmax, averaged over the test views, as GradCAM sets the head)
with respect to a stage of the backbone, weighted over its channels, ReLU, upsampled to the
input frames and scaled to [0, 1] per view. The stage (target_layer) is the last one whose map
keeps MIN_CELLS cells on its short side: the last stage at 224 px, an earlier one at the quick
profile's 32 px, where most backbones end in 1 x 1. SlowFast: GradCAM hooks one layer, and the
stage is the slow pathway's (the one with the channels and the lateral inputs from the fast
pathway); ``layer=`` names another, e.g. ``backbone/fast_path/layer2``.

fast_rcnn: GradCAM takes recognisers only. ``BoxGradCAM`` (a subclass) runs the detector's own box forward
(forward.BoxForward.box_logits) on the whole frames with the labelled key-frame box as the
RoI, and reuses GradCAM's hooks and map unchanged. Its backbone sees the whole frame, so the
map covers the whole frame; ``box_share`` is the share of the key frame's map inside the box,
beside the box's share of the frame's area (what a map spread evenly would put there).

The clips (``choose_clips``): from the test split, for each class ``per_class`` clips drawn by a
seeded generator from that class's clips in id order, so the order-only classes are among them;
the same clips for every model. Written to ``out`` (evaluation/gradcam/): grid.png (clips x
models, each clip's key frame), <model>.png (each clip's frames over time), <model>.npz (the
maps and frames the figures are drawn from), gradcam.csv (one row per model and clip) and
gradcam.json (the clips, every model's figure and layer, the in-box share with its bootstrap
interval over the clips, and any model that could not be mapped, with why).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import stats
from ..core import atomic
from .figures import plt, save
from ..training.runfolder import read_split

PER_CLASS = 1          # clips per class
SEED = 0               # the draw's seed: the same clips on every evaluation of the same split
FRAMES = 4             # frames per clip in a model's figure
MIN_CELLS = 4          # the map's stage keeps at least this many cells on its short side (target_layer)
ALPHA = 0.5            # the heat map's opacity over the frame
COLORMAP = "viridis"   # GradCAM's default
COLUMNS = ["model", "clip", "label", "pred", "correct", "order_only", "layer", "view", "in_box_share",
           "box_area_share"]


# ---- which clips ----

def choose_clips(data: Path, class_names: list[str], order_only: list[str], per_class: int = PER_CLASS,
                 seed: int = SEED, fold: int = 0) -> pd.DataFrame:
    """``per_class`` test clips of every class present in the test split (all of a class's when
    it has fewer), drawn by a seeded generator from its clips in id order: columns clip, label,
    label_index, order_only, in class order."""
    if per_class < 1:
        raise ValueError(f"gradcam per_class must be at least 1 (got {per_class}): a figure needs a clip of every class")
    rows = sorted(read_split(Path(data), "test", fold))
    rng = np.random.default_rng(seed)
    out = []
    for i, name in enumerate(class_names):
        ids = [clip for clip, _, label in rows if label == i]
        if not ids:
            continue
        pick = sorted(rng.choice(len(ids), size=min(per_class, len(ids)), replace=False))
        out += [{"clip": ids[j], "label": name, "label_index": i, "order_only": name in order_only} for j in pick]
    return pd.DataFrame(out, columns=["clip", "label", "label_index", "order_only"])


# ---- the maps ----

def stages(model: torch.nn.Module) -> list[str]:
    """The backbone's stages as GradCAM layer names (``a/b/c``), in forward order: its residual
    stages where it names them (mmaction2's and mmdet's ResNets, X3D: ``res_layers``; a SlowFast
    pathway registers its lateral convolutions after them), else its children with weights
    (MobileNetV2). SlowFast: the slow pathway's; the ResNeXt adapter: mmdet's ResNeXt inside it."""
    backbone, prefix = model.backbone, "backbone"
    for inner in ("slow_path", "resnext"):
        if hasattr(backbone, inner):
            backbone, prefix = getattr(backbone, inner), f"{prefix}/{inner}"
    names = getattr(backbone, "res_layers", None) or \
        [n for n, m in backbone.named_children() if any(True for _ in m.parameters())]
    if not names:
        raise ValueError(f"{type(backbone).__name__} has no stage with weights to take Grad-CAM from")
    return [f"{prefix}/{n}" for n in names]


def target_layer(model: torch.nn.Module, step, data: dict) -> str:
    """The last stage whose map keeps MIN_CELLS cells on its short side, measured on ``data``
    (``step``: the test step GradCAM will call), else the last stage. Grad-CAM's usual layer is the
    last stage, but at 32 px most of these backbones end in a 1 x 1 map there: a heat map that
    says when, never where."""
    names, sides = stages(model), {}
    hooks = [module_at(model, n).register_forward_hook(
        lambda mod, args, out, n=n: sides.__setitem__(n, min(out.shape[-2:]))) for n in names]
    try:
        with torch.no_grad():
            step.test_step(data)
    finally:
        for h in hooks:
            h.remove()
    big = [n for n in names if sides.get(n, 0) >= MIN_CELLS]
    return big[-1] if big else names[-1]


def module_at(model: torch.nn.Module, layer: str) -> torch.nn.Module:
    m = model
    for part in layer.split("/"):
        if part not in m._modules:
            raise ValueError(f"{type(model).__name__} has no layer {layer!r} ({part!r} is not one of "
                             f"{', '.join(m._modules)}): name one as GradCAM does, e.g. backbone/layer4")
        m = m._modules[part]
    return m


def _gradcam_class():
    from mmaction.utils import GradCAM
    return GradCAM


class _BoxStep:
    """fast_rcnn as GradCAM calls a recogniser: ``test_step(data)`` -> one sample per clip with
    ``pred_score`` (the key box's raw class scores, differentiable) and ``gt_label``. The clips
    come as a 3D recogniser's (one view each), which GradCAM's map and blending read."""

    def __init__(self, detector):
        from .forward import BoxForward
        self.detector, self.net = detector, BoxForward(detector)
        self.cls_head = type("Head", (), {"average_clips": None})()   # GradCAM sets it; boxes have one view

    def zero_grad(self):
        self.detector.zero_grad()

    def test_step(self, data: dict) -> list:
        from mmaction.structures import ActionDataSample
        clips = torch.stack([x[0] for x in data["inputs"]])          # (B, 3, T, H, W): the view dimension off
        boxes = torch.stack([s.proposals.bboxes[0] for s in data["data_samples"]]).float()
        logits = self.net.box_logits(clips, boxes)[0]
        out = []
        for s, row in zip(data["data_samples"], logits):
            r = ActionDataSample().set_pred_score(row)
            r.set_gt_label(s.gt_label if "gt_label" in s else torch.tensor([-1]))
            out.append(r)
        return out


def box_gradcam(detector, layer: str, colormap: str = COLORMAP):
    """GradCAM on a box-level detector (a subclass built on first use: mmaction imports late)."""
    GradCAM = _gradcam_class()

    class BoxGradCAM(GradCAM):
        """mmaction2's GradCAM on fast_rcnn: its hooks and map, the detector's box forward as the
        test step (GradCAM.__init__ refuses anything but a recogniser, so it is not called)."""

        def __init__(self, model, target_layer_name, colormap=COLORMAP):
            self.is_recognizer2d = False
            self.model = model
            self.target_gradients = self.target_activations = None
            self.colormap = plt.get_cmap(colormap)
            self._register_hooks(target_layer_name)
            self.model = _BoxStep(model)

    return BoxGradCAM(detector, layer, colormap)


def load(run: Path):
    """The run's best checkpoint (forward.load_recognizer: mmaction2's init_recognizer, CPU)."""
    from .forward import load_recognizer
    return load_recognizer(run)


def test_dataset(model, data: Path | None = None):
    """The run's own test dataset (its test pipeline), or the same on ``data``'s test list."""
    from mmengine.registry import init_default_scope
    from mmaction.registry import DATASETS
    init_default_scope("mmaction")
    ds = dict(model.cfg.test_dataloader.dataset)
    if data is not None:
        ds.update(ann_file=str(Path(data) / "test.txt"), data_prefix=dict(img=str(Path(data) / "frames")))
    return DATASETS.build(ds)


def clip_index(dataset) -> dict[str, int]:
    """Clip id -> index in the dataset (get_data_info: mmengine serialises data_list away)."""
    return {Path(dataset.get_data_info(i)["frame_dir"]).name: i for i in range(len(dataset))}


def maps(model, dataset, clips: list[str], layer: str | None = None) -> dict:
    """Grad-CAM of each clip's predicted class. Returns the layer and, per clip (arrays of the
    shown view: a 2D model's segments, a 3D model's middle test view, the box model's clip):
    ``frames`` (T, H, W, 3) uint8, ``map`` (T, H, W) in [0, 1], ``scores`` (classes,) raw,
    ``pred``, ``label``, and for the box model ``box`` (x0, y0, x1, y1 at the key frame, pixels)."""
    from mmengine.dataset import pseudo_collate
    from .forward import is_box_model, is_recognizer
    box = is_box_model(model)
    if not (box or is_recognizer(model)):
        raise ValueError(f"{type(model).__name__} is neither a recogniser nor a box-level detector")
    where = clip_index(dataset)
    missing = [c for c in clips if c not in where]
    if missing:
        raise ValueError(f"clips {missing} are not in the run's test list ({dataset.ann_file}): "
                         "choose test clips of the study's split")

    def batch(clip):
        data = pseudo_collate([dataset[where[clip]]])
        if box:
            data["inputs"] = [x[None] for x in data["inputs"]]   # one view: a 3D recogniser's layout
        return data

    if layer:
        module_at(model, layer)
    else:
        layer = target_layer(model, _BoxStep(model) if box else model, batch(clips[0]))
    head = None if box else model.cls_head
    kept = None if box else head.average_clips
    cam = box_gradcam(model, layer) if box else _gradcam_class()(model, layer, COLORMAP)
    out = {"layer": layer, "clips": {}}
    try:
        for clip in clips:
            data = batch(clip)
            with torch.enable_grad():
                cmap, preds = cam._calculate_localization_map(data, use_labels=False)
            x = data["inputs"][0]                                   # 2D (T, 3, H, W); 3D (views, 3, T, H, W)
            if x.dim() == 4:
                frames, view = x.permute(0, 2, 3, 1), 0
                m = cmap[0]
            else:
                view = x.shape[0] // 2
                frames, m = x[view].permute(1, 2, 3, 0), cmap[view]
            sample = data["data_samples"][0]
            rec = {"frames": frames.to(torch.uint8).numpy(), "map": m.float().numpy(), "view": view,
                   "scores": preds[0].detach().float().numpy(), "pred": int(preds[0].argmax()),
                   "label": int(sample.gt_label.reshape(-1)[0])}
            if box:
                rec["box"] = sample.proposals.bboxes[0].float().numpy()
            out["clips"][clip] = rec
    finally:
        if head is not None:
            head.average_clips = kept   # GradCAM switched the head to raw scores
        model.zero_grad(set_to_none=True)
    return out


def key_frame(n_frames: int) -> int:
    """The sampled frame the box-level model's box belongs to: KeyFrameBox's middle one."""
    return n_frames // 2


def box_share(cam: np.ndarray, box) -> tuple[float, float]:
    """(share of a (H, W) map's mass inside the box, the box's share of the frame's area). A
    pixel is inside when its centre is: x0 <= j + 0.5 < x1 and y0 <= i + 0.5 < y1 (pixels of
    the frame the map covers). A map of zero mass has no share (NaN)."""
    cam = np.asarray(cam, dtype=float)
    if cam.ndim != 2:
        raise ValueError(f"box_share takes one frame's (H, W) map, got shape {cam.shape}")
    h, w = cam.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = np.arange(w) + 0.5, np.arange(h) + 0.5
    inside = ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]
    total = cam.sum()
    return (float(cam[inside].sum() / total) if total > 0 else float("nan")), float(inside.mean())


def box_summary(shares: list[float], areas: list[float]) -> dict:
    """The in-box share over the clips, with its bootstrap interval (stats.bootstrap_ci), beside
    the box's area share and the paired difference (share - area: above 0, the map is on the pet
    more than a map spread evenly over the frame would be). A clip whose map is zero everywhere
    (no positive evidence at that stage) has no share: counted in n_empty, left out of the rest."""
    s, a = np.asarray(shares, float), np.asarray(areas, float)
    ok = ~np.isnan(s)
    s, a = s[ok], a[ok]
    lo, hi = stats.bootstrap_ci(s)
    alo, ahi = stats.bootstrap_ci(a)
    dlo, dhi = stats.bootstrap_ci(s - a)
    return {"n_clips": int(len(s)), "n_empty": int((~ok).sum()), "in_box_share": float(s.mean()) if len(s) else float("nan"),
            "in_box_ci_low": lo, "in_box_ci_high": hi,
            "box_area_share": float(a.mean()) if len(a) else float("nan"), "area_ci_low": alo, "area_ci_high": ahi,
            "diff": float((s - a).mean()) if len(s) else float("nan"), "diff_ci_low": dlo, "diff_ci_high": dhi,
            "frame": "key frame (KeyFrameBox's middle sampled frame)", "interval": "percentile bootstrap over clips, 95%"}


# ---- figures ----

def _show(ax, frame: np.ndarray, cam: np.ndarray, box=None, key: bool = False):
    ax.imshow(frame)
    ax.imshow(cam, cmap=COLORMAP, alpha=ALPHA, vmin=0, vmax=1)
    if box is not None:
        x0, y0, x1, y1 = box
        ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=1.2,
                                   ec="red", ls="-" if key else ":"))
    ax.set_xticks([])
    ax.set_yticks([])


def model_figure(name: str, res: dict, clips: pd.DataFrame, class_names: list[str], out: Path | None = None,
                 n_frames: int = FRAMES):
    """One model: a row per clip, n frames of its shown view with the map over them; titled with
    the truth and the prediction; the box model's key-frame box in red (solid on the key frame)."""
    rows = [c for c in clips.itertuples() if c.clip in res["clips"]]
    n_frames = min(n_frames, max(res["clips"][c.clip]["frames"].shape[0] for c in rows))
    fig, axes = plt.subplots(len(rows), n_frames, figsize=(1.6 * n_frames, 1.5 * len(rows) + 0.4), squeeze=False)
    for r, c in enumerate(rows):
        rec = res["clips"][c.clip]
        t = rec["frames"].shape[0]
        pick = np.unique(np.linspace(0, t - 1, min(n_frames, t)).round().astype(int))
        for k, ax in enumerate(axes[r]):
            ax.axis("off")
            if k < len(pick):
                ax.axis("on")
                _show(ax, rec["frames"][pick[k]], rec["map"][pick[k]], rec.get("box"), pick[k] == key_frame(t))
        pred = class_names[rec["pred"]]
        mark = "" if rec["pred"] == c.label_index else " ✗"
        head = f"Grad-CAM, {name} ({res['layer']}), truth → prediction:\n" if r == 0 else ""
        axes[r][0].set_title(f"{head}{c.label}{' (order-only)' if c.order_only else ''} → {pred}{mark}",
                             fontsize=7, loc="left")
    return save(fig, out)


def grid_figure(results: dict, clips: pd.DataFrame, class_names: list[str], out: Path | None = None):
    """Clips x models: each clip's key frame (the middle of the shown view) with each model's map,
    the model's name over the first row, the prediction over each (✗ where wrong), the truth on the left."""
    models = list(results)
    fig, axes = plt.subplots(len(clips), len(models), figsize=(1.25 * len(models) + 0.9, 1.3 * len(clips) + 0.5),
                             squeeze=False)
    for r, c in enumerate(clips.itertuples()):
        for k, m in enumerate(models):
            ax = axes[r][k]
            rec = results[m]["clips"].get(c.clip)
            if rec is None:
                ax.axis("off")
                continue
            t = key_frame(rec["frames"].shape[0])
            _show(ax, rec["frames"][t], rec["map"][t], rec.get("box"), True)
            wrong = rec["pred"] != c.label_index
            ax.set_title((f"{m}\n" if r == 0 else "") + class_names[rec["pred"]] + (" ✗" if wrong else ""),
                         fontsize=6, color="firebrick" if wrong else "black")
            if k == 0:
                ax.set_ylabel(f"{c.label}{chr(10) + '(order-only)' if c.order_only else ''}", fontsize=7)
    return save(fig, out)


# ---- the study's runs ----

def run(root: Path, runs: dict, out: Path, per_class: int = PER_CLASS, seed: int = SEED) -> dict:
    """Grad-CAM of every model (``runs``: model -> its run folder, in the order to show) on one
    set of test clips of the target at ``root``; writes ``out``'s files (module docstring) and
    returns gradcam.json's record. A model that cannot be mapped is skipped, with why."""
    from ..core import paths
    root, out = Path(root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):   # an earlier evaluation's models must not linger
        if old.suffix in (".png", ".npz", ".csv", ".json"):
            old.unlink()
    meta = json.loads((root / "data" / "classes.json").read_text())
    class_names = meta["classes"]
    fold = paths.parse_run(next(iter(runs.values())))[1] if runs else 0
    clips = choose_clips(root / "data", class_names, meta["order_only"], per_class, seed, fold)
    results, skipped, rows, boxes = {}, {}, [], {}
    for name, run_dir in runs.items():
        # one model's failure (its checkpoint gone, a backbone whose stages the layer walk does not
        # know) is recorded and said in the report, not fatal to the evaluation
        try:
            model = load(run_dir)
            res = maps(model, test_dataset(model), list(clips["clip"]))
        except (OSError, RuntimeError, ValueError, KeyError, AttributeError) as err:
            skipped[name] = f"{type(err).__name__}: {err}"
            continue
        results[name] = res
        shares, areas = [], []
        for c in clips.itertuples():
            rec = res["clips"][c.clip]
            share = area = float("nan")
            if "box" in rec:
                share, area = box_share(rec["map"][key_frame(rec["map"].shape[0])], rec["box"])
                shares.append(share)
                areas.append(area)
            rows.append({"model": name, "clip": c.clip, "label": c.label, "pred": class_names[rec["pred"]],
                         "correct": rec["pred"] == c.label_index, "order_only": c.order_only, "layer": res["layer"],
                         "view": rec["view"], "in_box_share": share, "box_area_share": area})
        if shares:
            boxes[name] = box_summary(shares, areas)
        model_figure(name, res, clips, class_names, out / f"{name}.png")
        save_maps(res, list(clips["clip"]), out / f"{name}.npz")
    atomic.to_csv(pd.DataFrame(rows, columns=COLUMNS), out / "gradcam.csv", index=False)
    if results:
        grid_figure(results, clips, class_names, out / "grid.png")
    record = {"method": "mmaction.utils.GradCAM, the predicted class's raw score", "seed": seed, "per_class": per_class,
              "min_cells": MIN_CELLS,
              "split": "test", "fold": fold, "clips": clips.to_dict("records"), "order_only": meta["order_only"],
              "grid": "grid.png" if results else None,
              "models": {m: {"figure": f"{m}.png", "maps": f"{m}.npz", "layer": r["layer"], "run": str(runs[m])}
                         for m, r in results.items()},
              "box": boxes, "skipped": skipped}
    atomic.write_json(out / "gradcam.json", record, indent=1, default=atomic.plain)
    return record


def save_maps(res: dict, clips: list[str], path: Path) -> None:
    """The arrays a model's figure is drawn from (maps in float16: the figure's precision)."""
    recs = [res["clips"][c] for c in clips]
    arrays = {"clips": np.array(clips), "pred": np.array([r["pred"] for r in recs]),
              "label": np.array([r["label"] for r in recs]), "layer": np.array(res["layer"])}
    for i, r in enumerate(recs):   # clips may differ in shape (a whole frame's aspect): one array each
        arrays[f"map_{i}"] = r["map"].astype(np.float16)
        arrays[f"frames_{i}"] = r["frames"]
        if "box" in r:
            arrays[f"box_{i}"] = r["box"]
    np.savez_compressed(path, **arrays)


# ---- one clip, one model (the explore notebook) ----

def find_run(study: str, model: str, seed: int = 0, target: str = "action", results_dir=None,
             clip: str | None = None) -> Path:
    """The run of (model, seed); with cross-validation folds, the fold whose test split holds the clip."""
    from ..core import paths
    run = paths.run_dir(study, model, seed, target, results_dir)
    if run.is_dir():
        return run
    data = paths.target_dir(study, target, results_dir) / "data"
    for fold_run in sorted(run.parent.glob(f"{run.name}_fold*")):
        fold = paths.parse_run(fold_run)[1]
        if clip is None or clip in {c for c, _, _ in read_split(data, "test", fold)}:
            return fold_run
    raise FileNotFoundError(f"no run {run} (nor a fold of it testing {clip!r}): train {model} seed {seed} first")


def clip_figure(run: Path, clip: str, layer: str | None = None, n_frames: int = 8):
    """Grad-CAM of a run's prediction on one of its test clips: its frames with the map over
    them, titled with the truth and the prediction. ``layer``: another GradCAM layer name."""
    run = Path(run)
    model = load(run)
    res = maps(model, test_dataset(model), [clip], layer)
    names = list(model.cfg.dataset_meta["classes"])
    rec = res["clips"][clip]
    one = pd.DataFrame([{"clip": clip, "label": names[rec["label"]], "label_index": rec["label"], "order_only": False}])
    return model_figure(f"{run.parent.name} {run.name}, {clip}", res, one, names, n_frames=n_frames)
