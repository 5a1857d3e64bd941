"""A whole study killed anywhere (SIGKILL to its process group), or stopped by a full disk,
and run again until done reaches the uninterrupted study's results; no process outlives a
killed study; a second writer is refused while it runs; the next start takes a killed study's
lock over.

One tiny study (two small models trained one after the other, no detector), run
uninterrupted once; then a second copy interrupted at points spread over it, each chosen by
watching the study's files and console lines, and re-run after each: killed during the
preparation, early in a training, after a training's checkpoint, between trainings, during
the evaluation and during the report; out of space while saving a checkpoint and while
writing an evaluation table.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY_PREPARE
from petaction.core import lock, paths

pytestmark = pytest.mark.slow

STUDY = "killtest"
CONFIG = {"study": STUDY, "profile": "tiny", "models": ["tsn", "tsm"], "prepare": TINY_PREPARE,
          "detector": False, "cpu_jobs": 1, "gpus": 0, "evaluate": {"cost_repeats": 2}}
TAG = "PETACTION_KILLTEST"   # in every process a study started (kernels inherit the environment)
# measured, not results: what a re-run may change
TIMING = re.compile(r"latency|_ms$|time|_s$|cpu|realtime|headroom|throughput|keeps_up|mem|per_s|repeats")


class Study:
    """`python -m petaction study` in a session of its own, its console lines collected."""

    def __init__(self, config: Path, env: dict | None = None):
        self.tag = uuid.uuid4().hex
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "petaction", "study", "-f", str(config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True, cwd=paths.REPO,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", TAG: self.tag, **(env or {})})
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def saw(self, prefix: str) -> bool:
        return any(line.startswith(prefix) for line in self.lines)

    def until(self, ready, timeout: float = 600) -> bool:
        """True once ready() holds while the study runs; False when it ended first."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if ready():
                return self.proc.poll() is None
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        raise TimeoutError(f"waited {timeout} s:\n" + "".join(self.lines[-20:]))

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        left = wait_gone(self.tag)
        assert not left, f"processes left behind by the killed study: {left}"

    def finish(self, timeout: float = 900) -> int:
        rc = self.proc.wait(timeout)
        self.reader.join(10)
        return rc


def tagged(tag: str) -> list[str]:
    """Processes whose environment holds this study's tag (its kernels, their workers)."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if f"{TAG}={tag}".encode() in (p / "environ").read_bytes():
                    cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    found.append(f"{p.name}: {cmd[:120]}")
            except OSError:
                continue
    return found


def wait_gone(tag: str, timeout: float = 20) -> list[str]:
    t0 = time.time()
    while (left := tagged(tag)) and time.time() - t0 < timeout:
        time.sleep(0.2)
    return left


def write_config(root: Path, **extra) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    f = root / "study.yaml"
    f.write_text(yaml.safe_dump({**CONFIG, "results_dir": str(root), **extra}))
    return f


def results(root: Path) -> dict:
    """What must not depend on where the study was killed: the evaluation's tables and
    decisions (timing aside) and every run's per-clip scores."""
    ev = root / STUDY / "evaluation"
    out = {}
    for name in ("summary.csv", "claims.csv", "runs.csv"):
        df = pd.read_csv(ev / name)
        out[name] = df[[c for c in df.columns if not TIMING.search(c)]]
    out["decisions.json"] = untimed(json.loads((ev / "decisions.json").read_text()))
    for z in sorted((root / STUDY / "models").glob("*/seed*/*_scores.npz")):
        with np.load(z) as a:
            out[str(z.relative_to(root))] = {k: a[k] for k in a.files}
    return out


def untimed(obj):
    if isinstance(obj, dict):
        return {k: untimed(v) for k, v in obj.items() if not TIMING.search(str(k))}
    if isinstance(obj, list):
        return [untimed(v) for v in obj]
    return obj


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], pd.DataFrame):
            pd.testing.assert_frame_equal(a[k], b[k], obj=k)
        elif k.endswith(".npz"):
            assert a[k].keys() == b[k].keys(), k
            for name in a[k]:
                np.testing.assert_array_equal(a[k][name], b[k][name], err_msg=f"{k}: {name}")
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    root = tmp_path_factory.mktemp("uninterrupted")
    s = Study(write_config(root))
    assert s.finish() == 0, "".join(s.lines[-30:])
    yield root, results(root)
    for suffix in ("html", "pdf"):
        (paths.REPO / "report" / f"{STUDY}.{suffix}").unlink(missing_ok=True)


def running(root: Path, name: str) -> list[Path]:
    """Run folders where `name` exists and metrics.json does not: a training under way."""
    return [r for r in (root / STUDY / "models").glob("*/seed*") if (r / name).exists() and not (r / "metrics.json").exists()]


# ---- a full disk -------------------------------------------------------------------------------

