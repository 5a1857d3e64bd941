"""Glue between this project and the installed OpenMMLab packages: what makes `import mmaction`
work on the pinned versions, and where their files are. Nothing here runs on import:
petaction.setup() calls install_drn_standin (with the checkpoint loaders and the registrations).
"""
from __future__ import annotations

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


def mm_configs_dir() -> Path:
    """The installed mmaction2's config tree (its _base_ models, the model zoo's metafiles)."""
    spec = importlib.util.find_spec("mmaction")
    return Path(spec.submodule_search_locations[0]) / ".mim" / "configs"
