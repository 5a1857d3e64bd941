"""Regenerate the measured-figure tables in the docs from the committed benchmark results.

    .venv/bin/python tools/docs.py           # rewrite the tables in README.md and docs/*.md
    .venv/bin/python tools/docs.py --check   # exit 1 if a page differs from what this writes

A page asks for a table with a pair of markers; everything between them is this script's:

    <!-- table: learnability -->
    <!-- /table -->

Each table is built from one JSON file under benchmarks/results/ (TABLES below) and ends with
the line saying where its figures come from: the file, its command, the machine, the commit and
the time; the model table is read from params/models/*.yaml. Nothing measured is typed by hand
into a page (tests/test_docs.py runs --check).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd
import yaml

from petaction.core.fmt import pct, pts   # the report's own formats: a figure reads the same in docs and report

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def source_line(path: Path, result: dict, command: str = "?") -> str:
    """Where a table's figures come from; ``command``: the benchmark's command line, for result
    files written before the benchmarks recorded their own."""
    prov = result.get("provenance", {})
    hw, git = prov.get("hardware", {}), prov.get("git", {})
    commit = (git.get("commit") or "?")[:7] + (" (uncommitted changes)" if git.get("dirty") else "")
    machine = f"{hw.get('cpu', '?')}, {hw.get('cpu_count', '?')} CPUs, torch {prov.get('versions', {}).get('torch', '?')}"
    return (f"*From `{path.relative_to(REPO)}`: `{result.get('command') or command}`; {machine}; "
            f"commit {commit}; {prov.get('time_utc', '?')}.*")


def learnability(result: dict) -> pd.DataFrame:
    rows = []
    for m in result["models"]:
        runs = [r for r in result["runs"] if r["model"] == m["model"]]
        below = [r["first_below_step"] for r in runs]
        rows.append({
            "model": m["model"], "seeds": len(runs),
            "test top-1 (mean ± sd)": f"{pct(m['test_top1_mean'])} ± {100 * m['test_top1_std']:.1f}",
            "lowest": pct(m["test_top1_min"]), "spread": f"{100 * m['test_top1_spread']:.1f} pts",
            "best val top-1 (mean)": pct(m["best_val_top1_mean"]),
            "loss < 0.8 ln K at step": ", ".join("never" if b is None else str(b) for b in below),
            "steps": ", ".join(str(s) for s in m["train_steps"]),
            "train CPU s (mean)": f"{m['train_cpu_s_mean']:.0f}",
        })
    return pd.DataFrame(rows)


def recipe_search(result: dict) -> pd.DataFrame:
    """The exploration runs behind the quick profile: each run's settings and where it got to."""
    import math
    rows = []
    for r in result["runs"]:
        s, curve = r["spec"], r["curve"]
        if not curve or s.get("steps", 0) < 200:   # the 30-40 step timing probes
            continue
        k = 6 if "emo" in r["name"] else 12
        below = next((c["step"] for c in curve if c["train_loss_ema"] < 0.8 * math.log(k)), None)
        rows.append({"run": r["name"], "model": s["model"], "data": s.get("data", "default"),
                     "batch": s.get("batch", 16), "optimizer": s.get("opt", "AdamW"), "lr": s["lr"],
                     "changes": json.dumps({**s.get("p", {}), **s.get("mc", {})}, separators=(",", ":"))[:60],
                     "steps": curve[-1]["step"], "loss < 0.8 ln K by step": below or "never",
                     "val top-1 at the end": pct(curve[-1]["val_top1"]),
                     "best val top-1": pct(max(c["val_top1"] for c in curve)),
                     "study pipeline": "yes" if r.get("via") else "",
                     "stopped early": "yes" if r.get("stopped") or curve[-1]["step"] < s["steps"] else "",
                     "CPU s": curve[-1]["cpu_s"]})
    return pd.DataFrame(rows)


