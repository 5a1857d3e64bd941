"""Parameter files under params/ and their layering for the notebooks.

train:  base.yaml -> profiles/<profile>.yaml -> models/<model>.yaml (over its `_base_`) -> the model's
        per_profile[<profile>] -> explicit overrides (papermill -p). A model named `<model>@<init>`
        (tsm@zoo) is the model file with that init; when init loads weights, the lr is the
        layered one times its `finetune` section's lr_scale (an explicit lr is kept as given).
        An override that is a mapping (model_cfg, finetune ...) merges key by key like the
        files do; `_delete_: true` in it replaces what is below instead.
Papermill only warns about unknown parameters; these functions refuse them instead,
naming the valid choices.

Merging is mmengine's (Config._merge_a_into_b, what its `_base_` files and merge_from_dict use,
`_delete_` included); reading the files and following `_base_` stay here, because
Config.fromfile on these files would lose what the strict errors need (mmengine 0.10.7, tried):
a `_base_` chain that loops ends in a RecursionError that names no file; `_base_: tsm` (a
name in the same folder, as these files write it) is "file .../tsm does not exist"; a key
given twice keeps the last silently; and its YAML loader is not yaml's safe one
(`!!python/object/apply:os.getcwd []` in a params file runs).
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml
from mmengine.config import Config, ConfigDict

from .core.dicts import deep_merge, strip_delete  # noqa: F401  (params.deep_merge: the layering's merge)
from .core.errors import ParamError
from .core.paths import NOTEBOOKS, PARAMS
from .data.splits import check_folds  # noqa: F401  (params.check_folds: validated with the rest)
from .models import pretrained


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a params file that says `quick:` twice
    would lose half its settings, so a repeated key is an error."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ParamError(f"{node.start_mark.name}: key {key!r} appears twice in one mapping "
                             f"(line {key_node.start_mark.line + 1}); merge the two entries")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=_StrictLoader) or {}
    if not isinstance(data, dict):
        raise ParamError(f"{path} must hold a mapping of parameters")
    return data


def names(kind: str) -> list[str]:
    """Available models or profiles: the yaml files under params/models or params/profiles."""
    return sorted(p.stem for p in (PARAMS / kind).glob("*.yaml"))


def layer_file(kind: str, name: str, _seen: tuple = ()) -> dict:
    """A params file, merged over the file its `_base_` key names (as mmaction2 configs do):
    a variant such as models/tsm_balanced.yaml states only what it changes."""
    valid = names(kind)
    if name not in valid:
        raise ParamError(f"unknown {kind[:-1]} {name!r}; valid: {', '.join(valid)}")
    if name in _seen:
        raise ParamError(f"params/{kind}/{name}.yaml: _base_ chain loops ({' -> '.join(_seen + (name,))})")
    layer = load_yaml(PARAMS / kind / f"{name}.yaml")
    base = layer.pop("_base_", None)
    if base is None:
        return layer
    if not isinstance(base, str):
        raise ParamError(f"params/{kind}/{name}.yaml: _base_ must name one file of params/{kind}/ (no .yaml)")
    return deep_merge(layer_file(kind, base.removesuffix(".yaml"), _seen + (name,)), layer)


def check_keys(given: dict, valid: dict | set, where: str) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ParamError(f"unknown parameter(s) {unknown} in {where}; valid: {', '.join(sorted(valid))}")


def resolve_train(overrides: dict) -> dict:
    """The train notebook's settings for one run.

    `overrides` are the values a caller gave (papermill -p/-f, or the study runner); a value
    equal to what the files already give is not an override, so layering the same files
    again with papermill -f changes nothing.
    """
    base = load_yaml(PARAMS / "base.yaml")
    check_keys(overrides, base, "train parameters")
    label = overrides.get("model", base["model"])
    try:   # `tsm@zoo`: model file tsm, init zoo, run folder models/tsm@zoo
        model, label_init = pretrained.split_label(label)
    except pretrained.InitError as e:
        raise ParamError(str(e)) from None
    profile_name = overrides.get("profile", base["profile"])
    profile = layer_file("profiles", profile_name)
    model_file = layer_file("models", model)
    for where, layer in (("profiles/" + profile_name, profile), ("models/" + model, model_file)):
        check_keys(layer, base, f"params/{where}.yaml")
    files = deep_merge(deep_merge(base, profile), model_file)
    per_profile = files.get("per_profile", {}).get(profile_name, {})
    check_keys(per_profile, base, f"params/models/{model}.yaml per_profile.{profile_name}")
    resolved = deep_merge(files, per_profile)
    explicit = {k for k, v in overrides.items() if v is not None and v != files.get(k)}
    if label_init is not None:
        if "init" in explicit and overrides["init"] != label_init:
            raise ParamError(f"model {label} names init {label_init!r} but init is {overrides['init']!r}: give one")
        resolved["init"] = label_init
    if "init" in explicit:
        resolved["init"] = overrides["init"]
    if "finetune" in explicit:
        resolved["finetune"] = deep_merge(resolved["finetune"], overrides["finetune"])
    resolved = deep_merge(resolved, finetune_layer(resolved, base))
    for k in explicit - {"init", "finetune"}:   # a mapping (model_cfg ...) merges key by key, as every layer
        both = isinstance(overrides[k], dict) and isinstance(resolved.get(k), dict)
        resolved[k] = deep_merge(resolved[k], overrides[k]) if both else copy.deepcopy(overrides[k])
    resolved["model"], resolved["profile"] = label, profile_name
    validate_train(resolved)
    scale = pretrained.finetune(resolved).get("lr_scale", 1.0)
    if "lr" not in explicit and scale != 1.0:   # fine-tuning: the layered rate x lr_scale; an explicit lr is kept
        resolved["lr"] = float(f"{resolved['lr'] * scale:.6g}")
    return resolved


def finetune_layer(p: dict, base: dict) -> dict:
    """The train parameters the `finetune` section of this run's kind of init sets (epochs,
    warmup_epochs ...): a layer over per_profile, under explicit overrides."""
    try:
        pretrained.check_finetune(p["finetune"])
        section = pretrained.finetune(p)
    except pretrained.InitError as e:
        raise ParamError(str(e)) from None
    layer = {k: v for k, v in section.items() if k not in pretrained.FINETUNE_KEYS}
    check_keys(layer, set(base) - NOT_FINETUNED, f"finetune.{pretrained.kind(p)}")
    return layer


NOT_FINETUNED = {"model", "profile", "study", "target", "seed", "fold", "trial", "results_dir", "init", "finetune",
                 "per_profile", "zoo", "mm_base", "sampling"}

CHOICES = {"target": ("action", "emotion"), "sampling": ("segments", "clip"),
           "optimizer": ("SGD", "AdamW"), "class_balance": ("none", "loss", "sampler"),
           "checkpoint": ("best", "last")}   # checkpoint: whose scores a run reports (training.runfolder.RULES)


def validate_train(p: dict) -> None:
    for key, valid in CHOICES.items():
        if p[key] not in valid:
            raise ParamError(f"{key}={p[key]!r} is not valid; choose one of {list(valid)}")
    for key in ("img_size", "num_segments", "clip_len", "frame_interval", "epochs", "batch_size", "test_clips"):
        if not isinstance(p[key], int) or p[key] < 1:
            raise ParamError(f"{key} must be a positive whole number (got {p[key]!r})")
    box_model = (p.get("model_cfg") or {}).get("type") == "FastRCNN"   # whole frames: detection.pipelines
    if box_model and p["resize"] != 0 and (not isinstance(p["resize"], int) or p["resize"] <= p["img_size"]):
        raise ParamError(f"fast_rcnn: resize must be 0 (whole frames at img_size) or a whole number of pixels above "
                         f"img_size {p['img_size']}: the short side of the cache its training crops (BoxSafeCrop) "
                         f"are cut from (got {p['resize']!r})")
    if not box_model and p["resize"] != 0 and (not isinstance(p["resize"], int) or p["resize"] < p["img_size"]):
        raise ParamError(f"resize must be 0 (img_size x 8/7) or a whole number of pixels at least img_size "
                         f"{p['img_size']}: the crop is cut out of the resized frame (got {p['resize']!r})")
    check_vis_backends(p["vis_backends"])
    if not isinstance(p["fused_optimizer"], bool):
        raise ParamError(f"fused_optimizer must be true or false (got {p['fused_optimizer']!r})")
    if not isinstance(p["fold"], int) or isinstance(p["fold"], bool) or p["fold"] < 0:
        raise ParamError(f"fold must be 0 (the prepared split) or a fold number 1..k (got {p['fold']!r})")
    if not isinstance(p["trial"], int) or isinstance(p["trial"], bool) or p["trial"] < 0:
        raise ParamError(f"trial must be 0 (the prepared split) or a trial number 1..n (got {p['trial']!r})")
    if p["trial"] and p["fold"]:
        raise ParamError("a run is on a fold or on a trial's split, not both: set fold or trial")
    try:
        init = pretrained.parse(p["init"])
    except pretrained.InitError as e:
        raise ParamError(str(e)) from None
    if init.kind != pretrained.SCRATCH and box_model:
        raise ParamError(f"init {p['init']!r}: fast_rcnn trains from scratch only (detection.build does not apply an init)")
    if init.kind == "checkpoint" and not pretrained.URL.match(init.value) and not Path(init.value).expanduser().is_file():
        raise ParamError(f"init {init.value!r}: no such checkpoint file; init is scratch, zoo, a checkpoint path or "
                         f"URL, or <target>[:<model>] with target one of {list(CHOICES['target'])}")


def check_vis_backends(backends) -> None:
    """vis_backends: a list of mmengine visualisation backends, each a name in mmengine's
    VISBACKENDS registry or a mapping with that name as `type` (and the backend's arguments)."""
    import mmengine.visualization  # noqa: F401  (registers mmengine's backends)
    from mmengine.registry import VISBACKENDS
    valid = sorted(VISBACKENDS.module_dict)
    if not isinstance(backends, list):
        raise ParamError(f"vis_backends must be a list of backend names, e.g. [LocalVisBackend, "
                         f"TensorboardVisBackend] (got {backends!r}); valid: {', '.join(valid)}")
    for b in backends:
        name = b.get("type") if isinstance(b, dict) else b
        if name not in valid:
            raise ParamError(f"vis_backends: unknown backend {name!r}; valid (mmengine's VISBACKENDS): "
                             f"{', '.join(valid)}, each a name or {{type: NAME, ...its arguments}}")


# ---- notebooks ----

IPYTHON_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


def notebook_parameters(notebook: str) -> dict:
    """Names and defaults declared in a notebook's `parameters` cell (papermill's parser)."""
    import papermill
    info = papermill.inspect_notebook(str(NOTEBOOKS / f"{notebook}.ipynb"))
    return {k: v["default"] for k, v in info.items()}


def from_notebook(namespace: dict, notebook: str) -> dict:
    """The parameters a running notebook received, refusing any it does not declare.

    Called in the cell after the parameters cell, where the globals are IPython's, the
    declared parameters and whatever papermill injected; anything else was injected under
    a name the notebook does not know (papermill itself only warns).
    """
    declared = notebook_parameters(notebook)
    given = {k: v for k, v in namespace.items()
             if not k.startswith("_") and k not in IPYTHON_NAMES and not callable(v)
             and type(v).__name__ != "module"}
    check_keys(given, declared, f"notebooks/{notebook}.ipynb")
    return given
