"""Run a trained recogniser over a video: sliding windows, smoothing, timeline, annotated copy.

    python -m petaction infer VIDEO --run results/default/models/tsm/seed0 --out DIR \\
        [--stride 1] [--smooth 3] [--topk 3] [--backend torch|onnx]
        [--online [--shift exact|causal] [--gap 1] [--detect-every 1]]

``--online`` (TSM family only): one prediction per model frame from online.py's streaming
TSM (one frame through the network per step, shifted channels from per-block caches)
instead of a window per stride; see docs/realtime.md.

VIDEO is an mp4, an AI-Hub frame folder, or a webcam index. Frames stream through a bounded
buffer (one window of model frames), so memory does not grow with the video. The model sees
frames at the rate its training clips were cut at (``cost.FRAME_MS``), prepared as prepare
did (a square crop around the pet box, or the whole frame when nothing localises the pet),
then mmaction2's own test pipeline of the run's ``config.py`` (frame decoding swapped for
``ArrayDecode``) and ``inference_recognizer``, or the same pipeline and the ONNX export.

DIR gets timeline.json, timeline.csv, timeline.png and annotated.mp4, written into a
temporary folder beside DIR and renamed at the end: a failed run leaves no DIR.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..training.detector import DetectorLocaliser  # noqa: F401  (infer.DetectorLocaliser)
from ..data import crop, video
from . import export
from ..evaluation.cost import FRAME_MS
from ..data.prepare import DEFAULTS as PREPARE_DEFAULTS
# where the pet is (localise.py) and what a run writes (timeline.py), by the names callers use (infer.X)
from .localise import WHOLE_FRAME, LabelBoxes, WholeFrame, default_localiser, detector_dir, make_localiser  # noqa: F401
from .timeline import Annotator, smooth, timeline_chart, timeline_rows, topk, write_csv  # noqa: F401


# ---- windowing ---------------------------------------------------------------------------------

def window_spans(n: int, length: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) model-frame spans of the sliding windows over ``n`` frames.

    Windows start every ``stride`` frames; when the last one stops short of the end, one more
    window ends at the last frame, so the end of the video is always covered. A video shorter
    than one window gives one window over all of it (the test pipeline pads it)."""
    if n <= 0:
        return []
    if n <= length:
        return [(0, n)]
    spans = [(s, s + length) for s in range(0, n - length + 1, stride)]
    if spans[-1][1] < n:
        spans.append((n - length, n))
    return spans


# ---- the recogniser ----------------------------------------------------------------------------

def array_pipeline(test_pipeline: list) -> list:
    """The run's test pipeline reading frames from an array instead of image files."""
    steps = [dict(s) for s in test_pipeline]
    decode = [i for i, s in enumerate(steps) if s["type"].endswith("Decode")]
    if len(decode) != 1:
        raise ValueError(f"expected one decode step in the run's test pipeline, got {[s['type'] for s in steps]}")
    steps[decode[0]] = dict(type="ArrayDecode")
    return steps


def data_params(cfg) -> dict:
    """How the run's training frames were made (prepare.json beside its data lists)."""
    ann = Path(cfg.test_dataloader.dataset.ann_file)
    f = ann.parent / "prepare.json"
    return json.loads(f.read_text())["params"] if f.is_file() else {}


def train_window_frames(cfg) -> int | None:
    """Median frame count of the training clips: what a segment model's samples spread over."""
    ann = Path(cfg.train_dataloader.dataset.ann_file)
    if not ann.is_file():
        return None
    counts = [int(line.rsplit(maxsplit=2)[1]) for line in ann.read_text().splitlines() if line.strip()]
    return int(np.median(counts)) if counts else None