def study_time(result: dict) -> pd.DataFrame:
    """The default study's steps as `make study` ran them (with each training's share of all
    training seconds: which trainings dominate the wall time), and the whole wall time."""
    trained = sum(s["seconds"] or 0 for s in result["steps"] if s["step"].startswith(("train", "detector")))
    rows = [{"step": s["step"], "status": s["status"], "seconds": num(s["seconds"], ".0f"),
             "share of training": (f"{s['seconds'] / trained:.0%}" if s["seconds"] and trained
                                   and s["step"].startswith(("train", "detector")) else "")}
            for s in result["steps"]]
    rows.append({"step": f"whole study ({result['cpu_jobs']} CPU slots)", "status": "",
                 "seconds": num(result["wall_time_s"], ".0f"), "share of training": ""})
    return pd.DataFrame(rows)


def checkpoint_rule(result: dict) -> pd.DataFrame:
    """Each checkpoint rule on held-out validation halves (the choice's evidence), and, for the
    record only, its validation minus test top-1, per model and over every run."""
    d = result["decision"]
    rows = [{"model": m["model"], "runs": m["n_runs"],
             "held-out val, best / last": f"{pct(m['heldout_best'])} / {pct(m['heldout_last'])}",
             "optimism within val, best": pts(m["within_val_optimism_best"]),
             "val - test, best / last": f"{pts(m['val_minus_test_best'])} / {pts(m['val_minus_test_last'])}"}
            for m in result["models"]]
    rows.append({"model": f"chosen: {d['chosen']}", "runs": d["n_runs"],
                 "held-out val, best / last": f"best - last {pts(d['diff_best_minus_last'])} "
                                              f"(95% {pts(d['ci_low'])} to {pts(d['ci_high'])})",
                 "optimism within val, best": "", "val - test, best / last": ""})
    return pd.DataFrame(rows)


def online_clips(result: dict) -> pd.DataFrame:
    """The online TSM against the offline one on one run's test clips (benchmarks/online_clips.py)."""
    s, v, det = result["summary"], result["variant"], result.get("detector") or {}
    d, a = s["difference"], s["agreement"]
    return pd.DataFrame([{
        "run": f"`{result['run']}`", "test clips": s["clips"],
        "variant": f"{v['shift']} shift, gap {v['gap']}",
        "online top-1": f"{pct(s['online']['top1'])} ({pct(s['online']['ci_low'])} to {pct(s['online']['ci_high'])})",
        "offline top-1": f"{pct(s['offline']['top1'])} ({pct(s['offline']['ci_low'])} to {pct(s['offline']['ci_high'])})",
        "online - offline": f"{pts(d['online_minus_offline'])} pts ({pts(d['ci_low'])} to {pts(d['ci_high'])})",
        "agreement": f"{pct(a['rate'])} ({pct(a['ci_low'])} to {pct(a['ci_high'])})",
        "predictions/s": num(s["predictions_per_s_median"], ".0f"),
        "with the detector every 5 frames": num(det.get("predictions_per_s_median"), ".0f"),
        "threads": result["threads"]}])


