"""What one prediction costs: every model's whole test-time forward as one ``nn.Module``.

``build(model)`` wraps a built model (eval mode) so that one call takes the test pipeline's
packed clips and returns the class scores mmaction2's test step gives (``model.test_step``,
which ``inference_recognizer`` calls):

- recognisers (Recognizer2D / 3D): ``inputs`` as the test pipeline's FormatShape and
  PackActionInputs emit them, batched: NCHW models (B, num_segments, 3, H, W), NCTHW models
  (B, test_clips, 3, T, H, W), raw 0..255 pixels (uint8, or float). The call runs the data
  preprocessor (normalisation), the backbone, the neck if any, the head (with its segment
  consensus) and the head's averaging over the views (softmax first with
  ``average_clips='prob'``): scores (B, classes).
- fast_rcnn (mmdet's FastRCNN with mmaction2's AVARoIHead): ``inputs`` (B, 3, T, H, W) whole
  frames and ``boxes`` (B, 4), one RoI per clip (x0, y0, x1, y1 at the key frame, pixels of
  the packed frames). Preprocessor, backbone, RoIAlign, box head and its softmax: the key box's
  scores (B, classes), which is what the clip-level metric reads.

``example_inputs(p)`` builds inputs of the shape a run's parameters give (all test views).
cost.py times and counts FLOPs on this forward, schedule.py estimates training cost with it,
and export.py writes it as ONNX, so there is one definition of "what a prediction costs".
Decoding frames, detecting and cropping the pet are not part of it (see docs/cost.md).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
import warnings

import numpy as np
import torch
from torch import nn


FRAME_ASPECT = 4 / 3   # whole frames (fast_rcnn) when the run's own are not at hand: AI-Hub's 4:3


def is_box_model(model: nn.Module) -> bool:
    """A box-level detector (fast_rcnn): its prediction needs an RoI per clip."""
    return hasattr(model, "roi_head")


def is_recognizer(model: nn.Module) -> bool:
    return hasattr(model, "cls_head") and hasattr(model, "extract_feat")


def preprocess(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """The model's own data preprocessor on a batch (normalisation, to float): what its
    test_step applies before the network."""
    x, _ = model.data_preprocessor.preprocess(list(inputs), None, False)
    return x


@contextlib.contextmanager
def fixed_shape_trace():
    """Quiet the tracer about shapes read as constants (the preprocessor's stack_batch reads
    each clip's shape): a trace here is of one input shape (FLOP counts, a batch-1 ONNX graph)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


class RecognizerForward(nn.Module):
    """A recogniser's test step as one tensor -> tensor function: mmaction2's
    BaseRecognizer.predict (extract_feat(test_mode=True), the head, head.average_clip) after
    its data preprocessor, without the data-sample bookkeeping (which cannot be traced)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not is_recognizer(model):
            raise ValueError(f"{type(model).__name__} is not a clip recogniser (Recognizer2D/3D): "
                             f"a box-level detector takes its boxes too (forward.build picks BoxForward)")
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        feats, kwargs = self.model.extract_feat(preprocess(self.model, inputs), test_mode=True)
        scores = self.model.cls_head(feats, **kwargs)
        return self.model.cls_head.average_clip(scores, num_segs=scores.shape[0] // inputs.shape[0])


class BoxForward(nn.Module):
    """fast_rcnn's test step on clips with one RoI each: mmdet's TwoStageDetector.predict
    with the RoIs given (extract_feat, the RoI head's box forward, BBoxHeadAVA.predict_by_feat
    for the scores). AVARoIHead.predict takes one clip per call; the box forward takes a
    batch, each RoI pooled from its own clip, so a batch is timed as one call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not is_box_model(model):
            raise ValueError(f"{type(model).__name__} has no RoI head: a recogniser takes RecognizerForward")
        self.model = model

    def box_logits(self, inputs: torch.Tensor, boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        """The box head's raw class scores (B, classes), before predict_by_feat's softmax (what
        Grad-CAM differentiates), with the RoIs and image metas they were pooled with."""
        from mmdet.structures.bbox import bbox2roi
        feats = self.model.extract_feat(preprocess(self.model, inputs))
        rois = bbox2roi([b[None] for b in boxes])
        metas = [dict(img_shape=tuple(inputs.shape[-2:]))] * len(boxes)
        return self.model.roi_head._bbox_forward(feats, rois, metas)["cls_score"], rois, metas

    def forward(self, inputs: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        cls_scores, rois, metas = self.box_logits(inputs, boxes)
        head = self.model.roi_head.bbox_head
        results = head.predict_by_feat(rois=rois.clone().split(1), cls_scores=cls_scores.split(1),
                                       batch_img_metas=metas)
        return torch.cat([r.scores for r in results])


def build_model(p: dict, num_classes: int) -> nn.Module:
    """The architecture resolved train parameters describe, built with random weights (eval
    mode): what a run's config.py holds, without a run."""
    from mmengine.config import ConfigDict
    from mmengine.registry import init_default_scope

    from ..models import mmconfig
    from mmaction.registry import MODELS
    init_default_scope("mmaction")
    if is_fast_rcnn_params(p):
        from ..training import detection
        cfg = detection.model_dict(p, num_classes)
    else:
        cfg = mmconfig.model_dict(p, num_classes)
    return MODELS.build(ConfigDict(cfg)).eval()   # ConfigDict: mmdet reads its parts as attributes


def build(model: nn.Module) -> nn.Module:
    """The whole test-time forward of a built model (either kind), in eval mode."""
    return (BoxForward(model) if is_box_model(model) else RecognizerForward(model)).eval()


def views(p: dict, split: str = "test") -> int:
    """Views of one prediction: the test pipeline's clips (3D; training samples one), or the
    frames a segment model samples (num_segments, every split)."""
    if p["sampling"] == "segments":
        return p["num_segments"]
    return p["test_clips"] if split == "test" and not is_fast_rcnn_params(p) else 1


def is_fast_rcnn_params(p: dict) -> bool:
    return (p.get("model_cfg") or {}).get("type") == "FastRCNN"


def example_inputs(p: dict, batch: int = 1, split: str = "test", frame_shape: tuple[int, int] | None = None,
                   dtype: torch.dtype = torch.uint8, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random packed clips (0..255) shaped as a run's ``split`` pipeline batches them, as the
    arguments of build(model): (inputs,) for a recogniser, (inputs, boxes) for fast_rcnn
    (whole frames of ``frame_shape``, default img_size high at 4:3; the RoI the frame's
    central half)."""
    s = p["img_size"]
    if is_fast_rcnn_params(p):
        h, w = frame_shape or (s, round(s * FRAME_ASPECT))
        shape = (batch, 3, p["clip_len"], h, w)
    elif p["sampling"] == "clip":
        shape = (batch, views(p, split), 3, p["clip_len"], s, s)
    else:
        shape = (batch, views(p, split), 3, s, s)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, shape, generator=g).to(dtype)
    if not is_fast_rcnn_params(p):
        return (x,)
    h, w = shape[-2:]
    boxes = torch.tensor([[w / 4, h / 4, 3 * w / 4, 3 * h / 4]]).repeat(batch, 1)
    return x, boxes


def test_step_scores(model: nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    """mmaction2's / mmdet's own test_step on the same batch, one data sample per clip (fast_rcnn:
    one clip per call, as AVARoIHead takes them): the class scores its metric reads (a
    recogniser's pred_score; fast_rcnn's key-box scores)."""
    from mmaction.structures import ActionDataSample
    x = inputs[0]
    with torch.no_grad():
        if not is_box_model(model):
            data = {"inputs": list(x), "data_samples": [ActionDataSample() for _ in range(len(x))]}
            return np.stack([o.pred_score.numpy() for o in model.test_step(data)])
        from mmengine.structures import InstanceData
        out = []
        for clip, box in zip(x, inputs[1]):
            s = ActionDataSample(metainfo=dict(img_shape=tuple(clip.shape[-2:])))
            s.proposals = InstanceData(bboxes=box[None].clone())
            out.append(model.test_step({"inputs": [clip], "data_samples": [s]})[0].pred_instances.scores[0].numpy())
        return np.stack(out)


# ---- a trained run's recogniser (export, infer and the end-to-end scoring load it alike) ----

def checkpoint_of(run: Path) -> Path:
    """The run's kept checkpoint (the best's, or with `checkpoint: last` the final weights': the one
    its test scores come from), or one clear error naming the folder and what to do."""
    from ..training.runfolder import kept_checkpoint
    run = Path(run)
    if not (run / "config.py").is_file():
        # a study with trials names its runs seed<k>_trial<t>: say which runs sit beside the path given
        near = sorted(q.name for q in run.parent.glob("seed*") if (q / "config.py").is_file()) if run.parent.is_dir() else []
        raise FileNotFoundError(f"{run} is not a training run folder (no config.py): "
                                f"pass results/<study>/models/<model>/seed<k>[_trial<t>]"
                                + (f"; the runs in {run.parent}: {', '.join(near)}" if near else ""))
    try:
        return kept_checkpoint(run)
    except FileNotFoundError:
        raise FileNotFoundError(f"{run} has no kept checkpoint (best_*.pth, or with checkpoint: last its final "
                                f"epoch_*.pth): train this model first "
                                f"(python -m petaction train -p model <model>)") from None


def load_recognizer(run: Path):
    """mmaction2's own init_recognizer on the run's config and best checkpoint (CPU)."""
    from mmaction.apis import init_recognizer
    from mmengine.config import Config
    ckpt = checkpoint_of(run)
    return init_recognizer(Config.fromfile(str(Path(run) / "config.py"), import_custom_modules=False),   # setup() has run
                           str(ckpt), device="cpu")
