"""Where a training's first weights come from: the `init` training parameter.

    init: scratch            mmaction2's own initialisation (the default)
    init: zoo                the model's mmaction2 model-zoo checkpoint: the URL is the `Weights` of
                             the installed mmaction2's configs/**/metafile.yml entry that the model
                             file's `zoo.name` names (never typed by hand)
    init: PATH | URL         any mmaction2 / mmengine checkpoint
    init: action             a run of this study: the action run of the same model, seed and fold
    init: action:tsm         ... of model tsm (any model name of the study, e.g. tsm@zoo)

A study names a model with its init as `<model>@<init>` (`tsm@zoo`, `tsm@action`): each is its
own run folder and row. Loading goes through mmengine: `apply` (called by mmconfig.build) first
checks the checkpoint against the architecture (a mismatch fails before training, naming the
layers) and adds InitFromCheckpointHook, which runs the registered mmengine initializer
PetPretrained on the model before the first step (after mmengine's own init_weights; a resumed
run keeps its own weights). The initializer writes what it loaded to the run's init.json. The
classifier head is loaded only from a checkpoint trained on the same classes; otherwise it
keeps its fresh initialisation. Fine-tuning settings per kind of init: params `finetune`.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..core import atomic, paths

SCRATCH, ZOO = "scratch", "zoo"
TARGETS = ("action", "emotion")          # params.CHOICES["target"] (params imports this module)
KINDS = ("zoo", "checkpoint", "run")     # the kinds of init that load weights (finetune sections)
FINETUNE_KEYS = {"lr_scale": (int, float), "frozen_stages": int, "norm_eval": bool, "revise_keys": list}
REPORT = "init.json"                     # what the initializer loaded, in the run folder
URL = re.compile(r"^https?://", re.I)
LABEL = re.compile(r"^[A-Za-z0-9_]+$")   # a params/models file name
SHOWN = 8                                # layer names an error lists before "... and n more"


class InitError(ValueError):
    """A bad init: unknown form, missing checkpoint, offline zoo, mismatching architecture."""


@dataclass(frozen=True)
class Init:
    kind: str        # scratch | zoo | checkpoint | run
    value: str       # as given
    target: str = ""  # run: the target of the source run
    model: str = ""   # run: the source run's model name ("": this run's model file)


def parse(init) -> Init:
    """The kind of an init value (syntax only; resolve() finds the weights)."""
    if not isinstance(init, str) or not init.strip():
        raise InitError(f"init must be scratch, zoo, a checkpoint path or URL, or <target>[:<model>] "
                        f"with target one of {list(TARGETS)} (got {init!r})")
    if init in (SCRATCH, ZOO):
        return Init(init, init)
    head, colon, model = init.partition(":")
    if head in TARGETS:
        if colon and not model:
            raise InitError(f"init {init!r}: name the source model after the colon (e.g. {head}:tsm) or drop the colon")
        return Init("run", init, head, model)
    return Init("checkpoint", init)


def split_label(label: str) -> tuple[str, str | None]:
    """A study's model name -> (its params/models file, the init it names or None):
    'tsm' -> ('tsm', None), 'tsm@action' -> ('tsm', 'action'), 'tsn@action:tsm@zoo' -> ('tsn', 'action:tsm@zoo')."""
    model, at, init = str(label).partition("@")
    if not at:
        return model, None
    kind = parse(init).kind
    if not LABEL.match(model) or kind == "checkpoint":
        raise InitError(f"model name {label!r}: write <model>@<init> with init scratch, zoo or <target>[:<model>] "
                        "(a checkpoint file is given as the init parameter instead: -p init PATH, or the "
                        "study's train / target_train init)")
    if kind == "run":
        split_label(parse(init).model or model)   # the source's name must be valid too
    return model, init


def kind(p: dict) -> str:
    return parse(p.get("init", SCRATCH)).kind


def finetune(p: dict) -> dict:
    """The fine-tuning settings of this run's kind of init ({} from scratch)."""
    k = kind(p)
    return {} if k == SCRATCH else dict((p.get("finetune") or {}).get(k) or {})