@dataclass
class Recogniser:
    run: Path
    backend: str = "torch"            # "torch" (inference_recognizer) or "onnx" (ONNX Runtime)
    onnx_path: Path | None = None     # exported model; exported into a temp folder when None
    window_s: float | None = None     # None: the run's own clip length
    windowed: bool = True             # False (online mode): no window length needed
    model: object = field(init=False, repr=False)

    def __post_init__(self):
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope
        if self.backend not in ("torch", "onnx"):
            raise ValueError(f"backend {self.backend!r}: choose 'torch' or 'onnx'")
        self.run = Path(self.run)
        self.model = export.load_recognizer(self.run)
        cfg = self.model.cfg
        init_default_scope("mmaction")
        self.classes = list(cfg.dataset_meta["classes"])
        self.pipeline = Compose(array_pipeline(cfg.test_dataloader.dataset.pipeline))
        self.fps = 1000.0 / FRAME_MS
        prep = data_params(cfg)
        resize = [s for s in cfg.test_dataloader.dataset.pipeline if s["type"] == "Resize"]
        self.short_side = int(prep.get("short_side") or resize[0]["scale"][-1])
        self.margin = float(prep.get("margin", PREPARE_DEFAULTS["margin"]))
        self.crop = bool(prep.get("crop", True))     # False: the study trained on whole frames
        self.window = self._window_frames(cfg) if self.windowed else None
        self.sess = None
        if self.backend == "onnx":
            self._tmp = None
            if self.onnx_path is None:
                self._tmp = tempfile.TemporaryDirectory()
                self.onnx_path = export.export(self.run, Path(self._tmp.name) / "model.onnx", self.model)
            self.sess = export.session(self.onnx_path)

    def _window_frames(self, cfg) -> int:
        if self.window_s:
            return max(1, round(self.window_s * self.fps))
        sample = cfg.test_dataloader.dataset.pipeline[0]
        if sample["clip_len"] > 1:       # a 3D model's dense clip
            return sample["clip_len"] * sample["frame_interval"]
        n = train_window_frames(cfg)
        if n is None:
            raise FileNotFoundError(f"{self.run}: the training lists are gone, so the clip length is unknown: "
                                    f"pass --window SECONDS")
        return n

    @property
    def clip_frames(self) -> int:
        """The distinct frames one clip of this model samples (a 3D model's clip_len, a segment
        model's segments): from a shorter video a clip could only repeat frames."""
        sample = self.model.cfg.test_dataloader.dataset.pipeline[0]
        return int(sample.get("clip_len", 1)) if sample.get("clip_len", 1) > 1 else int(sample.get("num_clips", 1))

    def prepare(self, image: np.ndarray, box) -> np.ndarray:
        """A BGR frame as the training frames were cut: square crop around the box (or the
        whole frame), short side resized; RGB as mmaction2's frame decoding yields."""
        if box is None or not self.crop:
            out, _ = crop.resize_short_side(image, self.short_side)
        else:
            h, w = image.shape[:2]
            out = crop.crop_resize(image, crop.square_crop_box(box, w, h, self.margin), self.short_side)
        return np.ascontiguousarray(out[:, :, ::-1])

    def inputs(self, frames: list[np.ndarray]) -> dict:
        return dict(array=np.stack(frames), total_frames=len(frames), start_index=0, modality="RGB", label=-1)

    def scores(self, frames: list[np.ndarray]) -> np.ndarray:
        """Class scores of one window of prepared frames (padded by the pipeline when short)."""
        if self.backend == "torch":
            from mmaction.apis import inference_recognizer
            return inference_recognizer(self.model, self.inputs(frames), self.pipeline).pred_score.numpy()
        packed = self.pipeline(self.inputs(frames))["inputs"][None]
        return export.run_session(self.sess, packed)[0]


# ---- streaming -------------------------------------------------------------------------------

@dataclass
class Window:
    index: int
    start_frame: int       # model frames (at the training rate), [start, end)
    end_frame: int
    start_s: float
    end_s: float
    scores: np.ndarray
    box: list | None       # pet box of the window's last frame, source pixels (x, y, w, h)
    padded: bool
    latency_ms: float      # from the arrival of its last frame to its scores