def online(_: dict) -> str:
    """benchmarks/online.py's own table over its benchmarks/results/online*.json."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("online_bench", REPO / "benchmarks" / "online.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # online_clips*.json is benchmarks/online_clips.py's (test-clip accuracy), not a play of the video
    return mod.table_markdown(sorted(f for f in (REPO / "benchmarks" / "results").glob("online*.json")
                                     if not f.name.startswith("online_clips")))


def num(x, fmt: str = ".1f") -> str:
    return "n/a" if x is None or pd.isna(x) else format(x, fmt)


def loader(result: dict) -> pd.DataFrame:
    w, h = result["source_size"]
    return pd.DataFrame([{
        "clips": result["clips"], "frames a clip": result["segments"],
        "prepared cache (clips/s)": num(result["cache_clips_per_s"]),
        f"decode {w}x{h} JPGs and crop on the fly (clips/s)": num(result["on_the_fly_clips_per_s"]),
        "ratio": f"{num(result['ratio'])}x",
    }])


def overhead(result: dict) -> pd.DataFrame:
    rows = [{"pair": i + 1, "train.ipynb epoch (s)": num(r["notebook_epoch_s"], ".2f"),
             "bare Runner epoch (s)": num(r["bare_epoch_s"], ".2f")} for i, r in enumerate(result["runs"])]
    rows.append({"pair": "median", "train.ipynb epoch (s)": num(result["median_notebook_epoch_s"], ".2f"),
                 "bare Runner epoch (s)": num(result["median_bare_epoch_s"], ".2f")})
    df = pd.DataFrame(rows)
    df["ratio"] = [num(float(a) / float(b), ".3f") for a, b in zip(df.iloc[:, 1], df.iloc[:, 2])]
    return df


def prepare_memory(result: dict) -> pd.DataFrame:
    return pd.DataFrame([{
        "scale": r["scale"], "clips": r["clips"], "generate (s)": num(r["generate_s"]),
        "prepare (s)": num(r["prepare_s"]), "peak RSS, main (MB)": num(r["peak_rss_main_mb"], ".0f"),
        "peak RSS, a worker (MB)": num(r["peak_rss_worker_mb"], ".0f"),
    } for r in result["runs"]])


def latency_repeat(result: dict) -> pd.DataFrame:
    return pd.DataFrame([{
        "model": r["model"],
        "median, pass 1 / 2 (ms)": " / ".join(num(x, ".2f") for x in r["cpu_latency_ms"]),
        "ratio": num(r["cpu_latency_ms_ratio"], ".3f"),
        "p90, pass 1 / 2 (ms)": " / ".join(num(x, ".2f") for x in r["cpu_latency_p90_ms"]),
        "p90 ratio": num(r["cpu_latency_p90_ms_ratio"], ".3f"),
    } for r in result["rows"]])


def infer_speed(result: dict) -> pd.DataFrame:
    w, s = result["per_window"], result["streaming"]
    load = " -> ".join(num(x) for x in result.get("loadavg_1min_before_after", []))
    rows = [{
        "path": "per window, test pipeline + model", "threads": result["threads"],
        "mmaction2 inference_recognizer": f"{num(w['inference_recognizer_ms_median'])} ms (p90 {num(w['inference_recognizer_ms_p90'])})",
        "ONNX Runtime": f"{num(w['onnxruntime_ms_median'])} ms (p90 {num(w['onnxruntime_ms_p90'])})",
        "note": f"{num(w['speedup'], '.2f')}x; same top-1 on every window: {w['top1_identical']}; "
                f"{w['windows']} windows x {w['passes']} passes",
    }]
    t, o = s["torch"], s["onnx"]
    rows.append({
        "path": f"streaming, stride {num(result['stride_s'])} s: decode + localise + recognise", "threads": result["threads"],
        "mmaction2 inference_recognizer": f"{num(t['windows_per_s'], '.2f')} windows/s, latency {num(t['latency_ms_median'])} ms "
                                          f"(p90 {num(t['latency_ms_p90'])}), {num(t['realtime_factor'], '.2f')}x real time",
        "ONNX Runtime": f"{num(o['windows_per_s'], '.2f')} windows/s, latency {num(o['latency_ms_median'])} ms "
                        f"(p90 {num(o['latency_ms_p90'])}), {num(o['realtime_factor'], '.2f')}x real time",
        "note": f"{t['windows']} windows over {num(t['video_s'])} s of video; load average {load}",
    })
    return pd.DataFrame(rows)


def infer_parity(result: dict) -> pd.DataFrame:
    return pd.DataFrame([{
        "model": r["model"], "exported": r["exported"],
        "max abs score difference": num(r.get("max_abs_diff"), ".1e"),
        "same top-1": r.get("top1_equal"), "within tolerance": r.get("ok"), "reason": r.get("reason") or "",
    } for r in result["parity"]])


def ddp_check(result: dict) -> pd.DataFrame:
    rows = [{
        "seed": r["seed"], "processes": r["nproc"], "test top-1": pct(r["top1"]),
        "95% interval": f"{pct(r['top1_ci95'][0])} to {pct(r['top1_ci95'][1])}",
        "mean class accuracy": pct(r["mean_class_acc"]), "best val top-1": pct(r["best_val_top1"]),
        "final train loss": num(r["final_train_loss"], ".3f"), "train (s)": num(r["train_time_s"]),
    } for r in result["runs"]]
    for nproc, top1 in result["mean_top1"].items():
        rows.append({"seed": "mean", "processes": nproc, "test top-1": pct(top1)})
    return pd.DataFrame(rows).astype(object).fillna("")


def schedule(result: dict) -> pd.DataFrame:
    rows = []
    for gpu in sorted({j["planned_gpu"] for j in result["jobs"]}):
        jobs = sorted((j for j in result["jobs"] if j["planned_gpu"] == gpu), key=lambda j: j["planned_start"])
        rows.append({
            "GPU": gpu,
            "models in order (GFLOPs per clip x epochs = cost)": " -> ".join(
                f"{j['model']} ({num(j['gflops_per_clip'])} x {j['epochs']} = {num(j['cost'], '.0f')})" for j in jobs),
            "planned busy": num(max(j["planned_end"] for j in jobs), ".0f"),
            "measured busy (fake GPUs)": num(max(j["measured_end"] for j in jobs), ".0f"),
        })
    rows.append({"GPU": "all", "models in order (GFLOPs per clip x epochs = cost)":
                 f"total {num(result['total'], '.0f')}, total / {result['gpus']} = {num(result['per_gpu'], '.0f')}",
                 "planned busy": f"makespan {num(result['predicted_makespan'], '.0f')} "
                                 f"({pct(result['predicted_over_per_gpu'])} over total / {result['gpus']})",
                 "measured busy (fake GPUs)": f"makespan {num(result['measured_makespan'], '.0f')} "
                                              f"({pct(result['measured_over_per_gpu'])} over)"})
    return pd.DataFrame(rows)


def gpu_check(result: dict) -> pd.DataFrame:
    rows = []
    for v in result["variants"]:
        name = ("AMP" if v.get("amp") else "fp32") + (", channels_last" if v.get("channels_last") else "")
        if "skipped" in v:
            rows.append({"variant": name, "clips/s": "skipped: " + v["skipped"]})
            continue
        mem = (f"{num(v['peak_gpu_mem_gib'], '.2f')} GiB GPU" if "peak_gpu_mem_gib" in v
               else f"{num(v.get('peak_rss_gib'), '.2f')} GiB RSS")
        rows.append({"variant": name, "clips/s": num(v["clips_per_s"]), "step (s)": num(v["step_s"], ".3f"),
                     "batch": v["batch"], "peak memory": mem, "waiting for data": pct(v["data_wait_share"])})
    rows.append({"variant": f"CPU loader, {result['num_workers']} worker(s)",
                 "clips/s": f"{num(result['loader_clips_per_s_one_process'])} per process, "
                            f"{num(result['loader_clips_per_s_all_workers'])} in all"})
    head = f"{result['model']}-R{result['backbone_depth']}, {result['profile']} profile, {result['img_size']} px, " \
           f"{result['num_segments']} segments, {result['device']}"
    return pd.DataFrame(rows).astype(object).fillna("").rename(columns={"variant": f"variant ({head})"})


def throughput(result: dict) -> pd.DataFrame:
    """Per training: today's step and each candidate's ratio to it, the layout it trains with,
    achieved GFLOP/s against the matmul peak of the same rounds, and its top operator."""
    rows = []
    for r in result["models"]:
        c = r["candidates"]
        today = c.get("contiguous", {})

        def ratio(name):
            v = c.get(name, {})
            return f"{v['ratio_to_today']:.2f}x" if v.get("ratio_to_today") else ("fails" if "error" in v else "n/a")
        chosen = c.get(r["chosen"], {})
        ops = (r.get("top_ops") or {}).get("contiguous") or []
        rows.append({
            "model": r["model"], "target": r["target"], "batch": r["batch"],
            "today's step (ms)": num(today.get("median_ms"), ".0f"),
            **{f"{n.replace('_', ' ')}": ratio(n) for n in result["candidates"] if n != "contiguous"},
            "compile (s)": num(c.get("compile", {}).get("compile_s"), ".0f"),
            "trains as": r["chosen"].replace("_", " ") + (" + fused AdamW" if r.get("fused_optimizer") else ""),
            "its ratio": ratio(r["chosen"]),
            "GFLOP/s (today / trained)": f"{num(today.get('achieved_gflops_s'))} / {num(chosen.get('achieved_gflops_s'))}",
            "of peak": pct(chosen.get("share_of_peak")),
            "top operator today": f"{ops[0]['op']} ({pct(ops[0]['share'])})" if ops else "n/a",
        })
    return pd.DataFrame(rows)


def throughput_epoch(result: dict) -> pd.DataFrame:
    """Where an epoch's time goes outside the training step."""
    rows = []
    for r in result["models"]:
        e, v = r.get("epoch") or {}, r.get("validation") or {}
        rows.append({"model": r["model"], "target": r["target"], "steps an epoch": r["steps_per_epoch"],
                     "epoch (s)": num(e.get("epoch_s")), "training steps": pct(e.get("step_share")),
                     "decoding training batches": pct(e.get("train_decode_share")),
                     "validation": pct(e.get("val_share")), "of it decoding": pct(e.get("val_decode_share")),
                     "val clips": v.get("clips", "n/a")})
    return pd.DataFrame(rows)


