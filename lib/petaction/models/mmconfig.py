"""Compose an mmaction2 config from resolved train parameters.

The model dict layers over mmaction2's own `configs/_base_/models/<mm_base>.py` (read by
absolute path: `mmaction::` scoped bases fail under mmengine 0.10.7); data, schedule and
runtime parts are built here. The result is a plain config that mmaction2's tools run.
"""
from __future__ import annotations

from pathlib import Path

from mmengine.config import Config

from ..core import paths
from . import pretrained
from .mmcompat import mm_configs_dir
from ..core.dicts import deep_merge, strip_delete

TSM_TYPES = {"ResNetTSM", "SmallInputResNetTSM", "MobileNetV2TSM", "TSMHead"}   # mmmodels registers SmallInput*
FILENAME_TMPL = "img_{:05d}.jpg"


def base_model(name: str) -> dict:
    """The `model` dict of an mmaction2 base model config (empty for name "")."""
    if not name:
        return {}
    path = mm_configs_dir() / "_base_" / "models" / f"{name}.py"
    if not path.is_file():
        valid = sorted(p.stem for p in path.parent.glob("*.py"))
        raise ValueError(f"mm_base {name!r} is not an mmaction2 base model; valid: {', '.join(valid)}")
    return Config.fromfile(str(path)).model.to_dict()


def model_dict(p: dict, num_classes: int) -> dict:
    model = deep_merge(base_model(p["mm_base"]), p["model_cfg"])
    if p["lite"]:
        model = deep_merge(model, p["model_cfg_lite"])
    model = strip_delete(model)
    model["cls_head"]["num_classes"] = num_classes
    for part in ("backbone", "cls_head"):
        if model[part]["type"] in TSM_TYPES:     # TSM shifts across this many segments
            model[part]["num_segments"] = p["num_segments"]
    return model


def pipelines(p: dict) -> tuple[list, list]:
    """Train and test pipelines: segment sampling (2D) or dense clips (3D)."""
    size = p["img_size"]
    resize = p["resize"] or round(size * 8 / 7)   # 0: the zoo's 256 -> 224 ratio
    if p["sampling"] == "segments":
        sample = dict(type="SampleFrames", clip_len=1, frame_interval=1, num_clips=p["num_segments"])
        test_sample = dict(sample, test_mode=True)
        fmt = "NCHW"
    else:
        sample = dict(type="SampleFrames", clip_len=p["clip_len"], frame_interval=p["frame_interval"], num_clips=1)
        test_sample = dict(sample, num_clips=p["test_clips"], test_mode=True)
        fmt = "NCTHW"
    decode = dict(type="CachedRawFrameDecode")   # frames decoded once per process (mmmodels)
    train = [sample, decode, dict(type="Resize", scale=(-1, resize)),
             dict(type="RandomCrop", size=size), dict(type="Flip", flip_ratio=0.5),
             dict(type="FormatShape", input_format=fmt), dict(type="PackActionInputs")]
    test = [test_sample, dict(decode), dict(type="Resize", scale=(-1, resize)),
            dict(type="CenterCrop", crop_size=size), dict(type="FormatShape", input_format=fmt),
            dict(type="PackActionInputs")]
    return train, test


def loader(p: dict, data_dir: Path, split: str, pipeline: list, train: bool, classes=None) -> dict:
    workers = p["num_workers"]
    dataset = dict(type="RawframeDataset", ann_file=str(data_dir / paths.split_file(split, p.get("fold", 0), p.get("trial", 0))),
                   data_prefix=dict(img=str(data_dir / "frames")), filename_tmpl=FILENAME_TMPL,
                   pipeline=pipeline, test_mode=not train)
    sampler = dict(type="DefaultSampler", shuffle=train)
    if train and p["class_balance"] == "sampler":
        # mmdet's sampler: each step draws a class uniformly, then a clip of it (epoch length kept)
        sampler = dict(type="mmdet.ClassAwareSampler", seed=p["seed"])
        dataset.update(type="LabelledRawframeDataset", metainfo=dict(classes=list(classes or [])))
    # validation and test batch as training does: a model in eval mode scores each clip alone
    # whatever the batch, and batch 1 spent a fifth of a quick-profile epoch on 90 val clips
    return dict(batch_size=p["batch_size"], num_workers=workers, persistent_workers=workers > 0,
                sampler=sampler, dataset=dataset)