def check_finetune(section) -> None:
    """A `finetune` section: {kind: {lr_scale, frozen_stages, norm_eval, revise_keys, and any
    train parameter}}; the train parameters are checked by params.finetune_layer."""
    if not isinstance(section, dict) or set(section) - set(KINDS):
        raise InitError(f"finetune must map init kinds {list(KINDS)} to settings (got {section!r})")
    for k, s in section.items():
        s = s or {}
        if not isinstance(s, dict):
            raise InitError(f"finetune.{k}: a mapping of settings (got {s!r})")
        for key, v in s.items():
            if key not in FINETUNE_KEYS:
                continue
            if not isinstance(v, FINETUNE_KEYS[key]) or (key != "norm_eval" and isinstance(v, bool)):
                raise InitError(f"finetune.{k}.{key} has the wrong type (got {v!r})")
        if "lr_scale" in s and s["lr_scale"] <= 0:
            raise InitError(f"finetune.{k}.lr_scale must be > 0 (got {s['lr_scale']!r})")
        if any(not (isinstance(r, list) and len(r) == 2) for r in s.get("revise_keys", [])):
            raise InitError(f"finetune.{k}.revise_keys: a list of [pattern, replacement] pairs")


# ---- the model zoo ----

def metafile_models() -> dict[str, dict]:
    """Every model-zoo entry of the installed mmaction2: {Name: {url, config, metafile}}."""
    import yaml

    from .mmcompat import mm_configs_dir
    out = {}
    for meta in sorted(mm_configs_dir().rglob("metafile.yml")):
        data = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        for m in data.get("Models") or []:
            if m.get("Name") and m.get("Weights"):
                out[m["Name"]] = {"url": m["Weights"], "config": m.get("Config", ""), "metafile": str(meta)}
    return out


def zoo_entry(p: dict) -> dict:
    name = (p.get("zoo") or {}).get("name")
    if not name:
        raise InitError(f"init zoo: model {p['model']} has no model-zoo entry (no zoo.name in its params/models "
                        "file); use init scratch or a checkpoint path")
    entry = metafile_models().get(name)
    if entry is None:
        raise InitError(f"init zoo: zoo.name {name!r} of model {p['model']} is in no metafile.yml of the "
                        "installed mmaction2; correct zoo.name in its params/models file")
    return entry


def cache_file(url: str) -> Path:
    """Where mmengine (through torch.hub) keeps a downloaded checkpoint: <hub dir>/checkpoints/<URL's file name>."""
    import torch
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def fetch(url: str, what: str) -> Path:
    """The cached copy of a checkpoint URL, downloaded first if absent; offline, one message
    saying what to download and where to put it."""
    import torch
    cached = cache_file(url)
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.{os.getpid()}.partial")   # ranks downloading at once do not collide
    try:
        torch.hub.download_url_to_file(url, str(tmp), progress=os.isatty(2))
    except Exception as e:   # URLError, HTTPError, timeouts, DNS: all mean "not downloadable from here"
        tmp.unlink(missing_ok=True)
        raise InitError(f"{what}: cannot download {url} ({type(e).__name__}: {e}). mmengine looks for it in its "
                        f"cache as {cached.name} in {cached.parent}: download it on a machine with network access "
                        f"and put it there (the folder is $TORCH_HOME/hub/checkpoints, ~/.cache/torch/hub/checkpoints by default), "
                        f"or train with init scratch") from None
    os.replace(tmp, cached)
    return cached


# ---- resolving an init to a checkpoint ----

def source_run(p: dict) -> Path | None:
    """The run folder an init `<target>[:<model>]` names (same study, seed, fold and trial), else None."""
    i = parse(p.get("init", SCRATCH))
    if i.kind != "run":
        return None
    model = i.model or split_label(p["model"])[0]
    return paths.run_dir(p["study"], model, p["seed"], i.target, p["results_dir"] or None, p["fold"], p.get("trial", 0))


