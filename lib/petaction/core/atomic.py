"""Whole-or-absent writes for the files a later step or a re-run trusts (metrics.json, the
per-clip scores, the step stamps, the evaluation's tables, checkpoints).

Each write goes to a temporary file in the destination's folder, is flushed and fsynced, and
then moved over the destination with os.replace (atomic on one filesystem): a kill or a full
disk in the middle leaves the old file or none, never a truncated one. A full disk raises
DiskFull, one line naming the file and the space left.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
from pathlib import Path


class DiskFull(RuntimeError):
    """A write ran out of space; the destination was left as it was."""


def free_space(folder: Path) -> str:
    """'<free> free of <total> on the disk of <folder>' (shutil.disk_usage)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    u = shutil.disk_usage(folder)
    return f"{human(u.free)} free of {human(u.total)}"


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def disk_full(path: Path) -> DiskFull:
    return DiskFull(f"no space left on the disk writing {path} ({free_space(Path(path).parent)}): "
                    "free some space and run again (the file was not replaced, nothing half-written is kept)")


def _tmp_file(tmp: Path, binary: bool, encoding: str | None, newline: str | None):
    """The temporary file's handle (a seam the disk-full tests replace)."""
    return open(tmp, "wb") if binary else open(tmp, "w", encoding=encoding or "utf-8", newline=newline)


@contextlib.contextmanager
def open_atomic(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None):
    """A file handle whose content replaces `path` when the block ends without an error; on an
    error (a kill leaves only the hidden temporary file, which a later write replaces)
    `path` is untouched. mode: "w" (text) or "wb"."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        f = _tmp_file(tmp, "b" in mode, encoding, newline)
        try:
            yield f
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(path) from None
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with open_atomic(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with open_atomic(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def plain(x):
    """JSON for the NumPy scalars a result may hold (json.dumps' default=): bool stays bool, not 1.0."""
    import numpy as np
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    raise TypeError(f"{type(x).__name__} is not JSON serialisable")


def write_json(path: str | Path, obj, **dumps_kw) -> Path:
    return write_text(path, json.dumps(obj, **dumps_kw))


def savez(path: str | Path, **arrays) -> Path:
    """np.savez through a buffer (np.savez given a path would append .npz to the temporary name)."""
    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes(path, buf.getvalue())


def to_csv(df, path: str | Path, **to_csv_kw) -> Path:
    """DataFrame.to_csv, whole or not at all."""
    with open_atomic(path, "w", newline="") as f:
        df.to_csv(f, **to_csv_kw)
    return Path(path)


def savefig(fig, path: str | Path, **savefig_kw) -> Path:
    with open_atomic(path, "wb") as f:
        fig.savefig(f, format=Path(path).suffix.lstrip("."), **savefig_kw)
    return Path(path)


def read_json(path: str | Path, what: str = "", log=print):
    """The JSON in `path`, or None when it is missing or cannot be parsed (a file a killed
    run of an older version left half-written): the caller treats its step as not done, and
    an unreadable file is named in one line."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        log(f"[redo] {path} cannot be read ({type(e).__name__}: {str(e).splitlines()[0]})"
            + (f": {what}" if what else ""))
        return None


def readable(path: str | Path) -> bool:
    """Whether a file a step trusts is there and parses: JSON, an npz archive (every array
    loads), a CSV (pandas); any other kind only has to exist."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".npz":
            import numpy as np
            with np.load(path) as z:
                for k in z.files:
                    z[k]
        elif path.suffix == ".csv":
            import pandas as pd
            pd.read_csv(path)
    except Exception:   # any parse failure (zipfile, JSON, pandas, numpy raise their own kinds)
        return False
    return True
