"""No process outlives the study that started it: a child asks Linux to SIGKILL it when its
parent dies (PR_SET_PDEATHSIG), however the parent dies.

Needed because a kill of the study's process group misses what runs in another session
(jupyter_client starts each kernel in a session of its own), ipykernel's own parent check
misses a kernel whose parent died while it was starting, and a pool worker forked by a kernel
would wait on its queue for ever.
"""
from __future__ import annotations

import os
import signal


def die_with_parent(parent: int | None = None) -> None:
    """In the child: SIGKILL when the parent dies; exits now if it died already. `parent`:
    the expected parent's PID (default: the current parent)."""
    import ctypes
    parent = os.getppid() if parent is None else parent
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))   # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):   # not Linux: ipykernel's and the pools' own checks only
        return
    if os.getppid() != parent:   # it died before the line above
        os._exit(1)


def dies_with(parent: int):
    """A Popen preexec_fn: the child dies with `parent` (call with os.getpid() in the parent)."""
    return lambda: die_with_parent(parent)
