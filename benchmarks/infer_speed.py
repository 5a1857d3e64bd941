"""Inference speed: ONNX Runtime vs mmaction2's inference_recognizer, and streaming throughput.

    .venv/bin/python benchmarks/infer_speed.py [--run results/default/models/tsm/seed0_trial1] [--threads 2]

1. Per window, on the same windows of the same video (the bundled sample mp4, prepared as
   `infer` prepares it): mmaction2's own ``inference_recognizer`` (test pipeline + test_step)
   against the same test pipeline + the ONNX export in ONNX Runtime, at the same thread count.
   Timed passes alternate between the two paths (a shared machine's load hits both alike);
   the ratio is the medians' (target >= 1.5x), with top-1 labels compared window by window.
2. End to end streaming (decode + localise + recognise, no annotated copy), stride 1 s, over the
   sample played ``--loops`` times back to back (about 32 s of 1280x720 video): windows
   per second, latency and the real-time factor (video seconds per wall second; >= 1 keeps up
   with one prediction per second), for both backends.
3. The parity check on every finished run of the study (max |ONNX Runtime - PyTorch| score).

Writes benchmarks/results/infer_speed.json (infer_speed_threads<n>.json for another --threads),
with the machine's load average before and after: on a loaded machine PyTorch's figures swing
far more than ONNX Runtime's. Both run without busy-waiting threads (OMP_WAIT_POLICY=PASSIVE
unless set otherwise; ONNX Runtime's allow_spinning off), PyTorch's best setting here.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

# Before torch loads OpenMP: threads that sleep rather than spin while waiting. On a shared
# (or busy) machine spinning OpenMP threads starve each other; measured here, PyTorch at 2
# threads took 3-4x longer per window with the default policy. `infer` sets the same.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from petaction import setup
from petaction.deploy import export, infer
from petaction.core import provenance
from petaction.data import video
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)


def sample_windows(rec: infer.Recogniser, path: Path, stride_s: float) -> list[list[np.ndarray]]:
    """The prepared frames of every window `infer` would score on the video."""
    frames = [rec.prepare(f.image, None) for f, take in video.resample(video.open_source(path).frames, rec.fps) if take]
    stride = max(1, round(stride_s * rec.fps))
    return [frames[s:e] for s, e in infer.window_spans(len(frames), rec.window, stride)]


def per_window(rec_torch, rec_onnx, windows, passes: int) -> dict:
    from mmaction.apis import inference_recognizer

    def torch_path(w):
        return inference_recognizer(rec_torch.model, rec_torch.inputs(w), rec_torch.pipeline).pred_score.numpy()

    def onnx_path(w):
        return rec_onnx.scores(w)

    for w in windows[:3]:              # warm-up: first calls allocate
        torch_path(w), onnx_path(w)
    t_ms, o_ms = [], []
    for _ in range(passes):
        for w in windows:
            t0 = time.perf_counter()
            torch_path(w)
            t_ms.append(1000 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            onnx_path(w)
            o_ms.append(1000 * (time.perf_counter() - t0))
    top_t = [int(torch_path(w).argmax()) for w in windows]
    top_o = [int(onnx_path(w).argmax()) for w in windows]
    tm, om = float(np.median(t_ms)), float(np.median(o_ms))
    return {"windows": len(windows), "passes": passes, "inference_recognizer_ms_median": round(tm, 3),
            "onnxruntime_ms_median": round(om, 3), "inference_recognizer_ms_p90": round(float(np.percentile(t_ms, 90)), 3),
            "onnxruntime_ms_p90": round(float(np.percentile(o_ms, 90)), 3), "speedup": round(tm / om, 3),
            "speedup_target": 1.5, "top1_identical": top_t == top_o}


def looped(path: Path, loops: int):
    """The video played ``loops`` times back to back, time running on: a longer stream."""
    i, offset = 0, 0.0
    for _ in range(loops):
        src = video.open_source(path)
        n = 0
        for f in src.frames:
            yield video.Frame(i, offset + f.t, f.image)
            i, n = i + 1, n + 1
        offset += n / src.fps


def streaming(rec, path: Path, stride_s: float, loops: int) -> dict:
    src = video.from_iterable(looped(path, loops), None)
    t0 = time.perf_counter()
    wins = list(infer.stream(src, rec, stride_s))
    wall = time.perf_counter() - t0
    last_t = wins[-1].end_s
    return infer.stream_stats(wins, wall, last_t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default="results/default/models/tsm/seed0_trial1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=20, help="timed passes over the video's windows")
    ap.add_argument("--stride", type=float, default=1.0)
    ap.add_argument("--loops", type=int, default=6, help="stream the sample video this many times back to back")
    ap.add_argument("--skip-parity", action="store_true", help="skip the parity check over the study's runs")
    ap.add_argument("--stride-timing", type=float, default=0.2, help="stride of the per-window timing (more windows)")
    a = ap.parse_args()
    provenance.require_clean()
    torch.set_num_threads(a.threads)
    run, path = Path(a.run), video.sample_video()
    load_before = os.getloadavg()   # a shared machine's load moves torch's figures (OpenMP threads wait on each other)
    with tempfile.TemporaryDirectory() as tmp:
        rec_t = infer.Recogniser(run, "torch")
        rec_o = infer.Recogniser(run, "onnx", export.export(run, Path(tmp) / "model.onnx", rec_t.model))
        speed = per_window(rec_t, rec_o, sample_windows(rec_t, path, a.stride_timing), a.passes)
        print(f"per window: inference_recognizer {speed['inference_recognizer_ms_median']:.2f} ms, "
              f"ONNX Runtime {speed['onnxruntime_ms_median']:.2f} ms: {speed['speedup']:.2f}x "
              f"(target >= 1.5x); same top-1 on every window: {speed['top1_identical']}")
        stream = {}
        for name, rec in (("torch", rec_t), ("onnx", rec_o)):
            stream[name] = streaming(rec, path, a.stride, a.loops)
            s = stream[name]
            print(f"streaming ({name}): {s['windows_per_s']:.2f} windows/s, latency median {s['latency_ms_median']:.1f} ms "
                  f"p90 {s['latency_ms_p90']:.1f} ms, {s['realtime_factor']:.2f}x real time "
                  f"({'keeps up' if s['realtime_factor'] >= 1 else 'falls behind'} at one prediction per {a.stride:g} s)")
    load_after = os.getloadavg()
    parity = []
    if not a.skip_parity:
        with tempfile.TemporaryDirectory() as tmp:
            parity = export.export_all(sorted(run.parent.parent.glob(f"*/{run.name}")), Path(tmp))   # every model's run of the same seed and trial
    for r in parity:
        print(f"parity {r['model']}: " + (f"max abs diff {r['max_abs_diff']:.1e}" if r["exported"] else r["reason"]))
    name = "infer_speed" if a.threads == 2 else f"infer_speed_threads{a.threads}"
    provenance.save_benchmark(name, {"loadavg_1min_before_after": [load_before[0], load_after[0]],
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "ort_allow_spinning": False,
        "run": str(run), "video": str(path.name), "threads": a.threads, "ort_threads": a.threads,
        "window_s": rec_t.window / rec_t.fps, "model_fps": rec_t.fps, "stride_s": a.stride,
        "timing_stride_s": a.stride_timing, "stream_loops": a.loops, "per_window": speed, "streaming": stream, "parity": parity})


if __name__ == "__main__":
    main()
