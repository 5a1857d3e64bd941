"""Loader throughput: the prepared cache vs decoding full-size JPGs and cropping on the fly.

    .venv/bin/python benchmarks/loader.py [--clips 24] [--size 1280 720]

Generates a synthetic AI-Hub set at the real data's frame size, prepares it, then feeds
the same clips through the same mmaction2 training transforms two ways:
  cache:    mmaction2's RawFrameDecode on the prepared, cropped frames (this project);
  on-the-fly: decode each original full-size JPG, crop to the pet box, then the same
              transforms (the original study's approach).
Prints clips per second for both and the ratio; writes benchmarks/results/loader.json.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from petaction.data import aihub, crop, prepare, synth  # noqa: E402,F401
from petaction import setup  # noqa: E402
from petaction.core import provenance  # noqa: E402,F401
from petaction.models.mmconfig import FILENAME_TMPL  # noqa: E402
setup()   # the pinned OpenMMLab packages, this project's registrations (petaction.setup)


def transforms(num_segments: int, size: int):
    from mmengine.dataset import Compose
    import mmaction.datasets  # noqa: F401  (registers the transforms)
    from mmengine.registry import init_default_scope
    init_default_scope("mmaction")
    resize = round(size * 8 / 7)
    sample = Compose([dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=num_segments)])
    decode = Compose([dict(type="RawFrameDecode")])
    rest = Compose([dict(type="Resize", scale=(-1, resize)), dict(type="RandomCrop", size=size),
                    dict(type="Flip", flip_ratio=0.5), dict(type="FormatShape", input_format="NCHW"),
                    dict(type="PackActionInputs")])
    return sample, decode, rest


def bench_cache(data: Path, clips: list[dict], sample, decode, rest, repeats: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        for c in clips:
            r = dict(frame_dir=str(data / "frames" / c["id"]), total_frames=int(c["frames"]), label=0,
                     start_index=1, filename_tmpl=FILENAME_TMPL, modality="RGB")
            rest(decode(sample(r)))
    return repeats * len(clips) / (time.perf_counter() - t0)


def bench_on_the_fly(root: Path, clips: list[dict], sample, rest, size: int, repeats: int) -> float:
    """Decode the sampled original JPGs, crop to the box (same crop as prepare), same transforms."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        for c in clips:
            frames, _ = aihub.list_frames(Path(c["source"]))
            boxes = aihub.boxes_by_frame(aihub.load_label(Path(c["label_path"]))["annotations"])
            r = sample(dict(total_frames=len(frames), start_index=0, label=0, modality="RGB"))
            imgs = []
            for i in r["frame_inds"]:
                number, _, path = frames[int(i) % len(frames)]
                img = crop.read_image(path)
                h, w = img.shape[:2]
                box = crop.square_crop_box(aihub.nearest_box(boxes, number), w, h, 0.15)
                imgs.append(crop.crop_resize(img, box, size))
            r.update(imgs=imgs, img_shape=imgs[0].shape[:2], original_shape=imgs[0].shape[:2])
            rest(r)
    return repeats * len(clips) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=39)
    ap.add_argument("--size", type=int, nargs=2, default=[1280, 720])
    ap.add_argument("--segments", type=int, default=8)
    ap.add_argument("--short-side", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    provenance.require_clean()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        per_class = max(1, a.clips // len(synth.DEFAULT_COUNTS))
        counts = {k: per_class for k in synth.DEFAULT_COUNTS}
        t0 = time.perf_counter()
        synth.generate(tmp / "src", seed=0, counts=counts, size=tuple(a.size), n_frames=20)
        gen_s = time.perf_counter() - t0
        info = prepare.prepare(study="bench", results_dir=tmp / "res", data_root=str(tmp / "src"),
                               short_side=a.short_side)
        data = Path(info["data_dir"])
        import csv
        clips = list(csv.DictReader(open(data / "clips.csv", encoding="utf-8")))
        sample, decode, rest = transforms(a.segments, round(a.short_side * 7 / 8))
        np.random.seed(0)
        cache = bench_cache(data, clips, sample, decode, rest, a.repeats)
        fly = bench_on_the_fly(tmp / "src", clips, sample, rest, a.short_side, a.repeats)
    out = {"clips": len(clips), "source_size": a.size, "segments": a.segments, "cache_short_side": a.short_side,
           "cache_clips_per_s": round(cache, 1), "on_the_fly_clips_per_s": round(fly, 1),
           "ratio": round(cache / fly, 1), "generate_s": round(gen_s, 1)}
    provenance.save_benchmark("loader", out)
    print(f"cache: {cache:.1f} clips/s; on the fly from {a.size[0]}x{a.size[1]} JPGs: {fly:.1f} clips/s; "
          f"ratio {cache / fly:.1f}x ({len(clips)} clips, {a.segments} frames each, 1 process)")


if __name__ == "__main__":
    main()
