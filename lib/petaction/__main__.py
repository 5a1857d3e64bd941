"""Command line: python -m petaction <verb> ...

    python -m petaction study -f params/study.yaml [--force] [-p models '[tsn, tsm]']
    python -m petaction prepare -p data_root /data/aihub -p study mystudy
    python -m petaction train -p model tsn -p seed 0
    python -m petaction evaluate -p study default
    python -m petaction synth OUT_DIR [--seed 0]
    python -m petaction infer VIDEO --run results/default/models/tsm/seed0_trial1 --out DIR [--stride 1] [--smooth 3]
    python -m petaction infer VIDEO --run results/default/models/tsm/seed0_trial1 --out DIR --online [--detect-every k]
    python -m petaction export --run results/default/models/tsm/seed0_trial1 [--out model.onnx]
    python -m petaction tensorboard -f params/study.yaml [-p study NAME] [--port 6006]

`-p KEY VALUE` values are read as YAML (numbers, lists, booleans), as papermill's -y would. A
dotted KEY reaches into a section, as mmengine's --cfg-options: `-p prepare.seed 7`, `-p train.lr
0.002`, `-p finetune.zoo.lr_scale 0.2`; a mapping value merges key by key over what the layers below
give (`-p prepare '{seed: 7}'` keeps the file's other prepare keys; `{_delete_: true, ...}` replaces).
"""
from __future__ import annotations

import argparse
import sys

import yaml


