"""Train/val/test splits and k-fold cross-validation folds: stratified by class, seeded, and,
with group_by, by whole groups in every path (a group never straddles two splits).

scikit-learn deals: StratifiedKFold / StratifiedGroupKFold make the folds, and every grouped
carve holds out m of k StratifiedGroupKFold folds (m/k the requested share, the nearest
fraction with k no larger than the number of groups). The ungrouped carve is a per-class quota
(split_counts) instead: StratifiedShuffleSplit shares the classes out over the whole set and
can leave a class of three clips out of val or test, which then cannot select or measure it;
the quota gives every split at least one clip of every class of three or more.

Every carve and fold stratifies on a clip's `stratum` (joint_strata), computed from the
clip's action and emotion whatever the target: the action and emotion targets of one study
prepare the same clips into the same splits, so nothing trained on one target's training
clips is ever tested on the other's test clips. Rows without a stratum (direct callers)
stratify on their label.
"""
from __future__ import annotations

import random
import warnings
from collections import Counter, defaultdict
from fractions import Fraction

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..core.errors import ParamError

SPLITS = ("train", "val", "test")
MAX_CARVE_FOLDS = 20   # a held-out share is m/k with k <= 20: 5% steps or finer


def cap_per_class(rows: list[dict], cap: int, seed: int) -> tuple[list[dict], list[dict]]:
    """Keep at most `cap` clips per class (a seeded choice); returns (kept, dropped)."""
    if not cap:
        return rows, []
    by_class = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        by_class[r["label"]].append(r)
    kept, dropped = [], []
    rng = random.Random(seed)
    for label in sorted(by_class):
        items = by_class[label]
        rng.shuffle(items)
        kept += items[:cap]
        dropped += items[cap:]
    return kept, dropped