def stream(source: video.Source, rec: Recogniser, stride_s: float = 1.0, localiser=None,
           on_frame: Callable | None = None, max_seconds: float | None = None,
           stages: Stages | None = None, decode_all: bool = True) -> Iterator[Window]:
    """Windows as the frames arrive. Only one window of prepared model frames is held.

    ``on_frame(frame, box)`` sees every source frame (the annotated copy is written from it);
    ``stages`` sums the time of each stage; ``decode_all`` False: only the frames the model
    sees are decoded (the others reach ``on_frame`` with image None)."""
    localiser, stages = localiser or WholeFrame(), stages if stages is not None else Stages()
    stride = max(1, round(stride_s * rec.fps))
    buf: deque = deque(maxlen=rec.window)       # (model frame number, t, prepared image, box)
    n, last_end, count = 0, 0, 0

    def emit(start, end, padded):
        nonlocal count
        items = list(buf)[-(end - start):]
        w = Window(count, start, end, items[0][1], items[-1][1] + 1.0 / rec.fps,
                   stages.timed("recognise", rec.scores, [it[2] for it in items]), items[-1][3], padded,
                   1000.0 * (time.perf_counter() - arrived))
        count += 1
        return w

    box = None
    for frame, take in video.resample(stages.frames(source.frames), rec.fps, None if decode_all else source):
        arrived = time.perf_counter()
        if max_seconds is not None and frame.t > max_seconds:
            break
        if take:      # localise only the frames the model sees; the others show the latest box
            box = stages.timed("localise", localiser, frame)
        if on_frame is not None:
            stages.timed("write", on_frame, frame, box)
        if not take:
            continue
        buf.append((n, frame.t, stages.timed("recognise", rec.prepare, frame.image, box),
                    list(map(float, box)) if box is not None else None))
        n += 1
        if n >= rec.window and (n - rec.window) % stride == 0:
            last_end = n
            yield emit(n - rec.window, n, False)
    arrived = time.perf_counter()
    if 0 < n < rec.window:
        yield emit(0, n, True)
    elif n >= rec.window and n > last_end:      # the tail the stride stepped over
        yield emit(n - rec.window, n, False)


class Stages:
    """Wall time of a stream's stages, summed: decode (reading frames from the source),
    localise (the pet box), recognise (frame preparation and the network), write (the
    annotated copy)."""
    NAMES = ("decode", "localise", "recognise", "write")

    def __init__(self):
        self.s = dict.fromkeys(self.NAMES, 0.0)
        self.calls = Counter()

    def timed(self, name: str, fn, *args):
        t = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.s[name] += time.perf_counter() - t
            self.calls[name] += 1

    def frames(self, frames: Iterator) -> Iterator:
        """A frame iterator whose decoding time (the time each next() takes) is counted."""
        it = iter(frames)
        while True:
            t = time.perf_counter()
            try:
                f = next(it)
            except StopIteration:
                self.s["decode"] += time.perf_counter() - t
                return
            self.s["decode"] += time.perf_counter() - t
            self.calls["decode"] += 1
            yield f

    def summary(self, wall_s: float) -> dict:
        out = {n: {"s": round(v, 3), "share": round(v / wall_s, 3) if wall_s > 0 else None,
                   "calls": self.calls[n]} for n, v in self.s.items()}
        other = wall_s - sum(self.s.values())
        out["other"] = {"s": round(other, 3), "share": round(other / wall_s, 3) if wall_s > 0 else None}
        return out