def models(_: dict) -> pd.DataFrame:
    """One row per params/models/*.yaml: what it is, mmaction2's base, and the zoo entry it is
    checked against (the zoo's own published figures, as the model file records them). Its
    links are relative to docs/, so the table belongs on a page there."""
    rows = []
    for f in sorted((REPO / "params" / "models").glob("*.yaml")):
        m = yaml.safe_load(f.read_text()) or {}
        base = m.get("_base_")
        if base:   # a variant: the rest comes from its base file
            m = {**yaml.safe_load((f.parent / f"{base}.yaml").read_text()), **m}
        first = next((l.lstrip("# ").rstrip() for l in f.read_text().splitlines() if l.startswith("#")), "")
        what = re.split(r":|, trained", first)[0].rstrip(".,")
        zoo = m.get("zoo") or {}
        rows.append({
            "model": f"[{f.stem}](../params/models/{f.name})",   # the page is under docs/
            "what": what + (f" (over `{base}`)" if base else ""),
            "mmaction2 base": f"`{m['mm_base']}`" if m.get("mm_base") else "", "sampling": m.get("sampling", ""),
            "zoo entry": f"`{zoo['name']}`" if zoo.get("name") else "",
            "zoo params (M)": num(zoo.get("params_m"), ".2f"), "zoo GFLOPs": num(zoo.get("gflops"), ".2f"),
            "zoo top-1 (or mAP)": num(zoo.get("top1", zoo.get("map")), ".2f"),
        })
    return pd.DataFrame(rows)


