"""Merging nested settings dicts, as the params layers and the mmengine configs need it."""
from __future__ import annotations

import copy

from mmengine.config import Config, ConfigDict

from .errors import ParamError


def deep_merge(base: dict, over: dict) -> dict:
    """`over` layered on `base`, as mmengine merges configs (a copy; mmengine's merge): dicts
    merge key by key, lists and scalars are replaced whole, a dict with `_delete_: true`
    replaces the one under it, and a dict over a value that is not one is an error naming
    `_delete_`. mmengine drops the marker once it has replaced something; here it stays
    (keep_delete_markers), because the params layers merge before the mmaction2 base model
    does, which it must replace too, until strip_delete."""
    try:
        merged = Config._merge_a_into_b(copy.deepcopy(over), ConfigDict(copy.deepcopy(base)))
    except TypeError as e:   # e.g. backbone: {...} over backbone: null
        raise ParamError(str(e)) from None
    return keep_delete_markers(merged.to_dict(), over)


def keep_delete_markers(merged: dict, over: dict) -> dict:
    """`merged` with the `_delete_` markers `over` has, where mmengine's merge removed them."""
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            if "_delete_" in v:
                merged[k]["_delete_"] = v["_delete_"]
            keep_delete_markers(merged[k], v)
    return merged


def strip_delete(d):
    """The dict without `_delete_` markers, once every layer has been merged."""
    if isinstance(d, dict):
        return {k: strip_delete(v) for k, v in d.items() if k != "_delete_"}
    return d


def from_dotted(pairs) -> dict:
    """`(key, value)` pairs as one nested dict, as mmengine's `--cfg-options` reads them: a
    dotted key `prepare.seed` is `{prepare: {seed: value}}`. The pairs merge in order with
    deep_merge, so `prepare '{seed: 7}'` then `prepare.margin 0.1` sets both, and a later
    value of the same key wins."""
    out: dict = {}
    for key, value in pairs:
        parts = str(key).split(".")
        if not all(parts):
            raise ParamError(f"parameter name {key!r} has an empty part: write KEY or SECTION.KEY (prepare.seed)")
        for part in reversed(parts):
            value = {part: value}
        out = deep_merge(out, value)
    return out