def resolve(p: dict) -> dict:
    """{checkpoint (a local path or URL for mmengine), kind, source (words), classes (of the source
    when known, else None)}; None for scratch. Downloads a zoo or URL checkpoint into the cache."""
    i = parse(p.get("init", SCRATCH))
    if i.kind == SCRATCH:
        return None
    if i.kind == ZOO:
        entry = zoo_entry(p)
        fetch(entry["url"], f"init zoo ({p['model']}: {p['zoo']['name']})")
        return {"kind": ZOO, "checkpoint": entry["url"], "source": f"mmaction2 model zoo {p['zoo']['name']}",
                "classes": None}
    if i.kind == "run":
        run = source_run(p)
        own = paths.run_dir(p["study"], p["model"], p["seed"], p["target"], p["results_dir"] or None, p["fold"],
                            p.get("trial", 0))
        if run == own:
            raise InitError(f"init {i.value!r} names this run itself ({own})")
        metrics = run / "metrics.json"
        if not metrics.is_file():
            raise InitError(f"init {i.value!r}: the {i.target} run {run} has not finished (no metrics.json): "
                            f"train it first (a study trains it before this run when both are in it)")
        m = json.loads(metrics.read_text())
        ckpt = run / m.get("kept_checkpoint", m["best_checkpoint"])   # the checkpoint its scores come from
        if not ckpt.is_file():
            raise InitError(f"init {i.value!r}: {ckpt} is missing; re-train {run}")
        return {"kind": "run", "checkpoint": str(ckpt), "source": f"the {i.target} run {m['model']} seed {m['seed']}"
                + (f" fold {m['fold']}" if m.get("fold") else ""), "classes": m.get("classes")}
    if URL.match(i.value):
        fetch(i.value, f"init {i.value}")
        return {"kind": "checkpoint", "checkpoint": i.value, "source": i.value, "classes": None}
    path = Path(i.value).expanduser()
    if not path.is_file():
        raise InitError(f"init {i.value!r}: no such checkpoint file; init is scratch, zoo, a checkpoint path or "
                        f"URL, or <target>[:<model>] with target one of {list(TARGETS)}")
    return {"kind": "checkpoint", "checkpoint": str(path.resolve()), "source": str(path.resolve()), "classes": None}


# ---- matching a checkpoint to an architecture ----

def state_dict_of(checkpoint: str) -> dict:
    """The weights of a checkpoint, through mmengine's loader (models.checkpoints' trust rule applies)."""
    from mmengine.runner.checkpoint import _load_checkpoint
    ckpt = _load_checkpoint(checkpoint, map_location="cpu")
    if not isinstance(ckpt, dict):
        raise InitError(f"{checkpoint} holds no state_dict")
    return ckpt.get("state_dict", ckpt)


def revise(state: dict, revise_keys) -> dict:
    """Key renames as mmengine's load_checkpoint applies them (plus its default: drop 'module.')."""
    for pattern, repl in [(r"^module\.", ""), *[tuple(r) for r in revise_keys or []]]:
        state = {re.sub(pattern, repl, k): v for k, v in state.items()}
    return state


def head_prefix(model) -> str:
    """The classifier head's module name: the part whose shape follows the class count."""
    return "cls_head." if hasattr(model, "cls_head") else "roi_head.bbox_head."


def match(model, state: dict, load_head: bool) -> dict:
    """Which of the checkpoint's tensors go where: loaded (same name and shape), missing (model
    tensors not loaded: they keep their fresh initialisation), unexpected (checkpoint tensors not
    loaded), mismatched (same name, other shape; the head's do not count when it is
    reinitialised), head (its module name) and whether it is loaded."""
    own = model.state_dict()
    head = head_prefix(model)
    loaded, mismatched = [], []
    for k, v in state.items():
        if k not in own or not hasattr(v, "shape"):
            continue
        if k.startswith(head) and not load_head:
            continue
        (loaded if tuple(v.shape) == tuple(own[k].shape) else mismatched).append(k)
    done = set(loaded)
    return {"loaded": loaded, "missing": [k for k in own if k not in done], "unexpected": [k for k in state if k not in done],
            "mismatched": [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in mismatched],
            "head": head.rstrip("."), "head_loaded": load_head}