# table name -> (source under the repository, builder of its DataFrame, the command that writes it
# where the result file does not record its own)
TABLES = {
    "learnability": ("benchmarks/results/learnability.json", learnability, "python benchmarks/learnability.py"),
    "learnability-seeds": ("benchmarks/results/learnability_seeds.json", learnability,
                           "python benchmarks/learnability.py --models tsn tsm --seeds 0 1 2 --out learnability_seeds"),
    "learnability-ep30": ("benchmarks/results/learnability_ep30.json", learnability, "python benchmarks/learnability.py"),
    "learnability-seeds-ep30": ("benchmarks/results/learnability_seeds_ep30.json", learnability,
                                "python benchmarks/learnability.py --models tsn tsm --seeds 0 1 2 --out learnability_seeds"),
    "recipe-search": ("benchmarks/results/recipe_search.json", recipe_search, "python benchmarks/recipe_search.py SPEC"),
    "online": ("benchmarks/results/online.json", online, "python benchmarks/online.py --run RUN"),
    "study-time": ("benchmarks/results/study_default.json", study_time, "make study; python benchmarks/study_time.py"),
    "online-clips": ("benchmarks/results/online_clips.json", online_clips,
                     "python benchmarks/online_clips.py --run RUN"),
    "checkpoint-rule": ("benchmarks/results/checkpoint_rule.json", checkpoint_rule,
                        "python benchmarks/checkpoint_rule.py --study STUDY"),
    "loader": ("benchmarks/results/loader.json", loader, "python benchmarks/loader.py"),
    "overhead": ("benchmarks/results/overhead.json", overhead, "python benchmarks/overhead.py --repeats 4"),
    "prepare-memory": ("benchmarks/results/prepare_memory.json", prepare_memory,
                       "python benchmarks/prepare_memory.py --scales 1 4"),
    "latency-repeat": ("benchmarks/results/latency_repeat.json", latency_repeat, "python benchmarks/latency_repeat.py"),
    "infer-speed": ("benchmarks/results/infer_speed.json", infer_speed, "python benchmarks/infer_speed.py"),
    "infer-speed-threads1": ("benchmarks/results/infer_speed_threads1.json", infer_speed,
                             "python benchmarks/infer_speed.py --threads 1"),
    "infer-parity": ("benchmarks/results/infer_speed.json", infer_parity, "python benchmarks/infer_speed.py"),
    "ddp-check": ("benchmarks/results/ddp_check.json", ddp_check, "OMP_NUM_THREADS=1 python benchmarks/ddp_check.py"),
    "schedule-full-4gpu": ("benchmarks/results/schedule_full_4gpu.json", schedule,
                           "python benchmarks/schedule.py --profile full --gpus 4"),
    "gpu-check-loader-cpu": ("benchmarks/results/gpu_check_loader_cpu.json", gpu_check,
                             "OMP_NUM_THREADS=1 python benchmarks/gpu_check.py --loader-only --out gpu_check_loader_cpu"),
    "gpu-check-tiny-cpu": ("benchmarks/results/gpu_check_tiny_cpu.json", gpu_check,
                           "OMP_NUM_THREADS=1 python benchmarks/gpu_check.py --tiny --iters 30 --warmup 5 --out gpu_check_tiny_cpu"),
    "throughput": ("benchmarks/results/throughput.json", throughput, "python benchmarks/throughput.py"),
    "throughput-epoch": ("benchmarks/results/throughput.json", throughput_epoch, "python benchmarks/throughput.py"),
    "models": ("params/models", models, ""),
}


def render(name: str) -> str:
    if name not in TABLES:
        raise SystemExit(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    source, build, command = TABLES[name]
    path = REPO / source
    if path.is_dir():   # read from the repository's own files, not measured
        return build({}).to_markdown(index=False) + f"\n\n*From `{source}/*.yaml`.*\n"
    if not path.is_file():
        return f"*No result yet: run `{command}`, which writes `{source}`.*\n"
    result = json.loads(path.read_text())
    table = build(result)
    table = table if isinstance(table, str) else table.to_markdown(index=False)
    return table + "\n\n" + source_line(path, result, command) + "\n"


def rewrite(text: str) -> str:
    return MARKER.sub(lambda m: m.group(1) + render(m.group("name")) + m.group(4), text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report pages that are out of date")
    a = ap.parse_args()
    stale = []
    for page in PAGES:
        old = page.read_text(encoding="utf-8")
        new = rewrite(old)
        if new != old:
            stale.append(page.relative_to(REPO))
            if not a.check:
                page.write_text(new, encoding="utf-8")
    if a.check and stale:
        print("out of date (run `make docs`): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(("rewrote: " + ", ".join(map(str, stale))) if stale and not a.check else "docs tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