@dataclass
class OnlineRecogniser:
    """--online: a TSM run's recogniser one frame at a time (online.py), frames prepared as
    the windowed path prepares them, then the run's test pipeline for a single frame."""
    rec: Recogniser                  # loaded with backend torch; its model is swapped in place
    mode: str = "exact"
    gap: int = 1
    backend: str = "torch"
    onnx_path: Path | None = None

    def __post_init__(self):
        from mmengine.dataset import Compose
        from . import online
        self.net = online.OnlineTSM(self.rec.model, self.mode, self.gap)
        self.pipeline = Compose(online.frame_pipeline(self.rec.model.cfg.test_dataloader.dataset.pipeline))
        self.stepper = online.Stepper(self.net, self.backend, self.onnx_path)
        self._inputs = online.frame_inputs
        self.fps, self.classes = self.rec.fps, self.rec.classes
        # caches (and the ONNX export) before any frame arrives: not inside the stream's timing
        side = self.rec.short_side
        self.stepper.start(self.tensor(np.zeros((side, side, 3), np.uint8), None))

    def tensor(self, image: np.ndarray, box):
        return self.pipeline(self._inputs(self.rec.prepare(image, box)))["inputs"]


def stream_online(source: video.Source, orec: OnlineRecogniser, localiser=None, detect_every: int = 1,
                  on_frame: Callable | None = None, max_seconds: float | None = None,
                  stages: Stages | None = None, decode_all: bool = True) -> Iterator[Window]:
    """One prediction per model frame, as the frames arrive: the prediction about model frame
    tau (its scores: the consensus of frames tau-(segments-1)*gap .. tau) comes out when
    frame tau + delay has been pushed (exact mode; causal: delay 0); the stream's end is
    flushed so every model frame gets one. The pet detector runs on every
    ``detect_every``-th model frame, its box held in between. Memory: the step's fixed caches
    and the times and boxes of the last span + delay frames."""
    localiser, stages = localiser or WholeFrame(), stages if stages is not None else Stages()
    net, stepper = orec.net, orec.stepper
    reach = (net.num_segments - 1) * net.gap
    seen: deque = deque(maxlen=net.span + net.delay + 1)      # (model frame number, t, box)
    n, count, box = 0, 0, None

    def emit(out, arrived):
        tau, scores = out
        base = seen[0][0]
        first = max(0, tau - reach, base)
        w = Window(count, first, tau + 1, seen[first - base][1], seen[tau - base][1] + 1.0 / orec.fps,
                   scores, seen[tau - base][2], tau < reach, 1000.0 * (time.perf_counter() - arrived))
        return w

    for frame, take in video.resample(stages.frames(source.frames), orec.fps, None if decode_all else source):
        arrived = time.perf_counter()
        if max_seconds is not None and frame.t > max_seconds:
            break
        if take and n % detect_every == 0:
            box = stages.timed("localise", localiser, frame)
        if on_frame is not None:
            stages.timed("write", on_frame, frame, box)
        if not take:
            continue
        seen.append((n, frame.t, list(map(float, box)) if box is not None else None))
        out = stages.timed("recognise", lambda: stepper.push(orec.tensor(frame.image, box)))
        n += 1
        if out is not None:
            yield emit(out, arrived)
            count += 1
    flushing = stepper.flush()
    while True:
        arrived = time.perf_counter()
        out = stages.timed("recognise", next, flushing, None)
        if out is None:
            return
        yield emit(out, arrived)
        count += 1


def stream_stats(windows: list[Window], wall_s: float, video_s: float) -> dict:
    lat = [w.latency_ms for w in windows]
    rate = round(len(windows) / wall_s, 3) if wall_s > 0 else None
    return {"windows": len(windows), "wall_s": round(wall_s, 3), "windows_per_s": rate,
            "predictions": len(windows), "predictions_per_s": rate,
            "latency_ms_median": round(float(np.median(lat)), 2) if lat else None,
            "latency_ms_p90": round(float(np.percentile(lat, 90)), 2) if lat else None,
            "video_s": round(video_s, 3), "realtime_factor": round(video_s / wall_s, 3) if wall_s > 0 else None}


