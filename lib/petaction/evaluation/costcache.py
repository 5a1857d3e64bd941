"""Timed figures kept until one of their own inputs changes.

Evaluation re-runs whenever the package's source changes (a report or docs edit included), and
re-scoring the runs takes seconds; re-timing every model takes minutes and gives the same
figures. So each model's cost row (cost.measure_runs) and the detector's latency (evaluate's
detector_cost) are cached in ``evaluation/cost_cache/<name>.json`` with the key they were timed
under, and are timed again only when that key changes:

- what is timed: a run's resolved architecture (the ``model`` of its config.py) and the input
  shape its parameters give (forward.example_inputs), or the detector's config and checkpoint;
- how it is timed: the timing code's source (cost.py, forward.py, core/timing.py and the
  caller's own files) and its settings (update rate, repeats, batch);
- where: the machine (CPU, cores, torch threads, GPUs) and the library versions.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core import atomic, provenance

FOLDER = "cost_cache"
PKG = Path(__file__).resolve().parents[1]
TIMING_CODE = [PKG / "evaluation" / "cost.py", PKG / "evaluation" / "forward.py", PKG / "core" / "timing.py",
               PKG / "evaluation" / "costcache.py"]


def machine() -> dict:
    """What the figures were measured on (provenance's hardware and library versions)."""
    return {"hardware": provenance.hardware(), "versions": provenance.versions()}


def key(what: dict, code: list[Path] = (), settings: dict | None = None) -> str:
    """A digest of what is timed, the timing code (TIMING_CODE and ``code``), its settings and the machine."""
    blob = json.dumps({"what": what, "code": provenance.files_digest([*TIMING_CODE, *code]),
                       "settings": settings or {}, "machine": machine()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def path(out: Path, name: str) -> Path:
    return Path(out) / FOLDER / f"{name}.json"


def load(out: Path, name: str, k: str) -> dict | None:
    """The cached figures of ``name`` when they were measured under key ``k``, else None."""
    f = path(out, name)
    try:
        rec = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    return rec["value"] if rec.get("key") == k else None


def _plain(x):
    return x.item() if hasattr(x, "item") else str(x)   # NumPy scalars as numbers, not strings


def save(out: Path, name: str, k: str, value: dict) -> None:
    f = path(out, name)
    f.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_json(f, {"key": k, "value": value}, indent=1, default=_plain)


def cached(out: Path, name: str, k: str, compute) -> dict:
    """compute()'s figures, or the cached ones measured under the same key."""
    hit = load(out, name, k)
    if hit is not None:
        return hit
    value = compute()
    save(out, name, k, value)
    return value


def detector_key(det_dir: Path) -> str:
    """The detector's latency inputs: its config's model and test data, its selected checkpoint
    (the boxes it keeps, so its post-processing time, depend on the weights) and its timing code."""
    from mmengine.config import Config
    det_dir = Path(det_dir)
    cfg = Config.fromfile(str(det_dir / "config.py"), import_custom_modules=False)
    ckpt = det_dir / json.loads((det_dir / "metrics.json").read_text())["best_checkpoint"]
    return key({"model": cfg.model.to_dict(), "test_data": cfg.test_dataloader.dataset.to_dict(),
                "checkpoint": provenance.files_digest([ckpt])},
               code=[PKG / "training" / "detector.py"])
