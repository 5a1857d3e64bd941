"""Checkpoint trust: which files load fully (those this study wrote, by hash) and which load
weights-only (any other: a zoo download, a checkpoint given as init), through mmengine's loader.

register_loader() installs the rule in mmengine's CheckpointLoader (petaction.setup() calls it);
TrustCheckpointsHook (training.mmhooks) records every checkpoint a training writes.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .pretrained import fetch


TRUST_FILE = "checkpoints.sha256"   # beside the checkpoints this study wrote


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_checkpoint(path: str | Path, digest: str | None = None, name: str | None = None) -> None:
    """Note a checkpoint this study just wrote (its hash; `digest` and `name` for content about
    to replace the file `name`) as trusted for loading. One short appended line: a kill while
    appending leaves a partial hash that matches no file."""
    path = Path(path)
    with open(path.parent / TRUST_FILE, "a") as f:
        f.write(f"{digest or sha256(path)}  {name or path.name}\n")


def is_trusted(path: str | Path) -> bool:
    path = Path(path)
    manifest = path.parent / TRUST_FILE
    if not manifest.is_file():
        return False
    known = {line.split()[0] for line in manifest.read_text().splitlines() if line.strip()}
    return sha256(path) in known


def register_atomic_backend() -> None:
    """mmengine's local file backend, writing whole or not at all (core.atomic): a checkpoint
    save that a kill or a full disk cuts short leaves the previous file, never a truncated
    .pth (mmengine writes it in place). put_text alike."""
    from mmengine.fileio.backends import LocalBackend, register_backend

    from ..core import atomic

    class AtomicLocalBackend(LocalBackend):
        def put(self, obj: bytes, filepath) -> None:
            os.makedirs(os.path.dirname(os.path.abspath(filepath)), exist_ok=True)
            atomic.write_bytes(filepath, obj)

        def put_text(self, obj: str, filepath, encoding: str = "utf-8") -> None:
            os.makedirs(os.path.dirname(os.path.abspath(filepath)), exist_ok=True)
            atomic.write_text(filepath, obj, encoding=encoding)

    register_backend("local", AtomicLocalBackend, force=True, prefixes="")


def load_checkpoint_file(filename, map_location):
    """mmengine's local checkpoint loader, with torch >= 2.6's weights_only handled.

    torch.load now defaults to weights_only=True, and mmengine 0.10.7 does not pass it: its
    own checkpoints (whose message hub pickles HistoryBuffer objects and bound methods via
    `getattr`) then fail to load, so resume and best-checkpoint testing break. Allowing
    `getattr` in the weights-only unpickler would let any file run code, so instead: a file
    whose hash this study recorded when it wrote it (training.mmhooks.TrustCheckpointsHook) loads
    fully; any other file (a zoo download, a checkpoint given as init) loads weights-only,
    refusing arbitrary pickles as torch does.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return torch_load(filename, map_location, weights_only=not is_trusted(filename))


def torch_load(filename: str, map_location, weights_only: bool):
    """torch.load, and for a file refused weights-only one message saying why and what to do
    (instead of the unpickler's traceback)."""
    import pickle

    import torch
    try:
        return torch.load(filename, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as e:
        if not weights_only:
            raise
        raise ValueError(f"{filename} is not a checkpoint this study wrote, so it loads weights-only, and it "
                         f"holds more than tensors ({str(e).splitlines()[0]}). If you trust it, save its weights "
                         "alone: torch.save(torch.load(f, weights_only=False)['state_dict'], 'weights.pth')") from None


def load_url_weights_only(filename, map_location=None):
    """mmengine's http(s) scheme, with the trust rule: the file goes to (or is found in) the
    cache mmengine's own loader uses (<torch hub dir>/checkpoints/<file name>) and, being
    downloaded, loads weights-only (mmengine's load_url would unpickle anything)."""
    return torch_load(str(fetch(filename, f"checkpoint {filename}")), map_location, weights_only=True)


def register_loader() -> None:
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes="", loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(prefixes=("http://", "https://"), loader=load_url_weights_only, force=True)