# Loaded by every Python the study starts (PYTHONPATH): the first atomic write to a file whose
# name holds FULL_DISK_AT runs out of space partway, as a filling disk would.
FULL_DISK = '''
import errno, os
match = os.environ.get("FULL_DISK_AT")
if match:
    from petaction.core import atomic
    real = atomic._tmp_file

    class Full:
        def __init__(self, f):
            self.f = f
        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        def __getattr__(self, name):
            return getattr(self.f, name)

    def tmp_file(tmp, *args):
        f = real(tmp, *args)
        return Full(f) if match in tmp.name else f
    atomic._tmp_file = tmp_file
'''


def full_disk_at(tmp_path: Path, match: str) -> dict:
    (tmp_path / "sitecustomize.py").write_text(FULL_DISK)
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]), "FULL_DISK_AT": match}


def interruptions(root: Path):
    """(name, what, ready(study)): kills at points spread over the study, each reached by a
    later re-run, and two runs out of disk space (what: the file name a write fails on)."""
    data, ev = root / STUDY / "data.partial", root / STUDY / "evaluation"
    return [
        ("during preparation", "kill", lambda s: (data / "frames").is_dir() and any((data / "frames").iterdir())),
        ("early in a training", "kill", lambda s: bool(running(root, "config.py"))),
        ("after a training's checkpoint", "kill", lambda s: bool(running(root, "checkpoints.sha256"))),
        ("between trainings", "kill", lambda s: s.saw("[done] train ")),
        ("a checkpoint save on a full disk", "epoch_1.pth", None),
        ("during evaluation", "kill", lambda s: s.saw("[run ] evaluate") and (ev / "runs.csv").is_file()),
        ("an evaluation table on a full disk", "runs.csv", None),
        ("during the report", "kill", lambda s: s.saw("[run ] report") and (root / STUDY / "report" / "report.ipynb").is_file()),
    ]


def second_writer_refused(s: Study, config: Path) -> None:
    """A second study on the same folder while `s` runs: exit 2 at once, naming the holder."""
    assert s.until(lambda: s.saw("[run ] prepare")), "".join(s.lines)
    t0 = time.time()
    second = subprocess.run([sys.executable, "-m", "petaction", "study", "-f", str(config)],
                            capture_output=True, text=True, cwd=paths.REPO)
    waited = time.time() - t0
    assert second.returncode == 2, second.stderr
    assert f"PID {s.proc.pid}" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert waited < 10, f"the second writer took {waited:.1f} s to be refused"


def restart(config: Path, env: dict | None = None) -> Study:
    """The same command after a kill: it takes the dead study's lock over, saying so."""
    s = Study(config, env)
    assert s.until(lambda: s.saw("[lock] ") or s.saw("[run ]") or s.saw("[skip]")) or s.proc.poll() is not None
    assert s.saw("[lock] ") and "taking it over" in "".join(s.lines), "".join(s.lines)
    return s


def out_of_space(root: Path, config: Path, tmp_path: Path, file_name: str) -> None:
    """A run whose first write of `file_name` fails partway for want of space: the study
    stops with one line naming the file and the space left; that file is left as it was
    (whole or absent) and its step not done."""
    target = {"epoch_1.pth": root / STUDY / "models" / "tsm" / "seed0",
              "runs.csv": root / STUDY / "evaluation"}[file_name]
    before = (target / file_name).read_bytes() if (target / file_name).is_file() else None
    s = restart(config, full_disk_at(tmp_path, file_name))
    assert s.finish() == 1, "".join(s.lines[-30:])
    stop = [line for line in s.lines if line.startswith("[stop] the disk is full")]
    assert len(stop) == 1 and file_name in stop[0] and " free of " in stop[0], "".join(s.lines[-30:])
    assert not s.saw("[run ] report") and not wait_gone(s.tag)
    now = (target / file_name).read_bytes() if (target / file_name).is_file() else None
    assert now == before and not list(target.glob(".*.tmp"))       # nothing half-written
    stamp = "train.stamp.json" if file_name.endswith(".pth") else "evaluate.stamp.json"
    assert not (target / stamp).exists()                            # the step is not done
    if file_name.endswith(".pth"):
        assert not (target / "metrics.json").exists()


def test_killed_anywhere_or_out_of_space_the_rerun_gives_the_same_results(baseline, tmp_path):
    """Kill the study (SIGKILL to its process group) at points spread over it, or let a write
    fail for want of space, and run the same command again each time: the last run ends with
    the uninterrupted study's results and no process is left behind; while it runs a second
    writer is refused; each start after a kill takes the dead study's lock over."""
    _, expected = baseline
    root = tmp_path / "killed"
    config = write_config(root)
    done = []
    s = Study(config)
    second_writer_refused(s, config)
    for name, what, ready in interruptions(root):
        if what == "kill":
            s = s or restart(config)
            if s.until(lambda: ready(s)):
                s.kill()
                done.append(name)
                s = None
        else:   # follows a kill
            assert s is None, f"{name}: the study was not interrupted before"
            out_of_space(root, config, tmp_path, what)
            done.append(name)
            s = Study(config)
    s = s or restart(config)
    assert s.finish() == 0, "".join(s.lines[-30:])
    assert len(done) == 8, f"interruptions that happened: {done}"
    assert not tagged(s.tag) and not (root / STUDY / lock.HOLDER).exists()
    assert_same(results(root), expected)
