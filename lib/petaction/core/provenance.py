"""What made a result: git commit, library versions, hardware. Saved beside every result."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .paths import REPO

LIBRARIES = ("torch", "mmengine", "mmcv", "mmdet", "mmaction2", "numpy", "opencv-python",
             "papermill", "nbconvert", "matplotlib", "pandas")


def git_state() -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=20).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", None
    return {"commit": commit or "unknown", "dirty": dirty}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict:
    import torch
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpus": gpus, "platform": platform.platform()}


def collect() -> dict:
    return {"time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": git_state(), "versions": versions(), "hardware": hardware()}


def files_digest(files) -> str:
    """Content hash of small files (names and bytes): a step's inputs, a generator's source."""
    h = hashlib.sha256()
    for f in sorted(map(Path, files)):
        h.update(str(f.name).encode())
        h.update(f.read_bytes() if f.is_file() else b"<missing>")
    return h.hexdigest()[:16]


def command_line() -> str:
    """The running command as typed from the repository root (python benchmarks/x.py ARGS)."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO)
    except ValueError:
        pass
    return shlex.join(["python", str(script), *sys.argv[1:]])


def require_clean(what: str = "a result under benchmarks/results/") -> None:
    """Exit 2 with one line unless the git tree is clean: a committed result comes from a committed
    script on a clean tree, at the commit it records. Called before a benchmark's work starts, so
    a long run is not spent on a result that cannot be committed. PETACTION_ALLOW_DIRTY=1 runs
    anyway (an exploratory run: its provenance says dirty)."""
    if os.environ.get("PETACTION_ALLOW_DIRTY") == "1":
        return
    state = git_state()
    if state["dirty"] is not False:
        print(f"refusing to write {what}: the git tree {'has uncommitted changes' if state['dirty'] else 'cannot be read'}; "
              "commit or stash them and run again (PETACTION_ALLOW_DIRTY=1 for a run not to commit)", file=sys.stderr)
        raise SystemExit(2)


def save_benchmark(name: str, result: dict, command: str | None = None) -> None:
    """benchmarks/results/<name>.json: a benchmark's figures with the command that made them (the
    running one unless the result names it) and the provenance beside them."""
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    result = {"command": command or command_line(), **result}   # a result's own "command" wins
    (out / f"{name}.json").write_text(json.dumps({**result, "provenance": collect()}, indent=1, default=str))
