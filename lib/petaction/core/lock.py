"""One writer per results folder: a study, or one step run by hand (the CLI's prepare, train,
evaluate, or papermill on a notebook of a study), holds an exclusive lock on results/<study>/
for as long as it runs.

The lock is filelock's (flock on Unix): the operating system drops it when its holder dies,
however it dies, so a SIGKILLed study never leaves the folder locked; who held it (PID,
command, start time) is recorded beside it, which a second writer names when it refuses to
start, and a next holder names when it takes over from a holder that died. The study's own
kernels (papermill) and torchrun workers run under its lock: the holder puts the lock's
identity in their environment (ENV) and a nested acquisition with that identity passes.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

from . import atomic, paths

LOCK = ".petaction.lock"        # the flock file (empty)
HOLDER = ".petaction.lock.json"  # who holds it: pid, command, start time, token
ENV = "PETACTION_LOCK"          # "<lock file>|<token>": the holder's children run under its lock

_held: dict[Path, str] = {}     # lock file -> token, held by this process


class LockBusy(RuntimeError):
    """Another process writes this results folder."""


def lock_files(study: str, results_dir=None) -> tuple[Path, Path]:
    folder = paths.study_dir(study, results_dir)
    return folder / LOCK, folder / HOLDER


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive
        return True
    return True


def holder(info_file: Path) -> dict | None:
    return atomic.read_json(info_file, log=lambda _: None)


def describe(h: dict) -> str:
    return f"PID {h.get('pid')} ({h.get('command', '?')}, started {h.get('started', '?')})"


def inherited(lock_file: Path, info_file: Path) -> bool:
    """True when this process runs under a holder's lock: a kernel or worker the holder
    started, with its identity in ENV, while the holder's record still names that identity."""
    env = os.environ.get(ENV, "")
    path, _, token = env.partition("|")
    if not token or Path(path) != lock_file:
        return False
    h = holder(info_file)
    return bool(h) and h.get("token") == token and alive(int(h.get("pid", 0)))


def busy_message(folder: Path, info_file: Path, lock_file: Path) -> str:
    h = holder(info_file)
    who = describe(h) if h else "a process that has not recorded itself yet"
    pid = h.get("pid") if h else None
    wait = (f"wait for it to end (`tail --pid={pid} -f /dev/null`) and run again" if pid
            else "wait for it to end and run again")
    return (f"{folder} is being written by {who}: one writer per results folder. Either {wait}, "
            f"use another study name (-p study NAME), or, if that process is not running (a lock on a "
            f"network filesystem can outlive it), remove {lock_file} and {info_file}")


def check_free(study: str, results_dir=None) -> None:
    """LockBusy when another process holds the folder's lock: the CLI asks before its imports
    of several seconds, so a second writer is refused at once (hold() still decides)."""
    probe = acquire(*lock_files(study, results_dir))
    if probe is not None:
        probe.release()


def acquire(lock_file: Path, info_file: Path):
    """The folder's lock, taken now (None when this process or its holder parent has it);
    LockBusy at once when another process holds it."""
    from filelock import FileLock, Timeout
    if lock_file in _held or inherited(lock_file, info_file):
        return None
    lock = FileLock(str(lock_file), thread_local=False)
    try:
        lock.acquire(blocking=False)
    except Timeout:
        raise LockBusy(busy_message(lock_file.parent, info_file, lock_file)) from None
    return lock


@contextlib.contextmanager
def hold(study: str, results_dir=None, what: str = "", log=print):
    """Hold the lock on results/<study>/ for the block; LockBusy at once when another process
    holds it. Re-entrant in this process and in the holder's children (ENV)."""
    lock_file, info_file = lock_files(study, results_dir)
    lock = acquire(lock_file, info_file)
    if lock is None:
        yield
        return
    token, before = uuid.uuid4().hex, os.environ.get(ENV)
    try:
        old = holder(info_file)
        if old and old.get("token"):
            log(f"[lock] {lock_file.parent}: the last writer, {describe(old)}, ended without releasing its "
                "lock (killed?): taking it over; its unfinished steps re-run")
        atomic.write_json(info_file, {"pid": os.getpid(), "command": what or shlex.join(sys.argv),
                                      "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "token": token}, indent=1)
        _held[lock_file] = token
        os.environ[ENV] = f"{lock_file}|{token}"
        yield
    finally:
        _held.pop(lock_file, None)
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        with contextlib.suppress(OSError):
            info_file.unlink()
        lock.release()
