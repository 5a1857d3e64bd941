"""Error analysis over a study's files: clips, their labels drawn on the frames, predictions.

notebooks/explore.ipynb (JupyterLab) browses with these functions; evaluate.evaluate calls
`common_confusions` and `gallery` for the report's gallery of the commonest confusions.

    from petaction.evaluation import explore
    clips = explore.clips("default", split="test", label="TAILING")
    explore.clip_figure(clips.iloc[0])            # source frames, box and keypoints drawn
    preds = explore.predictions("default", "tsm")  # test clips with true and predicted class
    explore.gallery(data_dir, preds[~preds.correct].head(6))
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..data import aihub
from ..core import paths
from .figures import plt, save

KEYPOINT_EDGES = [(1, 2), (1, 3), (3, 4), (2, 5), (5, 6), (5, 7), (6, 8), (7, 9), (5, 14),
                  (14, 10), (14, 11), (10, 12), (11, 13), (14, 15)]   # the spec's 15 points, as a skeleton


def clips(study: str = "default", target: str = "action", results_dir=None, split: str | None = None,
          label: str | None = None, species: str | None = None) -> pd.DataFrame:
    """The prepared clips (data/clips.csv), filtered by split, class and species."""
    df = pd.read_csv(paths.target_dir(study, target, results_dir) / "data" / "clips.csv")
    for col, want in (("split", split), ("label", label), ("species", species)):
        if want is not None:
            if want not in set(df[col]):
                raise ValueError(f"no clip has {col} {want!r}; present: {', '.join(sorted(map(str, set(df[col]))))}")
            df = df[df[col] == want]
    return df.reset_index(drop=True)


def annotated_frames(clip: pd.Series, n: int = 4) -> list[tuple[int, np.ndarray]]:
    """n evenly spaced source frames of a clip (RGB) with the label's box and keypoints drawn."""
    frames, _ = aihub.list_frames(Path(clip["source"]))
    if not frames:
        raise FileNotFoundError(f"no frames in {clip['source']}")
    label = aihub.load_label(Path(clip["label_path"]))
    records = {int(r["frame_number"]): r for r in label["annotations"] if isinstance(r, dict) and "frame_number" in r}
    boxes = aihub.boxes_by_frame(label["annotations"])
    out = []
    for i in np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int):
        number, _, path = frames[i]
        img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        keypoints = (records.get(number) or {}).get("keypoints") or {}
        out.append((number, draw(img, aihub.nearest_box(boxes, number), keypoints)))
    return out


def draw(img: np.ndarray, box, keypoints: dict) -> np.ndarray:
    """The box (green) and the keypoints joined as a skeleton (red); missing points skipped."""
    img = img.copy()
    t = max(2, img.shape[0] // 250)
    if box is not None:
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(img, (x, y), (x + w, y + h), (40, 200, 60), t)
    pts = {int(k): (int(v["x"]), int(v["y"])) for k, v in keypoints.items()
           if isinstance(v, dict) and "x" in v and "y" in v}
    for a, b in KEYPOINT_EDGES:
        if a in pts and b in pts:
            cv2.line(img, pts[a], pts[b], (230, 60, 50), t)
    for p in pts.values():
        cv2.circle(img, p, 2 * t, (230, 60, 50), -1)
    return img


def clip_figure(clip: pd.Series, n: int = 4):
    """A row of a clip's source frames with its labelled box and keypoints."""
    frames = annotated_frames(clip, n)
    fig, axes = plt.subplots(1, len(frames), figsize=(2.6 * len(frames), 2.6), squeeze=False)
    for ax, (number, img) in zip(axes[0], frames):
        ax.imshow(img)
        ax.set_title(f"frame {number}", fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{clip['id']}: {clip['label']} ({clip['split']}, emotion {clip['emotion']})", fontsize=9)
    return save(fig)


def best_model(study: str = "default", target: str = "action", results_dir=None) -> str:
    """The evaluation's best model, chosen on validation (evaluation/decisions.json)."""
    import json
    path = paths.target_dir(study, target, results_dir) / "evaluation" / "decisions.json"
    if not path.is_file():
        raise FileNotFoundError(f"no evaluation decisions at {path}: run evaluate first (or name a model)")
    return str(json.loads(path.read_text())["best"])


def predictions(study: str, model: str, seed: int = 0, target: str = "action", results_dir=None,
                trial: int = 0) -> pd.DataFrame:
    """A run's test clips: true and predicted class, the predicted class's score, correct or not.
    With cross-validation folds (seed<k>_fold<i>), every fold's test clips: each clip once;
    ``trial``: the run of that trial (seed<k>_trial<t>)."""
    run = paths.run_dir(study, model, seed, target, results_dir, trial=trial)
    runs = [run] if run.is_dir() else sorted(run.parent.glob(f"{run.name}_fold*"))
    if not runs or not all((r / "test_scores.csv").is_file() for r in runs):
        raise FileNotFoundError(f"{run} has no test_scores.csv: train {model} (seed {seed}) first")
    df = pd.concat([pd.read_csv(r / "test_scores.csv") for r in runs], ignore_index=True)
    class_cols = df.columns[3:]
    df["score"] = df[class_cols].max(axis=1)
    df["correct"] = df["label"] == df["pred"]
    return df[["id", "label", "pred", "score", "correct"]]


def common_confusions(preds: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The k commonest (true, predicted) mistakes, with their count and the most confident example."""
    wrong = preds[preds["label"] != preds["pred"]]
    if wrong.empty:
        return pd.DataFrame(columns=["label", "pred", "n_clips", "example", "example_score"])
    rows = []
    for (lab, pred), g in wrong.groupby(["label", "pred"], sort=False):
        top = g.sort_values("score", ascending=False, kind="stable").iloc[0]
        rows.append({"label": lab, "pred": pred, "n_clips": len(g), "example": top["id"],
                     "example_score": float(top["score"])})
    return (pd.DataFrame(rows).sort_values(["n_clips", "label", "pred"], ascending=[False, True, True], kind="stable")
            .head(k).reset_index(drop=True))


def cached_frames(data_dir: Path, clip_id: str, n: int = 4) -> list[np.ndarray]:
    """n evenly spaced frames of a clip from the prepared cache (what the models saw), RGB."""
    files = sorted((Path(data_dir) / "frames" / clip_id).glob("img_*.jpg"))
    if not files:
        raise FileNotFoundError(f"clip {clip_id!r} has no cached frames under {data_dir}/frames")
    pick = np.linspace(0, len(files) - 1, min(n, len(files))).round().astype(int)
    return [cv2.cvtColor(cv2.imread(str(files[i])), cv2.COLOR_BGR2RGB) for i in pick]


def gallery(data_dir: Path, rows: pd.DataFrame, out: Path | None = None, n_frames: int = 4, id_col: str = "id"):
    """One row of cached frames per clip, titled 'true -> predicted'. Saved as PNG when out is given."""
    if rows.empty:
        return None
    fig, axes = plt.subplots(len(rows), n_frames, figsize=(1.5 * n_frames, 1.6 * len(rows)), squeeze=False)
    for r, row in enumerate(rows.itertuples()):
        frames = cached_frames(data_dir, getattr(row, id_col), n_frames)
        for c in range(n_frames):
            axes[r][c].axis("off")
            if c < len(frames):
                axes[r][c].imshow(frames[c])
        many = f" ({row.n_clips} clips)" if "n_clips" in rows else ""
        axes[r][0].set_title(f"{row.label} → {row.pred}{many}", fontsize=7, loc="left")
    return save(fig, out)