def schedule(p: dict) -> list:
    """Linear warm-up, the peak rate held until ``lr_decay_from`` (a share of the epochs), then
    cosine decay; stepped per iteration. Holding the peak matters from scratch on little data:
    the loss sits at the class prior for a few hundred iterations before it falls, and a
    cosine that starts at once has halved the rate by then (measured: TSM stalled)."""
    epochs, warm = p["epochs"], min(p["warmup_epochs"], p["epochs"] - 1)
    flat_end = min(max(warm, int(round(p["lr_decay_from"] * epochs))), epochs - 1)
    sched = []
    if warm > 0:
        sched.append(dict(type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=warm,
                          convert_to_iter_based=True))
    sched.append(dict(type="CosineAnnealingLR", T_max=epochs - flat_end, eta_min=0, by_epoch=True,
                      begin=flat_end, end=epochs, convert_to_iter_based=True))
    return sched


def class_weights(counts: list[int]) -> list[float]:
    """Inverse-frequency weights, normalised to mean 1 (class_balance: loss)."""
    inv = [1.0 / max(c, 1) for c in counts]
    scale = len(inv) / sum(inv)
    return [round(w * scale, 6) for w in inv]


def topk(n: int) -> tuple:
    """The top-k accuracies reported for n classes (1, 3, 5, capped at n)."""
    return tuple(sorted({1, min(3, n), min(5, n)}))


TENSORBOARD_DIR = "tensorboard"   # <run>/tensorboard: `tensorboard --logdir results/<study>` names the run by its folder


def vis_backends(names: list, run_dir: Path, study_dir: Path) -> list[dict]:
    """mmengine visualisation backends (``vis_backends``: names of mmengine's VISBACKENDS, or
    ``{type: ..., kwargs}``) that every training's scalars go to: loss and learning rate per
    logging interval, validation metrics per epoch. LocalVisBackend keeps mmengine's place
    (<run>/<timestamp>/vis_data, which the detector reads back); TensorBoard writes to
    <run>/tensorboard, one folder per run rather than one per attempt, so that a resumed
    training continues its curve; MLflow logs every run of the study into one store,
    <study>/mlflow.db (SQLite: MLflow 3 refuses its plain-file store unless told to), its
    artifacts under <study>/mlruns, as experiment <study> and run <target/models/model/seed>
    (what ``mlflow ui --backend-store-uri sqlite:///results/<study>/mlflow.db`` lists). A key
    given in the mapping wins over these."""
    try:
        run = run_dir.resolve().relative_to(study_dir.resolve()).as_posix()
    except ValueError:   # a run folder outside the study's (a scratch config): its own name
        run = run_dir.name
    places = {"TensorboardVisBackend": dict(save_dir=str(run_dir / TENSORBOARD_DIR)),
              "MLflowVisBackend": dict(save_dir=str(study_dir / "mlruns"), exp_name=study_dir.name, run_name=run,
                                       tracking_uri=f"sqlite:///{study_dir / 'mlflow.db'}",
                                       artifact_location=(study_dir / "mlruns").as_uri())}
    out = []
    for b in names:
        b = dict(b) if isinstance(b, dict) else {"type": b}
        out.append({**places.get(b["type"], {}), **b})
    return out


def visualizer(p: dict, run_dir: Path) -> dict:
    """The recognisers' visualizer (mmaction2's) with the run's backends (vis_backends)."""
    study_dir = paths.results_root(p["results_dir"] or None) / p["study"]   # no mkdir: a config only
    return dict(type="ActionVisualizer", vis_backends=vis_backends(p["vis_backends"], Path(run_dir), study_dir))