def split_counts(n: int, ratios: tuple[float, float, float]) -> tuple[int, int, int]:
    """How many of n go to (train, val, test): largest remainder, and every split gets at
    least one item when n >= 3 (a class absent from test cannot be measured)."""
    raw = [n * r for r in ratios]
    counts = [int(x) for x in raw]
    for i in sorted(range(3), key=lambda i: raw[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    if n >= 3:
        for i in (2, 1):
            if counts[i] == 0 and ratios[i] > 0:
                counts[i] += 1
                counts[0] -= 1
    return tuple(counts)


MIN_STRATUM = 3   # the quota's smallest class that reaches every split


def stratum_of(r: dict) -> str:
    """What a clip is stratified on: its joint stratum (joint_strata), else its label."""
    return r.get("stratum") or r["label"]


def joint_strata(rows: list[dict], emotion_key: str = "emotion", minimum: int = MIN_STRATUM) -> None:
    """Set row['stratum'] in place from the clip's action and emotion (row[emotion_key]; ''
    when it has none), identically for every target, so that both targets' classes stay
    represented in every split. The rule, most specific first, each level over the clips the
    level above left: (1) the joint cell "action|emotion" when it holds at least `minimum`
    clips; (2) the action's remaining clips together, "action|*", when at least `minimum`; (3)
    what is left, by emotion across actions, "*|emotion", when at least `minimum`; (4) the
    rest together, "*|*". An action of `minimum` clips or more thus always has a stratum of
    its own (a joint cell or its remainder), so it reaches every split as before; the
    emotions are stratified as far as the counts allow. `minimum`: 3 for the quota's
    train/val/test, the fold count when larger."""
    key = lambda r: (r["action"], r.get(emotion_key) or "")   # noqa: E731
    cells = Counter(key(r) for r in rows)
    left = [r for r in rows if cells[key(r)] < minimum]
    for r in rows:
        if cells[key(r)] >= minimum:
            r["stratum"] = "|".join(key(r))
    by_action = Counter(r["action"] for r in left)
    rest = [r for r in left if by_action[r["action"]] < minimum]
    for r in left:
        if by_action[r["action"]] >= minimum:
            r["stratum"] = f"{r['action']}|*"
    by_emotion = Counter(r.get(emotion_key) or "" for r in rest)
    for r in rest:
        e = r.get(emotion_key) or ""
        r["stratum"] = f"*|{e}" if by_emotion[e] >= minimum else "*|*"


def group_of(r: dict, p: dict) -> str:
    """The leakage unit of a clip: its group_by value, or the clip itself when ungrouped."""
    return r["group"] if p["group_by"] else r["id"]


def straddling(rows: list[dict], key: str, p: dict) -> dict[str, set]:
    """Groups whose clips sit in more than one value of row[key] (empty when all is well)."""
    seen = defaultdict(set)
    for r in rows:
        seen[group_of(r, p)].add(r[key])
    return {g: s for g, s in seen.items() if len(s) > 1}


def _check_whole_groups(rows: list[dict], key: str, p: dict) -> None:
    bad = straddling(rows, key, p)
    if bad:   # a guard on the library's behaviour, not an expected outcome
        g, where = next(iter(bad.items()))
        raise AssertionError(f"group {g!r} straddles {sorted(where)} in {key}")


def _quota(rows: list[dict], ratios, seed: int, key: str) -> None:
    """Per stratum: shuffle (seeded) and cut at split_counts."""
    rng = random.Random(seed)
    by_class = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        by_class[stratum_of(r)].append(r)
    for label in sorted(by_class):
        items = by_class[label]
        rng.shuffle(items)
        n_train, n_val, _ = split_counts(len(items), ratios)
        for i, r in enumerate(items):
            r[key] = "train" if i < n_train else "val" if i < n_train + n_val else "test"


def _folds(rows: list[dict], k: int, seed: int, grouped: bool, p: dict) -> list[np.ndarray]:
    """The k test-index arrays of scikit-learn's stratified (group) k-fold over rows."""
    y = [stratum_of(r) for r in rows]
    if grouped:
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        return [test for _, test in cv.split(np.zeros(len(rows)), y, [group_of(r, p) for r in rows])]
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test for _, test in cv.split(np.zeros(len(rows)), y)]


def _hold_out(rows: list[dict], share: float, seed: int, p: dict) -> set[int]:
    """Indices of whole groups, stratified by class, holding about `share` of the rows: m of k
    StratifiedGroupKFold folds, m/k the nearest fraction with k no more than the groups and the
    largest class (scikit-learn's limits). Fewer than two groups cannot be carved."""
    if share <= 0 or not rows:
        return set()
    n_groups = len({group_of(r, p) for r in rows})
    largest = max(Counter(stratum_of(r) for r in rows).values())
    if min(n_groups, largest) < 2:
        raise ValueError(f"cannot carve a {share:.0%} share out of {n_groups} {p['group_by']!r} group(s) of "
                         f"{len(rows)} clips (a group never straddles two splits); use a key with more values, "
                         "or group_by ''")
    frac = Fraction(share).limit_denominator(min(MAX_CARVE_FOLDS, n_groups, largest))
    k = max(frac.denominator, 2)
    m = min(max(round(share * k), 1), k - 1)
    with warnings.catch_warnings():   # a class smaller than k misses some folds: expected in a carve
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        held = _folds(rows, k, seed, grouped=True, p=p)[:m]
    return {int(i) for fold in held for i in fold}


def _grouped(rows: list[dict], ratios, seed: int, key: str, p: dict) -> None:
    """Test first, then val out of the rest, each a _hold_out of whole groups."""
    order = sorted(rows, key=lambda r: r["id"])
    test = _hold_out(order, ratios[2], seed, p)
    rest = [r for i, r in enumerate(order) if i not in test]
    val = _hold_out(rest, ratios[1] / (ratios[0] + ratios[1]), seed, p)
    for i, r in enumerate(order):
        if i in test:
            r[key] = "test"
    for i, r in enumerate(rest):
        r[key] = "val" if i in val else "train"


def carve(rows: list[dict], ratios, seed: int, key: str, p: dict) -> None:
    """Set row[key] to train/val/test in the ratios: whole groups with group_by, else a quota."""
    if p["group_by"]:
        _grouped(rows, ratios, seed, key, p)
        _check_whole_groups(rows, key, p)
    else:
        _quota(rows, ratios, seed, key)


def official_conflicts(rows: list[dict], p: dict) -> tuple[list[dict], list[tuple[dict, str]]]:
    """With split_policy official and group_by, a group found in both Training and Validation
    would straddle train+val and test. Keep it on the side that holds more of its clips (a tie:
    Validation, the official test set) and return the other side's clips with a reason, so the
    test set stays a subset of the official Validation folder. Returns (kept, [(row, reason)])."""
    if p["split_policy"] != "official" or not p["group_by"]:
        return rows, []
    sides = defaultdict(Counter)
    for r in rows:
        sides[r["group"]][_official_side(r)] += 1
    kept, dropped = [], []
    for r in rows:
        c = sides[r["group"]]
        keep = "test" if c["test"] >= c["train"] else "train"
        if _official_side(r) == keep:
            kept.append(r)
        else:
            dropped.append((r, f"{p['group_by']}={r['group']!r} has clips in both Training and Validation; "
                               f"kept on the {OFFICIAL[keep]} side ({c[keep]} clips), dropped on the "
                               f"{OFFICIAL[_official_side(r)]} side ({c[_official_side(r)]} clips), so the "
                               "group does not straddle train and test"))
    return kept, dropped


OFFICIAL = {"train": "Training", "test": "Validation"}


def _official_side(r: dict) -> str:
    return "test" if r["official_split"] == "Validation" else "train"


def assign(rows: list[dict], p: dict, key: str = "split") -> None:
    """Set row[key] (row['split'] unless told) in place. Policies: 'stratified' (carve in the ratios per class; with
    group_by, whole groups) or 'official' (Validation folder -> test; val carved from Training
    in the ratio train_ratio : val_ratio, whole groups with group_by: run official_conflicts
    first, since a group on both official sides cannot stay whole)."""
    ratios = (p["train_ratio"], p["val_ratio"], p["test_ratio"])
    if p["split_policy"] != "official":
        carve(rows, ratios, p["seed"], key, p)
        return
    if p["group_by"] and straddling([{**r, "side": _official_side(r)} for r in rows], "side", p):
        raise ValueError("a group_by group has clips in both Training and Validation: "
                         "splits.official_conflicts drops one side first")
    train_side = [r for r in rows if _official_side(r) == "train"]
    for r in rows:
        if _official_side(r) == "test":
            r[key] = "test"
    share = p["val_ratio"] / (p["train_ratio"] + p["val_ratio"])
    carve(train_side, (1 - share, share, 0.0), p["seed"], key, p)


def assign_folds(rows: list[dict], p: dict, k: int) -> None:
    """Set row['fold'] (1..k) in place with StratifiedKFold (StratifiedGroupKFold with group_by),
    so each fold's test set has about each class's share. Then, for fold i, row['split_fold<i>']:
    test for the fold's own clips; the rest carved into train and val in the ratio
    train_ratio : val_ratio (whole groups with group_by), seeded per fold."""
    if k < 2:
        raise ValueError(f"folds must be 0 (off) or at least 2 (got {k})")
    order = sorted(rows, key=lambda r: r["id"])
    n_units = len({group_of(r, p) for r in order})
    if n_units < k:   # some fold would be empty
        raise ValueError(f"folds={k} needs at least {k} clips (or groups); there are {n_units}")
    largest = max(Counter(stratum_of(r) for r in order).values())
    if largest < k:   # scikit-learn refuses: no class could reach every fold
        raise ValueError(f"folds={k} needs a class with at least {k} clips (the largest has {largest}); "
                         "use fewer folds")
    for i, test in enumerate(_folds(order, k, p["seed"], bool(p["group_by"]), p), 1):
        for j in test:
            order[j]["fold"] = i
    if len({r["fold"] for r in order}) < k:
        raise ValueError(f"folds={k}: the {n_units} groups could not fill every fold; use fewer folds")
    share = p["val_ratio"] / (p["train_ratio"] + p["val_ratio"])
    for i in range(1, k + 1):
        key = f"split_fold{i}"
        for r in order:
            if r["fold"] == i:
                r[key] = "test"
        carve([r for r in order if r["fold"] != i], (1 - share, share, 0.0), p["seed"] * 1000 + i, key, p)
        if p["group_by"]:
            _check_whole_groups(order, key, p)


def count_table(rows: list[dict], class_names: list[str]) -> list[dict]:
    """One row per class: clips per split and in total."""
    c = Counter((r["label"], r["split"]) for r in rows)
    return [dict(label=k, train=c[k, "train"], val=c[k, "val"], test=c[k, "test"],
                 total=c[k, "train"] + c[k, "val"] + c[k, "test"]) for k in class_names]


def assign_trials(rows: list[dict], p: dict, n: int) -> None:
    """Set row['split_trial<t>'] for t in 1..n in place: trial t's split is the one assign
    draws with seed p['seed'] + t - 1 (same policy, strata and groups), so trial 1's is the
    prepared split and every trial redraws which clips train, select and test."""
    for t in range(1, n + 1):
        assign(rows, {**p, "seed": p["seed"] + t - 1}, key=f"split_trial{t}")


def check_trials(n) -> None:
    """A trial count (study `trials`, prepare `trials`): 0 (off) or a whole number >= 1."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ParamError(f"trials must be 0 (off: the prepared split) or a whole number >= 1 (got {n!r})")


def check_folds(k) -> None:
    """A k-fold setting (study `folds`, prepare `folds`): 0 (off) or a whole number >= 2."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 0 or k == 1:
        raise ParamError(f"folds must be 0 (off) or a whole number >= 2 (got {k!r})")
