"""The confirm set: which models a study with trials trains again on trials 2..n.

A study screens every model on trial 1 and confirms on the other trials only the models the
report's comparisons involve, as trial 1's evaluation chose them (evaluate.decide), on
validation only: the best and the runner-up, the recommendation's pick, its choice and the
faster candidates that were non-inferior to the pick, the order-only leader and the
order-blind reference, and both sides of every init and class-balance pair. A faster candidate
that failed non-inferiority on trial 1 is screened out: confirming every model faster than the
pick would train nearly every model n times, the cost screening exists to avoid. Nothing here
reads a test result (the recommendation's test-baseline veto is not used: its pick and choice
are validation's).
"""
from __future__ import annotations

PAIR_KINDS = {"init": "init pair", "balance": "class-balance pair"}


def confirm_set(d: dict) -> list[dict]:
    """[{model, why: [reasons]}] in the order of trial 1's ranking, from decide()'s decisions."""
    why: dict[str, list[str]] = {}

    def add(model, reason: str) -> None:
        if model:
            why.setdefault(model, []).append(reason)

    add(d.get("best"), "best on validation")
    add(d.get("runner_up"), "runner-up on validation")
    rec = d.get("recommendation") or {}
    add(rec.get("pick"), "recommendation's pick (best on validation among the models that keep up)")
    add(rec.get("instead"), "recommended instead of the pick (faster, non-inferior on validation)")
    for c in rec.get("candidates", []):
        if c.get("non_inferior"):
            add(c["model"], "faster candidate non-inferior to the pick on validation")
    oo = d.get("order_only") or {}
    add(oo.get("leader"), "order-only leader on validation")
    add(oo.get("blind_model"), "order-blind reference")
    for c in d.get("claims", []):
        if c["kind"] in PAIR_KINDS:
            add(c["a"], f"{PAIR_KINDS[c['kind']]} with {c['b']}")
            add(c["b"], f"{PAIR_KINDS[c['kind']]} with {c['a']}")
    order = {m: i for i, m in enumerate(d.get("ranking", []))}
    return [{"model": m, "why": w} for m, w in sorted(why.items(), key=lambda kv: order.get(kv[0], len(order)))]


def screened_out(d: dict) -> list[str]:
    """The faster candidates trial 1's recommendation tested and found not non-inferior: trained
    on trial 1 only, unless another decision confirms them."""
    kept = set(models(d))
    return [c["model"] for c in (d.get("recommendation") or {}).get("candidates", [])
            if not c.get("non_inferior") and c["model"] not in kept]


def models(d: dict) -> list[str]:
    """The confirm set's models (decisions.json's confirm), [] when it has none."""
    return [c["model"] for c in d.get("confirm") or []]