def fused_flag() -> str:
    """AdamW's keyword for one kernel over all parameters: "fused" where this torch has the
    fused kernel for the tensors' device (CPU since torch 2.4), else "foreach" (a loop over
    parameter lists, not over parameters). The update is AdamW's either way; only the rounding
    order differs from the per-parameter loop (tests/test_throughput.py)."""
    import torch
    try:
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], fused=True)
        return "fused"
    except (RuntimeError, ValueError, TypeError):
        return "foreach"


def training(p: dict, run_dir: Path, class_names: list[str], imports=("petaction.mmsetup",)) -> dict:
    """What every training here shares, whatever the model and data: epochs and validation,
    optimizer and schedule, hooks, seeding, work dir, visualisation backends (mmconfig.build and
    detection.build)."""
    optimizer = dict(type=p["optimizer"], lr=p["lr"], weight_decay=p["weight_decay"])
    if p["optimizer"] == "SGD":
        optimizer["momentum"] = p["momentum"]
    if p["fused_optimizer"] and p["optimizer"] == "AdamW":
        optimizer[fused_flag()] = True
    return dict(
        default_scope="mmaction",
        custom_imports=dict(imports=list(imports), allow_failed_imports=False),
        train_cfg=dict(type="EpochBasedTrainLoop", max_epochs=p["epochs"], val_begin=1, val_interval=1),
        val_cfg=dict(type="ValLoop"), test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(type="AmpOptimWrapper" if p["amp"] else "OptimWrapper", optimizer=optimizer,
                           clip_grad=dict(max_norm=p["grad_clip"], norm_type=2) if p["grad_clip"] else None),
        param_scheduler=schedule(p),
        default_hooks=dict(
            runtime_info=dict(type="RuntimeInfoHook"), timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=10, ignore_last=False),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(type="CheckpointHook", interval=1, save_best="acc/top1", rule="greater",
                            max_keep_ckpts=1, save_last=True),
            sampler_seed=dict(type="DistSamplerSeedHook"), sync_buffers=dict(type="SyncBuffersHook")),
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
                     dist_cfg=dict(backend="nccl")),
        log_processor=dict(type="LogProcessor", window_size=10, by_epoch=True),
        log_level="INFO", load_from=None, resume=False,
        randomness=dict(seed=p["seed"], deterministic=p["deterministic"], diff_rank_seed=False),
        custom_hooks=[dict(type="EpochCSVHook"), dict(type="TrustCheckpointsHook")],
        work_dir=str(run_dir),
        dataset_meta=dict(classes=class_names),
        visualizer=visualizer(p, run_dir),
    )


def build(p: dict, data_dir: Path, run_dir: Path, class_names: list[str], train_counts: list[int]) -> Config:
    n = len(class_names)
    model = model_dict(p, n)
    if p["class_balance"] == "loss":
        model["cls_head"]["loss_cls"] = dict(type="CrossEntropyLoss", class_weight=class_weights(train_counts))
    train_pipe, test_pipe = pipelines(p)
    acc = dict(type="AccMetric", metric_list=("top_k_accuracy", "mean_class_accuracy"),
               metric_options=dict(top_k_accuracy=dict(topk=topk(n))))
    cfg = Config(dict(
        training(p, run_dir, class_names),
        model=model,
        train_dataloader=loader(p, data_dir, "train", train_pipe, True, class_names),
        val_dataloader=loader(p, data_dir, "val", test_pipe, False),
        test_dataloader=loader(p, data_dir, "test", test_pipe, False),
        val_evaluator=acc,
        test_evaluator=[acc, dict(type="DumpResults", out_file_path=str(run_dir / "test_results.pkl"))],
    ))
    return pretrained.apply(cfg, p, run_dir, class_names)   # init: the checkpoint checked, its loading hook
