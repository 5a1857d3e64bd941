"""Whole-or-absent writes, the results folder's lock, and the readers that refuse a truncated
file (fast: no training)."""
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from petaction.core import atomic, lock


class FullAfter:
    """A file whose writes fail with ENOSPC once `room` bytes are in (the disk fills up)."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            self.f.write(data[:self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


def disk_fills_after(monkeypatch, room: int, match: str = ""):
    """Every atomic write to a file whose name contains `match` runs out of space after `room` bytes."""
    real = atomic._tmp_file

    def tmp_file(tmp, binary, encoding, newline):
        f = real(tmp, binary, encoding, newline)
        return FullAfter(f, room) if match in tmp.name else f
    monkeypatch.setattr(atomic, "_tmp_file", tmp_file)


def test_a_write_cut_short_leaves_the_old_file_and_names_the_free_space(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic.write_json(target, {"top1": 0.5})
    disk_fills_after(monkeypatch, 10)
    with pytest.raises(atomic.DiskFull) as e:
        atomic.write_json(target, {"top1": 0.75, "pad": "x" * 1000})
    msg = str(e.value)
    assert str(target) in msg and " free of " in msg and len(msg.splitlines()) == 1
    assert json.loads(target.read_text()) == {"top1": 0.5}          # the old file, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]   # no temporary left
    for write in (lambda p: atomic.savez(p, a=np.arange(1000)), lambda p: atomic.to_csv(pd.DataFrame({"a": range(500)}), p)):
        with pytest.raises(atomic.DiskFull):
            write(tmp_path / "new.bin")
        assert not (tmp_path / "new.bin").exists()


def test_an_error_inside_the_block_replaces_nothing(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic.open_atomic(target) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_readable_refuses_truncated_json_npz_and_csv(tmp_path):
    atomic.write_json(tmp_path / "m.json", {"a": 1})
    atomic.savez(tmp_path / "s.npz", scores=np.ones((4, 3)))
    atomic.to_csv(pd.DataFrame({"a": [1, 2]}), tmp_path / "t.csv", index=False)
    for name in ("m.json", "s.npz", "t.csv"):
        assert atomic.readable(tmp_path / name)
        data = (tmp_path / name).read_bytes()
        (tmp_path / name).write_bytes(data[: len(data) // 2] if name != "t.csv" else b"")
        assert not atomic.readable(tmp_path / name), name
    assert not atomic.readable(tmp_path / "missing.json")


def test_a_step_with_a_truncated_output_is_not_fresh(tmp_path):
    from petaction import study
    done, scores = tmp_path / "metrics.json", tmp_path / "test_scores.npz"
    step = study.Step("train x", "train", tmp_path / "train.ipynb", {"a": 1}, "inputs", done, trusts=(scores,))
    atomic.write_json(done, {"top1": 1.0})
    atomic.savez(scores, scores=np.ones((3, 2)))
    atomic.write_json(step.stamp_file, step.stamp)
    lines = []
    assert step.fresh(lines.append) and not lines
    scores.write_bytes(scores.read_bytes()[:40])                     # a write a kill cut short
    assert not step.fresh(lines.append)
    assert len(lines) == 1 and "test_scores.npz" in lines[0] and "re-runs" in lines[0]
    atomic.savez(scores, scores=np.ones((3, 2)))
    step.stamp_file.write_text('{"parameters": {"a"')                # a truncated stamp
    lines.clear()
    assert not step.fresh(lines.append) and len(lines) == 1 and "cannot be read" in lines[0]


def test_evaluation_counts_a_run_with_truncated_scores_as_not_done(tmp_path, capsys):
    from petaction.evaluation import evaluate
    run = tmp_path / "models" / "tsn" / "seed0"
    run.mkdir(parents=True)
    atomic.write_json(run / "metrics.json", {"top1": 1.0})
    (run / "test_scores.npz").write_bytes(b"PK\x03\x04 cut")
    done, failed = evaluate.find_runs(tmp_path)
    assert done == [] and failed[0]["model"] == "tsn" and "test_scores.npz" in failed[0]["error"]
    assert "[redo]" in capsys.readouterr().out


# ---- the lock ---------------------------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time
    from petaction.core import lock
    with lock.hold(sys.argv[1], sys.argv[2], what="holder for a test"):
        print("held", flush=True)
        time.sleep(600)
""")


def start_holder(study, results):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, study, str(results)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_is_refused_at_once_and_a_dead_holders_lock_taken_over(tmp_path):
    proc = start_holder("s", tmp_path)
    try:
        t0 = time.time()
        with pytest.raises(lock.LockBusy) as e:
            with lock.hold("s", tmp_path):
                pass
        msg = str(e.value)
        assert time.time() - t0 < 5 and f"PID {proc.pid}" in msg and "holder for a test" in msg
        assert "started " in msg and f"tail --pid={proc.pid}" in msg and lock.LOCK in msg
        with lock.hold("other", tmp_path):     # another study name is not blocked
            pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    said = []
    with lock.hold("s", tmp_path, log=said.append):   # the dead holder's lock: taken over, with a message
        assert json.loads((tmp_path / "s" / lock.HOLDER).read_text())["pid"] == os.getpid()
        with lock.hold("s", tmp_path):                 # re-entrant in the holder
            pass
    assert len(said) == 1 and f"PID {proc.pid}" in said[0] and "taking it over" in said[0]
    assert not (tmp_path / "s" / lock.HOLDER).exists()


def test_the_holders_children_run_under_its_lock(tmp_path):
    """A study's kernels inherit its lock (PETACTION_LOCK); anyone else with a stale or forged
    identity does not."""
    child = [sys.executable, "-c", "import sys; from petaction.core import lock\n"
             "with lock.hold('s', sys.argv[1]): print('ok')", str(tmp_path)]
    with lock.hold("s", tmp_path):
        r = subprocess.run(child, capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
        forged = {**os.environ, lock.ENV: os.environ[lock.ENV].split("|")[0] + "|forged"}
        r = subprocess.run(child, capture_output=True, text=True, env=forged)
        assert r.returncode != 0 and "LockBusy" in r.stderr
    assert lock.ENV not in os.environ
