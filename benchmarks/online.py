"""Online TSM against the windowed path: the same video, run and threads.

    .venv/bin/python benchmarks/online.py --run RUN [--backend onnx] [--plays 3] [--target 30]
    .venv/bin/python benchmarks/online.py --run RUN --untrained tsm --profile full --img-size 224 \\
        --backend onnx --target 10 --name online_full_r50

Every variant is `infer` itself (``infer.infer`` with no annotated copy: decode + localise +
recognise, as the CLI prints it) on the bundled 1280x720 sample played end to end, ``--plays``
times (the median play is reported): the windowed path (a window per ``--stride`` s) and online
variants (a prediction per model frame): the exact shift at gap 1, and the exact and causal
shifts at the gap that makes one online prediction see the very frames a window's test
sampling picks. For each: predictions per second, latency per prediction (median, p90, from a
frame's arrival to its scores), the exact shift's delay, each stage's share (decode, localise,
recognise, write), and top-1 agreement with the windowed path on the windows' frames (online
prediction about the window's last sampled frame against the window's; raw top-1 and smoothed).

``--untrained MODEL --profile full``: the timing of an architecture no one has trained here
(e.g. the full profile's TSM-R50 at 224 px): its config is built as training builds it over
``--run``'s data and classes, with initial weights (speed does not depend on them; the labels
then mean nothing, so no agreement is reported). With ``--target`` the verdict says whether
the first online variant reaches it, and when not, which stage alone already exceeds the
time budget and by how much. Writes benchmarks/results/<name>.json with the command, the
machine, torch threads, git commit, date and the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")      # as `infer` sets it (see benchmarks/infer_speed.py)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from petaction import setup  # noqa: E402
from petaction.deploy import infer  # noqa: E402
from petaction.core import provenance  # noqa: E402
from petaction.data import video  # noqa: E402
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)


def untrained_run(model: str, profile: str, like: Path, out: Path, img_size: int | None) -> Path:
    """A run folder for ``model`` at ``profile`` over ``like``'s data, with initial weights."""
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from petaction.models import checkpoints, mmconfig
    from petaction import params as P
    cfg_like = Config.fromfile(str(like / "config.py"))
    data = Path(cfg_like.train_dataloader.dataset.ann_file).parent
    classes = list(cfg_like.dataset_meta["classes"])
    p = P.resolve_train({"model": model, "profile": profile, **({"img_size": img_size} if img_size else {})})
    out.mkdir(parents=True, exist_ok=True)
    cfg = mmconfig.build(p, data, out, classes, [1] * len(classes))
    cfg.dump(str(out / "config.py"))
    (out / "params.json").write_text(json.dumps(p, default=str))     # export reads the input shape from it
    init_default_scope("mmaction")
    torch.manual_seed(0)
    ckpt = out / "best_acc_top1_epoch_0.pth"
    torch.save({"state_dict": MODELS.build(cfg.model).state_dict(), "meta": {}}, ckpt)
    checkpoints.record_checkpoint(ckpt)
    return out


def sampled_last(rec: infer.Recogniser) -> tuple[int, int]:
    """Offset in a window of its last test-sampled frame, and the spacing of the samples
    (mmaction2's own SampleFrames in test mode over one window)."""
    from mmengine.dataset import Compose
    step = Compose([rec.model.cfg.test_dataloader.dataset.pipeline[0]])
    inds = step(dict(total_frames=rec.window, start_index=0))["frame_inds"]
    return int(inds[-1]), (int(np.median(np.diff(inds))) if len(inds) > 1 else 1)


def play(run: Path, path: Path, out: Path, localiser, online=None, backend="torch", stride=1.0,
         smooth=3) -> dict:
    return infer.infer(path, run, out, stride_s=stride, smooth_n=smooth, backend=backend, localiser=localiser,
                       annotate=False, log=lambda *_: None, online=online)