def problems(m: dict, own_keys) -> list[str]:
    """What makes a checkpoint not fit: shape mismatches; model tensors outside the head that it
    lacks (BatchNorm's num_batches_tracked counters aside, as mmengine ignores them); and its
    tensors in a part the model has (a deeper backbone) that the model lacks. Parts the model
    does not have at all (another head, a neck) are left out without complaint."""
    head = m["head"] + "."
    parts = {k.split(".")[0] for k in own_keys}
    out = [f"{k}: checkpoint {list(a)}, model {list(b)}" for k, a, b in m["mismatched"]]
    out += [f"{k}: not in the checkpoint" for k in m["missing"]
            if not k.startswith(head) and not k.endswith("num_batches_tracked")]
    out += [f"{k}: in the checkpoint, not in the model" for k in m["unexpected"]
            if k.split(".")[0] in parts and not k.startswith(head) and k not in set(own_keys)]
    return out


def groups(m: dict, own_keys) -> dict:
    """Loaded / total tensors per top-level part (backbone, cls_head ...)."""
    out = {}
    for k in own_keys:
        g = out.setdefault(k.split(".")[0], {"loaded": 0, "total": 0})
        g["total"] += 1
    for k in m["loaded"]:
        out[k.split(".")[0]]["loaded"] += 1
    return out


def check(model, m: dict, checkpoint: str) -> None:
    bad = problems(m, list(model.state_dict()))
    if bad or not m["loaded"]:
        listed = "; ".join(bad[:SHOWN]) + (f"; ... and {len(bad) - SHOWN} more" if len(bad) > SHOWN else "")
        raise InitError(f"checkpoint {checkpoint} does not match the {type(model).__name__} architecture "
                        f"({len(m['loaded'])} tensors fit, {len(bad)} do not): {listed or 'no tensor name in common'}. "
                        "Use a checkpoint of the same architecture (lite backbones differ from the zoo's full ones), "
                        "or rename its keys with finetune.<kind>.revise_keys")


def report(model, m: dict, init: dict) -> dict:
    """init.json: what was loaded from where, the counts and the layer groups."""
    own = list(model.state_dict())
    return {"init": init["init"], "kind": init["kind"], "source": init["source"], "checkpoint": init["checkpoint"],
            "loaded": len(m["loaded"]), "missing": len(m["missing"]), "unexpected": len(m["unexpected"]),
            "head": m["head"], "head_reinitialised": not m["head_loaded"], "groups": groups(m, own),
            "missing_keys": m["missing"], "unexpected_keys": m["unexpected"], "finetune": init.get("finetune", {})}


def load_report(run: Path) -> dict:
    """The run's init record for metrics.json: {'init': 'scratch'} from scratch, else init.json
    (None when it is missing or from another init than the run's params.json says)."""
    run = Path(run)
    p = json.loads((run / "params.json").read_text()) if (run / "params.json").is_file() else {}
    if kind(p) == SCRATCH:
        return {"init": SCRATCH}
    f = run / REPORT
    rec = json.loads(f.read_text()) if f.is_file() else None
    return rec if rec and rec.get("init") == p.get("init") else None


# ---- applying an init to a model config ----

def build_model(model_cfg: dict):
    from mmengine.registry import init_default_scope

    from mmaction.registry import MODELS
    init_default_scope("mmaction")
    return MODELS.build(model_cfg)


def accepts(type_name: str, arg: str) -> bool:
    """Whether the registered backbone class takes a constructor argument (frozen_stages ...)."""
    import inspect

    from mmaction.registry import MODELS
    for cls in inspect.getmro(MODELS.get(type_name) or object):   # ResNetTSM passes **kwargs on to ResNet
        params = inspect.signature(cls.__init__).parameters
        if arg in params:
            return True
        if not any(q.kind is q.VAR_KEYWORD for q in params.values()):
            return False
    return False


