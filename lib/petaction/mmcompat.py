"""Glue between this project and the installed OpenMMLab packages.

Importing this module (configs name it in `custom_imports`, so mmaction2's own tools get it
too) makes `import mmaction` work on the pinned versions and registers what we add.
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from pathlib import Path


def install_drn_standin() -> None:
    """mmaction2 1.2.0's wheel imports mmaction.models.localizers.drn, which it does not ship
    (upstream open-mmlab/mmaction2 issue #2714), so `import mmaction.models` fails. Register a
    minimal stand-in for that one module; DRN (a temporal grounding localizer) is unused here."""
    name = "mmaction.models.localizers.drn"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec("mmaction")
    if spec is None or not spec.submodule_search_locations:
        return
    if (Path(spec.submodule_search_locations[0]) / "models" / "localizers" / "drn").is_dir():
        return   # a fixed mmaction2 release ships it: use the real one

    class DRN:  # noqa: D401 - stand-in
        """Stand-in for mmaction2's DRN localizer, missing from the 1.2.0 wheel (#2714)."""

        def __init__(self, *args, **kwargs):
            raise NotImplementedError("DRN is not shipped in the mmaction2 1.2.0 wheel (upstream #2714)")

    pkg = types.ModuleType(name)
    pkg.__path__ = []
    mod = types.ModuleType(name + ".drn")
    mod.DRN = DRN
    pkg.drn = mod
    sys.modules[name] = pkg
    sys.modules[name + ".drn"] = mod


install_drn_standin()


def checkpoint_safe_globals() -> list:
    """The non-tensor types an mmengine 0.10.7 checkpoint pickles (its message hub's
    HistoryBuffer and the numpy scalars/arrays in its meta)."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    kinds = [HistoryBuffer, np.ndarray, np.dtype, np.core.multiarray._reconstruct,
             np.core.multiarray.scalar]
    kinds += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    return kinds


@contextlib.contextmanager
def trusted_checkpoints():
    """Let mmengine load its own checkpoints under torch >= 2.6.

    torch.load now defaults to weights_only=True and mmengine 0.10.7 does not pass it, so
    loading a checkpoint mmengine itself wrote fails. Rather than turning weights_only off
    (which would unpickle anything), allow exactly the few types mmengine writes, for the
    duration of the load: any other pickled object is still refused.
    """
    import torch
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        yield

from . import mmhooks, mmmodels  # noqa: E402,F401  (registers our hook and backbone adapter)
