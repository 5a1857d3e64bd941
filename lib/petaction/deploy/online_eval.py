"""Online TSM on the study's own test clips: its accuracy at each clip's end, against the
offline TSM on the same clips.

``evaluate(run)`` streams every clip of the run's test split (the split list its training
tested on, frames as prepare wrote them) frame by frame through ``infer``'s online path
(:class:`infer.OnlineRecogniser`, :func:`infer.stream_online`: each frame prepared as the
windowed path prepares it, then the run's test pipeline for one frame), flushes the stream at
the clip's end, and compares the online prediction with the offline model's (the argmax of
the run's ``test_scores.npz``, whose clips are checked to be the split's, in its order) and
with the label.

Which online prediction: the exact shift at the gap equal to the test sampling's spacing
(what benchmarks/online.py documents as seeing the same frames as a window's test sampling),
about the clip's last test-sampled frame: its consensus averages that frame and the frames
``gap``, ``2 gap``, ... before it, the very frames mmaction2's SampleFrames picks in test mode
when the clip's frame count spaces them evenly (``same_frames`` per clip). When moreover no
other frame of the clip lies on that frame's interleaved stream (``exact_expected``), the
online scores equal the offline model's (online.py's equivalence; ``max_abs_diff`` checks it
on every such clip). The prediction about the clip's very last frame (the newest one a live
stream has when the clip ends) is kept too (``online_last_frame_pred``).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import paths
from ..evaluation import stats
from ..training import runfolder
from . import infer
from .online import check_tsm

DETECT_EVERY = 5         # the detector pass: the pet detector on every 5th model frame, its box held


@dataclass
class TestClips:
    """The run's test split: clip ids, frame counts and labels in the split list's order, and
    where their frames are."""
    split_file: Path
    frames_dir: Path
    filename_tmpl: str
    start_index: int
    rows: list            # (clip id, frames, label)

    def frame_paths(self, clip: str, n: int) -> list[Path]:
        return [self.frames_dir / clip / self.filename_tmpl.format(self.start_index + i) for i in range(n)]


def test_clips(run: Path, cfg) -> TestClips:
    """The test split the run's training tested on (its config's test list, read with
    runfolder.read_split), or one clear error when the list is gone."""
    ds = cfg.test_dataloader.dataset
    ann = Path(ds.ann_file)
    p = json.loads((run / "params.json").read_text()) if (run / "params.json").is_file() else {}
    if not ann.is_file():
        raise FileNotFoundError(f"{run}: its test split list {ann} is gone: prepare the study's data again "
                                f"(the run's config.py names it)")
    rows = runfolder.read_split(ann.parent, "test", int(p.get("fold", 0)), int(p.get("trial", 0)))
    expected = ann.parent / paths.split_file("test", int(p.get("fold", 0)), int(p.get("trial", 0)))
    if expected.resolve() != ann.resolve():
        raise ValueError(f"{run}: config.py tests on {ann.name}, params.json's fold/trial name {expected.name}: "
                         f"the run folder is inconsistent; retrain it")
    return TestClips(ann, Path(ds.data_prefix["img"]), ds.get("filename_tmpl", "img_{:05}.jpg"),
                     int(ds.get("start_index", 1)), rows)


def offline_scores(run: Path, clips: TestClips) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) of the run's test_scores.npz, after checking its clips are the test
    split's, in the split's order."""
    f = run / "test_scores.npz"
    if not f.is_file():
        raise FileNotFoundError(f"{f} is missing: the run has not been tested (train it to the end)")
    with np.load(f) as z:
        ids, labels, scores = [str(i) for i in z["ids"]], z["labels"], z["scores"]
    split_ids = [c for c, _, _ in clips.rows]
    if ids != split_ids:
        diff = next((i for i, (a, b) in enumerate(zip(ids, split_ids)) if a != b), min(len(ids), len(split_ids)))
        raise ValueError(f"{f}: its clip ids are not the test split's ({clips.split_file}): "
                         f"{len(ids)} vs {len(split_ids)} clips, first difference at row {diff} "
                         f"({ids[diff] if diff < len(ids) else '-'} vs "
                         f"{split_ids[diff] if diff < len(split_ids) else '-'}): the scores come from another "
                         f"split; re-run the run's test on its own split (retrain the run)")
    if not np.array_equal(labels, [lab for _, _, lab in clips.rows]):
        raise ValueError(f"{f}: its labels differ from {clips.split_file}'s: retrain the run on this split")
    return scores, labels