def apply(cfg, p: dict, run_dir: Path, class_names: list[str]):
    """The training config with this run's init: the fine-tune knobs on the backbone (where its
    class takes them) and InitFromCheckpointHook, after checking that the checkpoint fits (so a
    mismatch fails before training, naming the layers). From scratch: unchanged."""
    src = resolve(p)
    if src is None:
        return cfg
    ft = finetune(p)
    applied = {}
    for knob in ("frozen_stages", "norm_eval"):
        if knob in ft and accepts(cfg.model["backbone"]["type"], knob):
            cfg.model["backbone"][knob] = applied[knob] = ft[knob]
    load_head = src["classes"] is not None and list(src["classes"]) == list(class_names)
    built = build_model(cfg.model.to_dict())
    check(built, match(built, revise(state_dict_of(src["checkpoint"]), ft.get("revise_keys")), load_head),
          src["checkpoint"])
    init_cfg = dict(type="PetPretrained", checkpoint=src["checkpoint"], load_head=load_head,
                    revise_keys=ft.get("revise_keys", []), report=str(Path(run_dir) / REPORT),
                    init=p["init"], kind=src["kind"], source=src["source"],
                    finetune=dict(applied, lr_scale=ft.get("lr_scale", 1.0)))
    cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="InitFromCheckpointHook", init_cfg=init_cfg)]
    return cfg


def register() -> None:
    """PetPretrained, an mmengine initializer (mmengine's PretrainedInit that loads what `match`
    says fits, the head only from the same classes, and writes init.json), in mmengine's root
    registry, which every scope falls back to; and InitFromCheckpointHook, which runs it.

    Why a hook and not the recogniser's init_cfg: mmaction2's recognisers take no init_cfg, and
    BaseModule.init_weights runs a Pretrained-kind entry after the children's own initialisation
    only when its type is exactly 'Pretrained'; the hook runs it at before_train, after
    mmengine's init_weights, and only on a fresh run (a resumed one has its own weights)."""
    from mmengine.hooks import Hook
    from mmengine.model.weight_init import PretrainedInit
    from mmengine.registry import WEIGHT_INITIALIZERS
    from mmaction.registry import HOOKS
    if "PetPretrained" in WEIGHT_INITIALIZERS.module_dict:
        return

    @WEIGHT_INITIALIZERS.register_module(name="PetPretrained")
    class PetPretrainedInit(PretrainedInit):
        def __init__(self, checkpoint, load_head=False, revise_keys=(), report=None, init="", kind="",
                     source="", finetune=None, map_location="cpu"):
            super().__init__(checkpoint, prefix=None, map_location=map_location)
            self.cfg = dict(checkpoint=checkpoint, init=init, kind=kind, source=source, finetune=finetune or {})
            self.load_head, self.revise_keys, self.report = load_head, revise_keys, report

        def __call__(self, module):
            from mmengine.dist import is_main_process
            from mmengine.logging import print_log
            from mmengine.runner.checkpoint import load_state_dict
            state = revise(state_dict_of(self.checkpoint), self.revise_keys)
            m = match(module, state, self.load_head)
            check(module, m, self.checkpoint)
            load_state_dict(module, {k: state[k] for k in m["loaded"]}, strict=False, logger="current")
            rec = report(module, m, self.cfg)
            print_log(f"init {rec['init']}: {rec['loaded']} tensors from {rec['source']}; {rec['missing']} kept "
                      f"fresh ({m['head']} {'loaded' if self.load_head else 're-initialised'}), "
                      f"{rec['unexpected']} not used", logger="current")
            if self.report and is_main_process():
                atomic.write_json(self.report, rec, indent=1)
            return rec

        def _get_init_info(self):
            return f"PetPretrained: load from {self.checkpoint}"

    @HOOKS.register_module()
    class InitFromCheckpointHook(Hook):
        """Load the run's init checkpoint (a PetPretrained init_cfg) before the first step."""

        priority = "VERY_HIGH"   # before any other before_train (channels_last, logging)

        def __init__(self, init_cfg: dict):
            self.init_cfg = init_cfg

        def before_train(self, runner) -> None:
            from mmengine.model import is_model_wrapper
            from mmengine.model.weight_init import initialize
            if runner.iter > 0:   # resumed: mmengine restored this run's own weights
                return
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            initialize(model, self.init_cfg)
