"""Merging nested settings dicts, as the params layers and the mmengine configs need it."""
from __future__ import annotations

import copy


def deep_merge(base: dict, over: dict) -> dict:
    """Recursive dict merge (a copy); `over` wins; lists and scalars are replaced whole.
    As in mmengine configs, a dict with `_delete_: true` replaces instead of merging; the
    marker stays (params layers merge before the mmaction2 base does) until strip_delete."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and v.get("_delete_"):
            out[k] = copy.deepcopy(v)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def strip_delete(d):
    """The dict without `_delete_` markers, once every layer has been merged."""
    if isinstance(d, dict):
        return {k: strip_delete(v) for k, v in d.items() if k != "_delete_"}
    return d
