"""class_balance: sampler draws every class about equally often; model files inherit via _base_."""
from collections import Counter

import pytest

from petaction.models import mmconfig  # noqa: F401
from petaction import params as P  # noqa: F401
from petaction.training import train  # noqa: F401


def class_counts(loader_cfg, epochs=3):
    from mmengine.runner import Runner
    dl = Runner.build_dataloader(dict(loader_cfg, batch_size=1, num_workers=0, persistent_workers=False), seed=0)
    counts = Counter()
    for e in range(epochs):
        if hasattr(dl.sampler, "set_epoch"):
            dl.sampler.set_epoch(e)
        counts.update(int(i_label) for i_label in (dl.dataset.get_data_info(i)["label"] for i in dl.sampler))
    return counts, len(dl.sampler)


def test_sampler_balances_classes(tiny_data):
    from mmengine.registry import init_default_scope
    init_default_scope("mmaction")
    _, _, data = tiny_data
    rows = train.read_split(data, "train")
    classes = [str(i) for i in range(max(r[2] for r in rows) + 1)]
    p = P.resolve_train({"model": "tsm_balanced", "profile": "tiny"})
    balanced, n_bal = class_counts(mmconfig.loader(p, data, "train", [], True, classes))
    plain, n_plain = class_counts(mmconfig.loader({**p, "class_balance": "none"}, data, "train", [], True, classes))
    assert n_bal == n_plain == len(rows)            # an epoch keeps its length
    present = sorted(set(r[2] for r in rows))
    def spread(c):
        return max(c[k] for k in present) / min(c[k] for k in present)
    assert spread(plain) >= 3                       # the set is imbalanced ...
    assert spread(balanced) < 1.5                   # ... and the sampler evens it out
    assert set(balanced) == set(present)


def test_model_file_inherits_its_base():
    tsm = P.resolve_train({"model": "tsm", "profile": "quick"})
    bal = P.resolve_train({"model": "tsm_balanced", "profile": "quick"})
    assert bal["class_balance"] == "sampler" and tsm["class_balance"] == "none"
    differing = {k for k in tsm if tsm[k] != bal[k]}
    assert differing == {"model", "class_balance"}


def test_base_chain_loop_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "a.yaml").write_text("_base_: b\n")
    (tmp_path / "models" / "b.yaml").write_text("_base_: a\n")
    monkeypatch.setattr(P, "PARAMS", tmp_path)
    with pytest.raises(P.ParamError, match="loops"):
        P.layer_file("models", "a")
