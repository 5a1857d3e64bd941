"""Command line: python -m petaction <verb> ...

    python -m petaction study -f params/study.yaml [--force] [-p models '[tsn, tsm]']
    python -m petaction prepare -p data_root /data/aihub -p study mystudy
    python -m petaction train -p model tsn -p seed 0
    python -m petaction evaluate -p study default
    python -m petaction synth OUT_DIR [--seed 0]

`-p KEY VALUE` values are read as YAML (numbers, lists, booleans), as papermill's -y would.
"""
from __future__ import annotations

import argparse
import sys

import yaml


def parse_pairs(pairs) -> dict:
    return {k: yaml.safe_load(v) for k, v in (pairs or [])}


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
    args = ap.parse_args(argv)

    from . import params as P
    try:
        if args.verb == "study":
            from . import study
            return study.main(args.file, parse_pairs(args.p), args.force)
        if args.verb == "synth":
            from . import synth
            clips = synth.generate(args.out, seed=args.seed)
            print(f"{len(clips)} clips written under {args.out}")
            return 0
        kw = parse_pairs(args.p)
        if args.verb == "prepare":
            from . import prepare
            info = prepare.prepare(**kw)
            print(f"{info['clips_kept']} clips kept, {info['rejected']} rejected -> {info['data_dir']}")
        elif args.verb == "train":
            from . import train
            m = train.run(P.resolve_train(kw))
            print(m["test"])
        elif args.verb == "evaluate":
            from . import evaluate
            e = evaluate.evaluate(**kw)
            print(e["summary"].to_string())
    except (P.ParamError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
