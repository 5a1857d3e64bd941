"""Train/val/test splits: stratified by class, seeded, optionally grouped; class caps; and
k-fold cross-validation folds (each clip tested once, by the fold that holds it out)."""
from __future__ import annotations

import random
from collections import Counter, defaultdict


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


def _deal(units: list, ratios, sizes=None) -> dict:
    """Assign units (already shuffled) to splits so their total sizes follow the ratios."""
    sizes = sizes or [1] * len(units)
    n = sum(sizes)
    want = dict(zip(("train", "val", "test"), split_counts(n, ratios)))
    got = Counter()
    out = {}
    for u, s in zip(units, sizes):
        # the split furthest below its target takes the next unit
        split = max(("test", "val", "train"), key=lambda k: (want[k] - got[k]) / max(want[k], 1))
        out[u] = split
        got[split] += s
    return out


def assign(rows: list[dict], p: dict) -> None:
    """Set row['split'] in place. Policies: 'stratified' (ratios per class; with group_by,
    whole groups move together, stratified by each group's majority class) or 'official'
    (Validation folder -> test; val carved from Training, stratified)."""
    rng = random.Random(p["seed"])
    ratios = (p["train_ratio"], p["val_ratio"], p["test_ratio"])
    if p["split_policy"] == "official":
        train_side = [r for r in rows if r["official_split"] != "Validation"]
        for r in rows:
            if r["official_split"] == "Validation":
                r["split"] = "test"
        val_share = p["val_ratio"] / (p["train_ratio"] + p["val_ratio"])
        _stratified(train_side, (1 - val_share, val_share, 0.0), rng)
        return
    if p["group_by"]:
        groups = defaultdict(list)
        for r in rows:
            groups[r["group"]].append(r)
        by_class = defaultdict(list)
        for g, members in sorted(groups.items()):
            majority = Counter(m["label"] for m in members).most_common(1)[0][0]
            by_class[majority].append(g)
        for label in sorted(by_class):
            gs = by_class[label]
            rng.shuffle(gs)
            dealt = _deal(gs, ratios, [len(groups[g]) for g in gs])
            for g, split in dealt.items():
                for r in groups[g]:
                    r["split"] = split
        return
    _stratified(rows, ratios, rng)


def _stratified(rows: list[dict], ratios, rng: random.Random, key: str = "split") -> None:
    by_class = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["id"]):
        by_class[r["label"]].append(r)
    for label in sorted(by_class):
        items = by_class[label]
        rng.shuffle(items)
        n_train, n_val, _ = split_counts(len(items), ratios)
        for i, r in enumerate(items):
            r[key] = "train" if i < n_train else "val" if i < n_train + n_val else "test"


def assign_folds(rows: list[dict], p: dict, k: int) -> None:
    """Set row['fold'] (1..k) in place: stratified by class (with group_by, whole groups by
    their majority class), so each fold's test set has each class's share. Then, for fold i,
    row['split_fold<i>']: test for the fold's own clips; the rest split into train and val in
    the ratio train_ratio : val_ratio, stratified, seeded per fold."""
    if k < 2:
        raise ValueError(f"folds must be 0 (off) or at least 2 (got {k})")
    rng = random.Random(p["seed"])
    units, label_of = defaultdict(list), {}
    for r in sorted(rows, key=lambda r: r["id"]):
        units[r.get("group") if p["group_by"] else r["id"]].append(r)
    for u, members in units.items():
        label_of[u] = Counter(m["label"] for m in members).most_common(1)[0][0]
    by_class = defaultdict(list)
    for u in units:
        by_class[label_of[u]].append(u)
    dealt = 0   # continue the round robin across classes: fold sizes differ by at most one unit
    for label in sorted(by_class):
        us = by_class[label]
        rng.shuffle(us)
        for u in us:
            for r in units[u]:
                r["fold"] = dealt % k + 1
            dealt += 1
    if len({r["fold"] for r in rows}) < k:   # fewer units than folds: some fold would be empty
        raise ValueError(f"folds={k} needs at least {k} clips (or groups); there are {len(units)}")
    share = p["val_ratio"] / (p["train_ratio"] + p["val_ratio"])
    for i in range(1, k + 1):
        key = f"split_fold{i}"
        for r in rows:
            if r["fold"] == i:
                r[key] = "test"
        _stratified([r for r in rows if r["fold"] != i], (1 - share, share, 0.0),
                    random.Random(p["seed"] * 1000 + i), key)


def count_table(rows: list[dict], class_names: list[str]) -> list[dict]:
    """One row per class: clips per split and in total."""
    c = Counter((r["label"], r["split"]) for r in rows)
    return [dict(label=k, train=c[k, "train"], val=c[k, "val"], test=c[k, "test"],
                 total=c[k, "train"] + c[k, "val"] + c[k, "test"]) for k in class_names]