def tracker_cost(path: Path, fps: float, localiser, frames: int = 15) -> dict:
    """Would an OpenCV tracker between detections pay for itself? Holding the box costs
    nothing; tracking it costs an update per frame, so with a detector every k frames it is
    cheaper than detecting every frame only when an update costs less than a detection.
    Times OpenCV's MIL tracker (no model files) and the localiser on the same model frames."""
    import time
    import cv2
    imgs = [f for f, take in video.resample(video.open_source(path).frames, fps) if take][:frames]
    h, w = imgs[0].image.shape[:2]
    tracker = cv2.TrackerMIL_create()
    tracker.init(imgs[0].image, (w // 4, h // 4, w // 2, h // 2))
    upd = []
    for f in imgs[1:]:
        t = time.perf_counter()
        tracker.update(f.image)
        upd.append(1000 * (time.perf_counter() - t))
    loc = []
    for f in imgs[1:]:
        t = time.perf_counter()
        localiser(f)
        loc.append(1000 * (time.perf_counter() - t))
    mil, det = float(np.median(upd)), float(np.median(loc))
    return {"tracker": "cv2.TrackerMIL", "update_ms_median": round(mil, 2),
            "localiser": getattr(localiser, "name", type(localiser).__name__), "localiser_ms_median": round(det, 3),
            "tracking_pays": mil < det, "frames": len(upd)}


def median_play(results: list[dict]) -> dict:
    """The play with the median predictions per second (its rows and stats together)."""
    order = sorted(results, key=lambda r: r["stream"]["predictions_per_s"])
    return order[len(order) // 2]


def agreement(windowed: dict, online_res: dict, last_offset: int) -> dict:
    """Top-1 agreement on each window: the online prediction about the window's last sampled
    frame (start + last_offset) against the window's own."""
    by_end = {round(r["end_s"], 3): r for r in online_res["windows"]}
    fps = windowed["model_fps"]
    pairs = []
    for w in windowed["windows"]:
        t = round(w["start_s"] + (last_offset + 1) / fps, 3)
        if t in by_end:
            pairs.append((w, by_end[t]))
    if not pairs:
        return {"windows_compared": 0}
    return {"windows_compared": len(pairs),
            "top1_agreement": round(float(np.mean([a["topk"][0]["label"] == b["topk"][0]["label"] for a, b in pairs])), 3),
            "smoothed_agreement": round(float(np.mean([a["label"] == b["label"] for a, b in pairs])), 3)}


def summary(res: dict) -> dict:
    s = res["stream"]
    keep = ("predictions", "wall_s", "predictions_per_s", "latency_ms_median", "latency_ms_p90", "video_s",
            "realtime_factor", "includes")
    out = {k: s[k] for k in keep}
    out["stage_share"] = {k: v["share"] for k, v in s["stages"].items()}
    out["stage_s"] = {k: v["s"] for k, v in s["stages"].items()}
    if "online" in res:
        out.update({k: res["online"][k] for k in ("shift", "gap", "delay_frames", "delay_s", "shifted_blocks", "steps")})
        # The exact shift's flush adds `delay` steps at the stream's end; on a short video that is a
        # large share of the steps, on a long stream none. Estimate: the same play without them.
        flush_s = out["stage_s"]["recognise"] * (1 - out["predictions"] / out["steps"])
        out["long_stream_predictions_per_s"] = round(out["predictions"] / (out["wall_s"] - flush_s), 3)
    return out


def verdict(s: dict, target: float) -> dict:
    """Whether predictions/s reaches ``target``; if not, the stages that alone exceed the budget."""
    budget = s["predictions"] / target            # seconds the whole play may take
    over = {k: round(v / budget, 2) for k, v in s["stage_s"].items() if k != "other" and v > budget}
    v = {"target_predictions_per_s": target, "met": s["predictions_per_s"] >= target, "budget_s": round(budget, 3)}
    if not v["met"]:
        v["short_by"] = round(target / s["predictions_per_s"], 2)
        v["stages_over_budget"] = over            # stage time / budget: > 1 makes the target impossible alone
        worst = max(s["stage_s"], key=lambda k: s["stage_s"][k])
        v["largest_stage"] = worst
    if "long_stream_predictions_per_s" in s:
        v["long_stream_met"] = s["long_stream_predictions_per_s"] >= target
    return v


DOCS = Path(__file__).resolve().parents[1] / "docs" / "realtime.md"
RESULTS = Path(__file__).resolve().parent / "results"


def localiser(r: dict) -> str:
    """The localiser column: which boxes, and how often the localiser ran."""
    what = "detector" if r["localiser"].startswith("pet detector") else "whole frame"
    return what + (f" every {r['detect_every']} frames" if what == "detector" and r.get("detect_every", 1) > 1 else "")


def table_markdown(paths: list[Path]) -> str:
    """The docs' table: one row per variant of every benchmarks/results/online*.json."""
    lines = ["| JSON | run | backend, torch threads, localiser | variant | predictions/s | latency median / p90 (ms) | delay (s) | "
             "top-1 agreement with windowed | decode / localise / recognise share | long stream, est. (/s) | target |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for f in paths:
        r = json.loads(f.read_text())
        what = (f"{r['untrained']['model']} {r['untrained']['profile']} {r['untrained']['img_size']} px "
                f"(initial weights)" if r.get("untrained") else Path(r["run"]).parts[-2])
        v = r.get("verdict", {})
        for name, s in r["variants"].items():
            ag = s.get("agreement_with_windowed", {})
            sh = s["stage_share"]
            target = ""
            if v.get("variant") == name:
                target = f"{v['target_predictions_per_s']:g}/s: " + ("met" if v["met"] else
                         f"short {v['short_by']:g}x (largest stage: {v['largest_stage']})")
                if "long_stream_met" in v:
                    target += "; long stream: " + ("met" if v["long_stream_met"] else "not met")
            lines.append(
                f"| `{f.relative_to(RESULTS.parent.parent)}` | {what} | {r['backend']}, {r['threads']} thread(s), {localiser(r)} | {name} | "
                f"{s['predictions_per_s']:.1f} | {s['latency_ms_median']:.1f} / {s['latency_ms_p90']:.1f} | "
                f"{s.get('delay_s', '')} | {ag.get('top1_agreement', '')} | "
                f"{sh['decode']:.0%} / {sh['localise']:.0%} / {sh['recognise']:.0%} | "
                f"{s.get('long_stream_predictions_per_s', '')} | {target} |")
    loads = ", ".join(f"`{f.name}` " + " / ".join(f"{x:.1f}" for x in json.loads(f.read_text())["loadavg_1min_before_after"])
                      for f in paths)
    return "\n".join(lines) + f"\n\nLoad average (1 min, before and after): {loads}.\n"


def write_docs() -> None:
    """docs/realtime.md's table is tools/docs.py's (table: online), as every measured table is."""
    import subprocess
    subprocess.run([sys.executable, str(DOCS.parents[1] / "tools" / "docs.py")], check=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a trained TSM-family run (its data and classes for --untrained)")
    ap.add_argument("--untrained", help="time this model file's architecture instead, with initial weights")
    ap.add_argument("--profile", default="full", help="--untrained: the profile of its architecture")
    ap.add_argument("--img-size", type=int, help="--untrained: image size (default: the profile's)")
    ap.add_argument("--video", default="sample", help="an mp4 or frame folder (default: the bundled sample)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", choices=("torch", "onnx"), default="onnx", help="both paths' backend")
    ap.add_argument("--boxes", choices=("auto", "detector", "none"), default="auto")
    ap.add_argument("--detect-every", type=int, default=1)
    ap.add_argument("--plays", type=int, default=3)
    ap.add_argument("--stride", type=float, default=1.0, help="the windowed path's stride (s)")
    ap.add_argument("--target", type=float, help="predictions/s the first online variant should reach")
    ap.add_argument("--name", default="online", help="benchmarks/results/<name>.json")
    ap.add_argument("--docs", action="store_true", help="only regenerate docs/realtime.md's table from the JSONs")
    a = ap.parse_args(argv)
    provenance.require_clean()
    if a.docs:
        write_docs()
        return {}
    if not a.run:
        ap.error("--run is required")
    torch.set_num_threads(a.threads)
    path = video.sample_video() if a.video == "sample" else Path(a.video)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = untrained_run(a.untrained, a.profile, Path(a.run), tmp / "run", a.img_size) if a.untrained \
            else Path(a.run)
        loc = infer.make_localiser(a.boxes, path, Path(a.run))
        probe = infer.Recogniser(run, "torch")
        last, spacing = sampled_last(probe)
        variants = [("online_exact_gap1", infer.Online("exact", 1, a.detect_every)),
                    (f"online_exact_gap{spacing}", infer.Online("exact", spacing, a.detect_every)),
                    (f"online_causal_gap{spacing}", infer.Online("causal", spacing, a.detect_every))]
        if spacing == 1:
            variants = [variants[0], ("online_causal_gap1", infer.Online("causal", 1, a.detect_every))]
        tracking = tracker_cost(path, probe.fps, loc)
        plays = {"windowed": [play(run, path, tmp / f"w{i}", loc, None, a.backend, a.stride) for i in range(a.plays)]}
        for name, opt in variants:
            plays[name] = [play(run, path, tmp / f"{name}{i}", loc, opt, a.backend) for i in range(a.plays)]
    load_after = os.getloadavg()
    best = {k: median_play(v) for k, v in plays.items()}
    table = {k: summary(v) for k, v in best.items()}
    for name, opt in variants:
        if not a.untrained:
            # at the test spacing: the frames the window's sampling picks; gap 1: the window's last frame
            at = last if opt.gap == spacing else probe.window - 1
            table[name]["agreement_with_windowed"] = {"online_frame_in_window": at,
                                                      **agreement(best["windowed"], best[name], at)}
    result = {"command": " ".join(["benchmarks/online.py", *map(shlex.quote, argv if argv is not None else sys.argv[1:])]),
              "run": str(a.run), "untrained": a.untrained and {"model": a.untrained, "profile": a.profile,
                                                               "img_size": a.img_size or "profile's"},
              "video": path.name, "backend": a.backend, "threads": a.threads, "ort_threads": a.threads,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "plays": a.plays,
              "loadavg_1min_before_after": [load_before[0], load_after[0]],
              "localiser": best["windowed"]["localiser"], "detect_every": a.detect_every,
              "model_fps": probe.fps, "window_frames": probe.window, "window_test_spacing": spacing,
              "tracker_check": tracking, "variants": table}
    first = variants[0][0]
    if a.target:
        result["verdict"] = {"variant": first, **verdict(table[first], a.target)}
    provenance.save_benchmark(a.name, result)
    for k, s in table.items():
        ag = s.get("agreement_with_windowed", {})
        print(f"{k:<22} {s['predictions']:>4} predictions, {s['predictions_per_s']:7.2f}/s, latency median "
              f"{s['latency_ms_median']:.1f} ms p90 {s['latency_ms_p90']:.1f} ms"
              + (f", delay {s['delay_s']:.2f} s" if "delay_s" in s else "")
              + (f", top-1 agreement {ag['top1_agreement']:.2f} on {ag['windows_compared']} windows" if ag.get("windows_compared") else "")
              + "; shares " + ", ".join(f"{n} {v:.0%}" for n, v in s["stage_share"].items() if v is not None))
    print(f"tracker: MIL update {tracking['update_ms_median']:.1f} ms vs localiser {tracking['localiser_ms_median']:.2f} ms "
          f"a frame: tracking {'pays' if tracking['tracking_pays'] else 'does not pay'} (the box is held)")
    if "verdict" in result:
        print(f"verdict: {result['verdict']}")
    return result


if __name__ == "__main__":
    main()