def parse_pairs(pairs) -> dict:
    """The -p pairs as one nested dict: values read as YAML, dotted keys nested (core.dicts.from_dotted)."""
    from .core.dicts import from_dotted
    return from_dotted((k, yaml.safe_load(v)) for k, v in (pairs or []))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m petaction", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    for verb in ("study", "prepare", "train", "evaluate"):
        s = sub.add_parser(verb)
        s.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), help="a parameter")
        if verb == "study":
            s.add_argument("-f", "--file", default="params/study.yaml", help="study parameters (YAML)")
            s.add_argument("--force", action="store_true", help="re-run steps even when unchanged")
    s = sub.add_parser("synth", help="write the embedded synthetic dataset (AI-Hub format)")
    s.add_argument("out")
    s.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("infer", help="sliding-window recognition of a video: timeline + annotated copy")
    s.add_argument("video", help="an mp4, an AI-Hub frame folder, a webcam index, or 'sample' (a bundled mp4)")
    s.add_argument("--run", required=True, help="a trained run folder: results/<study>/models/<model>/seed<k>[_trial<t>]")
    s.add_argument("--out", required=True, help="output folder (replaced as a whole at the end)")
    s.add_argument("--stride", type=float, default=1.0, help="seconds between window starts")
    s.add_argument("--smooth", type=int, default=3, help="majority over the last n windows (1: none)")
    s.add_argument("--topk", type=int, default=3)
    s.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    s.add_argument("--onnx", help="an exported model (backend onnx; exported on the fly when absent)")
    s.add_argument("--window", type=float, help="window length in seconds (default: the run's clip length)")
    s.add_argument("--max-seconds", type=float, help="stop after this much video (a webcam never ends)")
    s.add_argument("--no-video", action="store_true", help="skip the annotated copy")
    s.add_argument("--boxes", choices=("auto", "detector", "none", "label"), default="auto",
                   help="pet box: auto (the study's trained pet detector when there is one, else the whole "
                        "frame), detector, none (whole frame), label (an AI-Hub folder's own label boxes)")
    s.add_argument("--online", action="store_true",
                   help="TSM family: a prediction per model frame from the online TSM step (cached shifts)")
    s.add_argument("--shift", choices=("exact", "causal"), default="exact",
                   help="online: exact (equals the offline model, delayed one frame per shifted block) "
                        "or causal (TSM's one-directional online shift, no delay)")
    s.add_argument("--gap", type=int, default=1, help="online: model frames between shift partners")
    s.add_argument("--detect-every", type=int, default=1,
                   help="online: run the pet localiser every k model frames, holding its box in between")
    s = sub.add_parser("tensorboard", help="TensorBoard over a study's results folder: every run's curves")
    s.add_argument("-f", "--file", default="params/study.yaml", help="study parameters (YAML)")
    s.add_argument("-p", nargs=2, action="append", metavar=("KEY", "VALUE"), help="a study parameter")
    s.add_argument("--port", type=int, default=6006)
    s.add_argument("--host", default="localhost", help="0.0.0.0 to serve other machines")
    s = sub.add_parser("export", help="export a trained recogniser to ONNX and check it against PyTorch")
    s.add_argument("--run", required=True, help="a trained run folder: results/<study>/models/<model>/seed<k>[_trial<t>]")
    s.add_argument("--out", help="the .onnx file (default: <run>/model.onnx)")
    args = ap.parse_args(argv)
    if args.verb in ("study", "prepare", "train", "evaluate"):
        busy = folder_busy(args)
        if busy:
            print(f"error: {busy}", file=sys.stderr)
            return 2

    from . import params as P
    from . import setup
    setup()
    try:
        if args.verb == "study":
            from . import study
            return study.main(args.file, parse_pairs(args.p), args.force)
        if args.verb == "synth":
            from .data import synth
            clips = synth.generate(args.out, seed=args.seed)
            print(f"{len(clips)} clips written under {args.out}")
            return 0
        if args.verb == "infer":
            return infer_verb(args)
        if args.verb == "export":
            return export_verb(args)
        if args.verb == "tensorboard":
            return tensorboard_verb(args)
        kw = parse_pairs(args.p)
        if args.verb == "prepare":
            from .data import prepare
            info = prepare.prepare(**kw)
            print(f"{info['clips_kept']} clips kept, {info['rejected']} rejected -> {info['data_dir']}")
        elif args.verb == "train":
            from .training import train
            m = train.run(P.resolve_train(kw))
            print(m["test"])
        elif args.verb == "evaluate":
            from .evaluation import evaluate
            e = evaluate.evaluate(**kw)
            print(e["summary"].to_string())
    except (P.ParamError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def folder_busy(args) -> str | None:
    """The message when another process writes the results folder this command would: said
    before the imports (seconds) and the run; the run's own lock (core.lock.hold) still decides.
    None when free, or when the study's name cannot be read here (the run reports that)."""
    from .core import lock
    given = parse_pairs(args.p)
    try:
        if args.verb == "study":
            with open(args.file) as f:
                given = {**(yaml.safe_load(f) or {}), **given}
        lock.check_free(str(given.get("study", "default")), given.get("results_dir") or None)
    except lock.LockBusy as e:
        return str(e)
    except (OSError, ValueError, yaml.YAMLError, AttributeError):
        return None
    return None


def infer_verb(args) -> int:
    import os
    # Before torch loads OpenMP: waiting threads sleep instead of spinning, so they leave the
    # cores to frame decoding (measured: a window at 2 threads 3-4x faster on a busy machine).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .deploy import infer
    from .data import video
    spec = video.sample_video() if args.video == "sample" else args.video
    infer.infer(spec, args.run, args.out, stride_s=args.stride, smooth_n=args.smooth, k=args.topk,
                backend=args.backend, onnx_path=args.onnx, window_s=args.window,
                max_seconds=args.max_seconds, annotate=not args.no_video,
                localiser=infer.make_localiser(args.boxes, spec, args.run),
                online=infer.Online(args.shift, args.gap, args.detect_every) if args.online else None)
    print(f"timeline.json, timeline.csv, timeline.png{'' if args.no_video else ', annotated.mp4'} -> {args.out}")
    return 0


def tensorboard_verb(args) -> int:
    """TensorBoard on results/<study> (the study file's, after -p): each run's event files lie
    in <run>/tensorboard, so it lists every run of the study by its folder."""
    import subprocess
    from . import study
    from .core import paths
    cfg = study.load_study(args.file, parse_pairs(args.p))
    logdir = paths.study_dir(cfg["study"], cfg["results_dir"] or None)
    print(f"TensorBoard over {logdir}: http://{args.host}:{args.port}/", flush=True)
    return subprocess.call([sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
                            "--host", args.host, "--port", str(args.port)])


def export_verb(args) -> int:
    from pathlib import Path
    from .deploy import export
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "model.onnx"
    model, p = export.load_recognizer(run), export.run_params(run)
    r = export.parity_model(model, p, export.export_model(model, p, out))
    print(f"{out}: max |ONNX Runtime - PyTorch| score {r['max_abs_diff']:.2e}, same top-1: {r['top1_equal']}")
    return 0 if r["max_abs_diff"] < export.PARITY_TOL else 1


if __name__ == "__main__":
    sys.exit(main())