@dataclass
class Online:
    """--online settings: the online step's shift mode and gap (online.py), and how often the
    pet detector runs (every ``detect_every`` model frames; the box is held in between)."""
    shift: str = "exact"
    gap: int = 1
    detect_every: int = 1


def infer(video_spec, run, out, stride_s: float = 1.0, smooth_n: int = 3, k: int = 3, backend: str = "torch",
          onnx_path=None, window_s: float | None = None, localiser=None, max_seconds: float | None = None,
          annotate: bool = True, log: Callable = print, online: Online | None = None) -> dict:
    """The whole `infer` verb; returns the timeline dict (also written to out/timeline.json).
    ``online``: one prediction per model frame from the online TSM step (TSM runs only)."""
    if stride_s <= 0 or smooth_n < 1 or k < 1:
        raise ValueError(f"stride ({stride_s}) must be > 0, smooth ({smooth_n}) and topk ({k}) >= 1")
    if online is not None and (online.gap < 1 or online.detect_every < 1):
        raise ValueError(f"--gap ({online.gap}) and --detect-every ({online.detect_every}) must be >= 1")
    source = video.open_source(video_spec)       # bad input fails here, before anything is written
    if online is None:
        rec = Recogniser(Path(run), backend, Path(onnx_path) if onnx_path else None, window_s)
    else:
        rec = OnlineRecogniser(Recogniser(Path(run), windowed=False), online.shift, online.gap, backend,
                               Path(onnx_path) if onnx_path else None)
    localiser = localiser or default_localiser(Path(run))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file: pass a folder (it is replaced as a whole)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        result = _infer_into(tmp, source, rec, stride_s, smooth_n, k, localiser, max_seconds, annotate, log, online)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def _until_interrupted(windows: Iterator[Window], live: bool) -> Iterator[Window]:
    """A live source (webcam) has no end: Ctrl-C ends it and the windows so far are kept."""
    try:
        yield from windows
    except KeyboardInterrupt:
        if not live:
            raise


def online_notes(orec: OnlineRecogniser, online: Online, localiser, stages: Stages) -> list[str]:
    net = orec.net
    notes = [f"online TSM, {net.mode} shift, gap {net.gap}: one prediction per model frame "
             f"({orec.fps:g}/s of video), each the consensus of {net.num_segments} frames {net.gap} apart"]
    if net.mode == "exact":
        notes.append(f"exact shift: equals the offline model over the stream; a prediction about a frame comes "
                     f"{net.delay} model frames ({net.delay / orec.fps:.2f} s) after it (one per shifted block x gap), "
                     f"the end flushed with the offline zero padding")
    else:
        notes.append("causal shift: no delay; the future fold is zero (a one-directional shift the weights "
                     "were not trained with, so scores differ from the windowed model's)")
    calls = stages.calls["localise"]
    if calls and not isinstance(localiser, WholeFrame):
        how = "every model frame" if online.detect_every == 1 else \
            f"every {online.detect_every} model frames, its box held in between"
        notes.append(f"pet localisation on {how}: {calls} calls, "
                     f"{1000 * stages.s['localise'] / calls:.1f} ms a call on average")
    return notes


