"""What infer writes: the smoothed label per window (timeline.json / .csv), the timeline chart,
and the annotated copy of the video with the newest prediction on each frame.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from ..data import video


def smooth(scores: list[np.ndarray], n: int) -> list[int]:
    """Causal majority vote of the top-1 class over the last ``n`` windows (n=1: no smoothing);
    a tie goes to the tied class with the larger summed score over those windows."""
    out = []
    for i in range(len(scores)):
        recent = scores[max(0, i - n + 1): i + 1]
        votes = Counter(int(s.argmax()) for s in recent)
        total = np.sum(recent, axis=0)
        out.append(max(votes, key=lambda c: (votes[c], total[c])))
    return out


def topk(scores: np.ndarray, classes: list[str], k: int) -> list[dict]:
    order = np.argsort(-scores)[:k]
    return [{"label": classes[i], "score": round(float(scores[i]), 6)} for i in order]


def timeline_rows(windows: list, classes: list[str], k: int, smooth_n: int, frame_box) -> list[dict]:
    labels = smooth([w.scores for w in windows], smooth_n)
    return [{"index": w.index, "start_s": round(w.start_s, 3), "end_s": round(w.end_s, 3),
             "label": classes[lab], "label_score": round(float(w.scores[lab]), 6),
             "topk": topk(w.scores, classes, k), "box": w.box or frame_box, "padded": w.padded,
             "latency_ms": round(w.latency_ms, 3)}
            for w, lab in zip(windows, labels)]


def write_csv(rows: list[dict], path: Path, k: int) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.writer(f)
        wr.writerow(["index", "start_s", "end_s", "label", "label_score",
                     *[c for i in range(1, k + 1) for c in (f"top{i}", f"top{i}_score")],
                     "box_x", "box_y", "box_w", "box_h", "padded", "latency_ms"])
        for r in rows:
            tk = [v for t in r["topk"] for v in (t["label"], t["score"])]
            tk += [""] * (2 * k - len(tk))
            wr.writerow([r["index"], r["start_s"], r["end_s"], r["label"], r["label_score"], *tk,
                         *[round(v, 1) for v in r["box"]], r["padded"], r["latency_ms"]])


def timeline_chart(rows: list[dict], classes: list[str], title: str = "", per_frame: bool = False):
    """Behaviour over time: the smoothed label as a bar from each window's start to the next
    window's (windows overlap, so the bars tile time without stacking), the raw top-1 as dots
    at the window centres (size: its score). ``per_frame`` (online mode, a prediction per
    model frame): each bar spans the frame the prediction is about, dots at its time."""
    from matplotlib.figure import Figure    # no pyplot: leaves a notebook's backend alone, and runs headless
    used = sorted({r["label"] for r in rows} | {r["topk"][0]["label"] for r in rows}, key=classes.index)
    y = {c: i for i, c in enumerate(used)}
    fig = Figure(figsize=(8, 1.2 + 0.35 * len(used)))
    ax = fig.subplots()
    if per_frame:      # the frame a prediction is about: from the previous one's end to its own
        spans = [(a["end_s"], b["end_s"]) for a, b in zip([{"end_s": 0.0}] + rows[:-1], rows)]
    else:
        spans = list(zip([r["start_s"] for r in rows], [r["start_s"] for r in rows[1:]] + [rows[-1]["end_s"]]))
    for r, (start, end) in zip(rows, spans):
        ax.barh(y[r["label"]], end - start, left=start, height=0.5, color="C0", alpha=0.6)
        top = r["topk"][0]
        at = (start + end) / 2 if per_frame else (r["start_s"] + r["end_s"]) / 2
        ax.scatter(at, y[top["label"]], s=20 + 80 * top["score"], color="C1", zorder=3)
    ax.set_yticks(range(len(used)), used)
    ax.set_xlabel("time (s)")
    where = "at the frame each prediction is about" if per_frame else "at window centres"
    ax.set_title(title or f"behaviour over time (bars: smoothed label; dots: raw top-1 {where}, size = score)",
                 fontsize=9)
    fig.tight_layout()
    return fig


class Annotator:
    """Writes the annotated copy as frames pass: each frame shows the newest prediction made
    from frames up to it (what a live display shows), and the box the model looked at."""

    def __init__(self, path: Path, fps: float, note: str):
        self.path, self.fps, self.note = path, fps, note
        self.writer, self.label = None, None

    def frame(self, frame: video.Frame, box) -> None:
        import cv2
        img = frame.image.copy()
        h, w = img.shape[:2]
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise RuntimeError(f"OpenCV cannot write {self.path} (no mp4v encoder)")
        x, y, bw, bh = (int(v) for v in (box if box is not None else (0, 0, w, h)))
        cv2.rectangle(img, (x, y), (x + bw - 1, y + bh - 1), (0, 255, 0), 2)
        text = self.label or "waiting for the first window"
        scale, pad = max(0.4, h / 600), 4
        y0 = y + pad
        for line in (text, self.note):
            (tw, th), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            cv2.rectangle(img, (x + pad, y0), (x + 2 * pad + tw, y0 + th + base + pad), (0, 0, 0), -1)
            cv2.putText(img, line, (x + pad + pad // 2, y0 + th + pad // 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
            y0 += th + base + 2 * pad
        self.writer.write(img)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
