"""Which checkpoint should a run keep: the best validation epoch or the last one? Measured on a
finished study's runs, validation only for the choice.

    .venv/bin/python benchmarks/checkpoint_rule.py [--study default] [--target action] [--results-dir DIR] [--out NAME]

Reads every finished run of the target (results/<study>/[<target>/]models/*/seed*) and runs
petaction.evaluation.checkpoint_rule over them: each rule's held-out validation accuracy on
stratified half-splits of the validation clips (the choice), its optimism within validation, and
its validation-minus-test optimism per model (reported, never used for the choice). Writes
benchmarks/results/<out>.json (default checkpoint_rule.json) with the provenance
(core.provenance.save_benchmark). A committed result must come from a committed tree: the
script refuses (exit 2) when the git tree has uncommitted changes.
"""
from __future__ import annotations

import argparse
import sys

from petaction.core import paths, provenance
from petaction.evaluation import checkpoint_rule


def main(argv=None, git=provenance.git_state) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default="default")
    ap.add_argument("--target", default="action")
    ap.add_argument("--results-dir", default=None, help="results root (default: results/ at the repository root)")
    ap.add_argument("--out", default="checkpoint_rule", help="benchmarks/results/<out>.json")
    a = ap.parse_args(argv)
    state = git()
    if state["dirty"] is not False:
        print(f"refusing: the git tree is {'dirty' if state['dirty'] else 'of unknown state'} "
              "(a committed result must come from a clean tree); commit or stash the changes and run again",
              file=sys.stderr)
        return 2
    root = paths.target_dir(a.study, a.target, a.results_dir)
    runs = checkpoint_rule.run_folders(root)
    if not runs:
        print(f"no finished run under {root / 'models'}: run the study first", file=sys.stderr)
        return 1
    table, decision = checkpoint_rule.measure(runs)
    provenance.save_benchmark(a.out, {
        "command": "python benchmarks/checkpoint_rule.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "study": a.study, "target": a.target, "runs": [str(r.relative_to(root)) for r in runs],
        "decision": decision, "models": table.astype(object).where(table.notna(), None).to_dict(orient="records")})
    print(table.to_string(index=False))
    print(f"chosen on held-out validation: {decision['chosen']} (in force: {decision['in_force']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