def _infer_into(tmp, source, rec, stride_s, smooth_n, k, localiser, max_seconds, annotate, log, online=None) -> dict:
    notes = [f"pet localisation: {getattr(localiser, 'name', type(localiser).__name__)}"]
    ann = Annotator(tmp / "annotated.mp4", source.fps or rec.fps, notes[0]) if annotate else None
    size, stages = {}, Stages()

    def on_frame(frame, box):
        if frame.image is not None:      # without an annotated copy only the model's frames are decoded
            size.setdefault("wh", frame.image.shape[1::-1])
        size["t"] = frame.t
        if ann is not None:
            ann.frame(frame, box)

    if online is None:
        windows_it = stream(source, rec, stride_s, localiser, on_frame, max_seconds, stages, annotate)
    else:
        windows_it = stream_online(source, rec, localiser, online.detect_every, on_frame, max_seconds, stages,
                                   annotate)
    windows = []
    t0 = time.perf_counter()
    try:
        for w in _until_interrupted(windows_it, source.live):
            windows.append(w)
            lab = smooth([v.scores for v in windows[-smooth_n:]], smooth_n)[-1]   # causal: the last n only
            if ann is not None:
                ann.label = f"{rec.classes[lab]} {w.scores[lab]:.2f}"
            if online is None:
                log(f"{w.start_s:7.2f}-{w.end_s:7.2f} s  {rec.classes[lab]:<10} {w.scores[lab]:.2f}"
                    f"  (latency {w.latency_ms:.0f} ms)")
    finally:
        if ann is not None:
            ann.close()
    wall = time.perf_counter() - t0
    if not windows:
        raise video.VideoError(f"{source.name}: no frame could be read")
    seen, need = (windows[-1].end_frame if online is None else len(windows)), (rec if online is None else rec.rec).clip_frames
    if seen < need:
        raise video.VideoError(f"{source.name}: {seen} frame(s) at the model's {rec.fps:g} frames/s "
                               f"({seen / rec.fps:.2f} s), fewer than the {need} one clip of this model samples: "
                               "pass a longer video")
    if online is not None:
        notes += online_notes(rec, online, localiser, stages)
        if windows[0].padded:
            notes.append(f"the first {sum(w.padded for w in windows)} predictions average fewer than "
                         f"{rec.net.num_segments} frames (the stream's start)")
    elif windows[0].padded:
        notes.append(f"video shorter than one window ({windows[0].end_s:.2f} s < {rec.window / rec.fps:.2f} s): "
                     f"padded as in testing (the test pipeline loops its frames)")
    frame_box = [0.0, 0.0, *map(float, size["wh"])]
    rows = timeline_rows(windows, rec.classes, k, smooth_n, frame_box)
    stats = stream_stats(windows, wall, size["t"] + 1.0 / (source.fps or rec.fps))
    stats["includes"] = "decode + localise + recognise" + (" + writing annotated.mp4" if annotate else "")
    stats["stages"] = stages.summary(wall)
    result = {"video": source.name, "source_kind": source.kind, "run": str(rec.rec.run if online else rec.run),
              "backend": rec.backend, "mode": "online" if online else "windowed",
              "localiser": getattr(localiser, "name", type(localiser).__name__), "notes": notes,
              "model_fps": rec.fps, "smooth": smooth_n, "topk": k, "classes": rec.classes}
    if online is None:
        result.update(window_s=rec.window / rec.fps, stride_s=stride_s)
    else:
        net = rec.net
        result["online"] = {"shift": net.mode, "gap": net.gap, "num_segments": net.num_segments,
                            "shifted_blocks": len(net.blocks), "delay_frames": net.delay,
                            "delay_s": round(net.delay / rec.fps, 3), "detect_every": online.detect_every,
                            "steps": rec.stepper.t}      # frames pushed + the flush's steps (delay)
    result.update(stream=stats, windows=rows)
    (tmp / "timeline.json").write_text(json.dumps(result, indent=1))
    write_csv(rows, tmp / "timeline.csv", k)
    fig = timeline_chart(rows, rec.classes, per_frame=online is not None)
    fig.savefig(tmp / "timeline.png", dpi=110)
    for n in notes:
        log(f"note: {n}")
    unit = "predictions" if online else "windows"
    log(f"{stats['windows']} {unit} in {stats['wall_s']:.2f} s: {stats['windows_per_s']:.2f} {unit}/s "
        f"({stats['includes']}), latency median {stats['latency_ms_median']:.0f} ms, "
        f"p90 {stats['latency_ms_p90']:.0f} ms; {stats['realtime_factor']:.1f}x real time")
    return result