def sampled_indices(rec: infer.Recogniser, frames: int) -> np.ndarray:
    """The frames mmaction2's SampleFrames (the run's test pipeline's first step, test mode)
    picks from a clip of ``frames`` frames, 0-based."""
    from mmengine.dataset import Compose
    step = Compose([rec.model.cfg.test_dataloader.dataset.pipeline[0]])
    return np.asarray(step(dict(total_frames=frames, start_index=0))["frame_inds"], dtype=int)


def test_spacing(rec: infer.Recogniser) -> int:
    """The test sampling's spacing over a window of the run's clip length (its training
    clips' median frame count), as benchmarks/online.py takes it for the online variant that
    sees a window's test-sampled frames."""
    window = infer.train_window_frames(rec.model.cfg)
    if window is None:
        raise FileNotFoundError(f"{rec.run}: the training list is gone, so the clip length is unknown: pass gap")
    inds = sampled_indices(rec, window)
    return int(np.median(np.diff(inds))) if len(inds) > 1 else 1


def seen_frames(at: int, gap: int, n: int) -> list[int]:
    """The frames the online consensus about frame ``at`` averages (none before the first)."""
    return sorted(at - k * gap for k in range(n) if at - k * gap >= 0)


def stream_clip(orec: infer.OnlineRecogniser, paths: list[Path], localiser=None,
                detect_every: int = 1) -> tuple[dict, float, dict]:
    """One clip's frames (JPEGs, read as they are pushed) through infer's online stream and
    its flush: ({frame: scores}, wall seconds, the stages' seconds)."""
    import cv2
    from ..data import video

    def images():
        for p in paths:
            img = cv2.imread(str(p))
            if img is None:
                raise video.VideoError(f"{p}: cannot be read (missing or not a JPG): prepare the study's data again")
            yield img
    stepper = orec.stepper
    stepper.reset()
    side = orec.rec.short_side
    stepper.start(orec.tensor(np.zeros((side, side, 3), np.uint8), None))   # caches: outside the timing
    stages = infer.Stages()
    t0 = time.perf_counter()
    out = {w.end_frame - 1: w.scores for w in
           infer.stream_online(video.from_iterable(images(), orec.fps), orec, localiser or infer.WholeFrame(),
                               detect_every, stages=stages)}
    wall = time.perf_counter() - t0
    if sorted(out) != list(range(len(paths))):
        raise RuntimeError(f"{paths[0].parent}: {len(out)} online predictions for {len(paths)} frames")
    return out, wall, {k: round(v, 4) for k, v in stages.s.items()}


def clip_row(clip: str, label: int, offline: np.ndarray, online: dict, sampled: np.ndarray, gap: int, n: int,
             wall: float) -> dict:
    frames = len(online)
    at = int(sampled.max())
    seen = seen_frames(at, gap, n)
    same = seen == sorted(set(int(i) for i in sampled)) and len(set(sampled.tolist())) == len(sampled)
    # no other frame on the interleaved stream of frame `at`: the stream is the offline clip itself
    exact = same and seen[0] - gap < 0 and at + gap > frames - 1
    s = online[at]
    return {"id": clip, "label": int(label), "frames": frames, "sampled": sampled.tolist(), "at_frame": at,
            "same_frames": bool(same), "exact_expected": bool(exact),
            "offline_pred": int(offline.argmax()), "online_pred": int(s.argmax()),
            "online_last_frame_pred": int(online[frames - 1].argmax()),
            "max_abs_diff": float(np.abs(s - offline).max()), "wall_s": round(wall, 4),
            "predictions_per_s": round(frames / wall, 3) if wall > 0 else None}


def summarise(rows: list[dict]) -> dict:
    """Online and offline top-1 on the same clips, their paired difference (percentile
    bootstrap of the per-clip differences, scipy.stats.bootstrap; exact McNemar), and the
    agreement of the two predictions (Wilson interval, statsmodels)."""
    lab = np.array([r["label"] for r in rows])
    on, off = np.array([r["online_pred"] for r in rows]) == lab, np.array([r["offline_pred"] for r in rows]) == lab
    last = np.array([r["online_last_frame_pred"] for r in rows]) == lab
    agree = sum(r["online_pred"] == r["offline_pred"] for r in rows)
    n = len(rows)
    lo, hi = stats.bootstrap_ci(on.astype(float) - off.astype(float))

    def top1(correct):
        ci = stats.wilson_ci(int(correct.sum()), n)
        return {"top1": float(correct.mean()), "ci_low": ci[0], "ci_high": ci[1]}
    exact = [r["max_abs_diff"] for r in rows if r["exact_expected"]]
    return {"clips": n, "online": top1(on), "offline": top1(off), "online_last_frame": top1(last),
            "difference": {"online_minus_offline": float(on.mean() - off.mean()), "ci_low": lo, "ci_high": hi,
                           "interval": "95% paired percentile bootstrap over clips (scipy.stats.bootstrap)",
                           "mcnemar_p": stats.mcnemar(on, off)["p_value"]},
            "agreement": {"rate": agree / n, **dict(zip(("ci_low", "ci_high"), stats.wilson_ci(agree, n))),
                          "interval": "95% Wilson (statsmodels proportion_confint)"},
            "same_frames_clips": sum(r["same_frames"] for r in rows),
            "exact_expected_clips": len(exact), "max_abs_diff_exact_expected": max(exact) if exact else None,
            "predictions_per_s_median": float(np.median([r["predictions_per_s"] for r in rows]))}


def evaluate(run: Path, gap: int | None = None, backend: str = "torch", detector: bool = True,
             max_clips: int | None = None, log=lambda *_: None) -> dict:
    """Every test clip of a trained TSM run, online against offline: {"variant", "summary",
    "rows" (one per test clip, in the split's order), "detector"}. ``gap`` None: the test
    sampling's spacing. ``detector``: when the study has a trained pet detector, a second pass
    runs it every :data:`DETECT_EVERY` frames (infer's localiser) for predictions per second."""
    run = Path(run)
    rec = infer.Recogniser(run, windowed=False)
    try:
        check_tsm(rec.model)
    except ValueError as e:
        raise ValueError(f"{run}: {str(e).split(': drop')[0]}: pass a TSM-family run folder "
                         f"(results/<study>/models/tsm/seed0)") from None
    clips = test_clips(run, rec.model.cfg)
    offline, _ = offline_scores(run, clips)
    g = gap or test_spacing(rec)
    orec = infer.OnlineRecogniser(rec, "exact", g, backend)
    n = orec.net.num_segments
    todo = list(enumerate(clips.rows))[:max_clips]
    rows = []
    for i, (clip, frames, label) in todo:
        online, wall, _ = stream_clip(orec, clips.frame_paths(clip, frames))
        rows.append(clip_row(clip, label, offline[i], online, sampled_indices(rec, frames), g, n, wall))
        log(f"{i + 1}/{len(todo)} {clip}: online {rows[-1]['online_pred']} offline {rows[-1]['offline_pred']} "
            f"label {label}")
    variant = {"shift": "exact", "gap": g, "num_segments": n, "delay_frames": orec.net.delay,
               "prediction_about": "the clip's last test-sampled frame, after the clip's end (flushed)",
               "why": "the exact shift at the test sampling's spacing sees the frames the offline test sampling "
                      "picks (benchmarks/online.py); it equals the offline model where exact_expected"}
    det = {"available": False, "reason": f"no trained pet detector at {infer.detector_dir(run)}"}
    if detector and (infer.detector_dir(run) / "metrics.json").is_file():
        loc = infer.make_localiser("detector", None, run)
        rates = []
        for i, (clip, frames, label) in todo:
            _, wall, _ = stream_clip(orec, clips.frame_paths(clip, frames), loc, DETECT_EVERY)
            rates.append(frames / wall)
        det = {"available": True, "localiser": getattr(loc, "name", type(loc).__name__), "detect_every": DETECT_EVERY,
               "predictions_per_s_median": float(np.median(rates)),
               "note": "timing only: the detector runs on the prepared (already cropped) test frames"}
    elif not detector:
        det = {"available": False, "reason": "not asked for"}
    return {"run": str(run), "split": str(clips.split_file), "backend": backend, "variant": variant,
            "summary": summarise(rows), "detector": det, "rows": rows,
            "note": "predictions/s per clip: its frames over the wall time of its stream (JPEG reads, frame "
                    "preparation, the online steps and the flush's delay steps); the median over clips"}
