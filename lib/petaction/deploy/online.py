"""Online TSM: a trained TSM-family recogniser run one frame at a time, with cached shifts.

mmaction2's TemporalShift (``mmaction/models/backbones/resnet_tsm.py``; MobileNetV2TSM uses
the same module) works on a batch of ``num_segments`` frames: in every shifted block, the
first ``1/shift_div`` of the channels of frame t come from frame t+1 (the "future" fold), the
next ``1/shift_div`` from frame t-1 (the "past" fold), both zero beyond the clip's ends. Here
each shifted residual block is wrapped (:class:`OnlineShiftBlock`) and its TemporalShift
swapped for :class:`OnlineTemporalShift`, which takes one frame and gets its two neighbour
folds from a per-block cache; the rest of the backbone and head is mmaction2's own, with the
run's weights. One step = one frame through the 2D network.

Why the exact mode is delayed
    The offline shift is bidirectional: frame t's features at block l depend on frames up to
    t+l. A strictly causal step that returns frame t's features when frame t arrives cannot
    equal them (it would need frames that have not arrived). No cache fixes this for a sliding
    window either: moving the window by one frame moves both of its zero-padded ends, which
    changes the features of every frame within l frames of an end, i.e. all of them in a
    window of ``num_segments`` frames; matching the windowed model exactly costs a whole
    window per prediction. What does hold, at one frame of CNN per step:

``mode="exact"`` (default): each shifted block works one step behind the block before it.
    When block l receives frame tau+g's input it computes frame tau, whose past (tau-g) and
    future (tau+g) inputs it now holds (rings of its last g inputs and of the g past folds
    before them). So the network's output at step t is frame t - D's, D = g x (shifted
    blocks), and it equals what the offline
    model computes for that frame over the whole stream taken as one clip: zeros before the
    first frame (the offline start padding), and after the last frame once :meth:`flush`
    runs (the offline end padding). In particular, a stream of ``num_segments`` frames plus
    its flush gives exactly the offline model's scores on those frames (tested within 1e-4
    for every TSM-family model file). The price is the delay D: a prediction about frame tau
    is ready when frame tau + D arrives.

``mode="causal"``: TSM's online shift (no delay): the past fold comes from the cache, the
    future fold is zero, as the offline model gives the last frame of a clip. It is exactly
    the same network with a one-directional shift; the weights were trained with the
    bidirectional one, so its scores differ from the offline model's (how much: the
    benchmark's label agreement).

``gap`` g: shift partners are g steps apart (1: consecutive frames). Frames g apart form g
interleaved streams, each its own TSM sequence, so the frames one prediction sees can be
spaced as the training segments were. The class scores of step t: the head's logits of the
last ``num_segments`` frames g apart averaged (AvgConsensus), then the head's
``average_clip`` (softmax with ``average_clips='prob'``), all inside :class:`OnlineTSM`, so
the ONNX export is the whole step: frame + caches in, scores + caches out. Every cache is a
fixed-size ring, so memory does not grow with the stream.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import export

# mmaction.models imports on the pinned mmaction2 only after petaction.setup() (the entry points call it)
from mmaction.models.backbones.resnet_tsm import TemporalShift
from mmaction.registry import MODELS

MODES = ("exact", "causal")
TSM_BACKBONES = ("ResNetTSM", "MobileNetV2TSM")
EQUIV_TOL = 1e-4     # max |online - offline| class score (the equivalence tests)
NO_END = 1e9         # `last` while the stream has no known end


@MODELS.register_module()
class OnlineTemporalShift(TemporalShift):
    """TemporalShift of a single frame: its future and past folds are set from outside (by
    the :class:`OnlineShiftBlock` around it) instead of being cut from a batch of segments."""

    def __init__(self, net, num_segments=1, shift_div=8):
        super().__init__(net, num_segments=num_segments, shift_div=shift_div)
        self.past = self.future = None

    @classmethod
    def from_offline(cls, shift: TemporalShift) -> "OnlineTemporalShift":
        return cls(shift.net, shift.num_segments, shift.shift_div)

    def forward(self, x):
        fold = x.shape[1] // self.shift_div
        return self.net(torch.cat((self.future, self.past, x[:, 2 * fold:]), 1))


@MODELS.register_module()
class OnlineShiftBlock(nn.Module):
    """A shifted residual block (ResNet's BasicBlock/Bottleneck, MobileNetV2's
    InvertedResidual) run one frame per call, with the cache of its inputs.

    exact: ``state`` is (the past folds of frames tau-g .. tau-1, the block's whole inputs of
    frames tau .. tau+g-1); the call with frame tau+g's input returns frame tau's output, the
    block's identity path included. causal: ``state`` is (the past folds of frames tau-g ..
    tau-1,); the call returns frame tau's output. The new caches are left in ``new_state``;
    :class:`OnlineTSM` passes caches in and out."""

    def __init__(self, block: nn.Module, shift: OnlineTemporalShift, gap: int, mode: str, delay: int):
        super().__init__()
        self.block, self.gap, self.mode, self.delay = block, gap, mode, delay
        self._shift = [shift]            # a list: not a second registration of the block's submodule
        self.state = self.new_state = self.t = self.last = None
        self.n_states = 2 if mode == "exact" else 1

    def empty_state(self, x: torch.Tensor) -> tuple:
        fold = x.shape[1] // self._shift[0].shift_div
        past = x.new_zeros((self.gap, fold, *x.shape[2:]))
        return (past, x.new_zeros((self.gap, *x.shape[1:]))) if self.mode == "exact" else (past,)

    def forward(self, x):
        shift, g = self._shift[0], self.gap
        fold = x.shape[1] // shift.shift_div
        if self.state is None:           # probing the shapes (OnlineTSM.empty_states)
            self.state = self.empty_state(x)
        past = self.state[0]
        if self.mode == "causal":
            shift.past, shift.future = past[:1], torch.zeros_like(x[:, :fold])
            self.new_state = (torch.cat((past[1:], x[:, fold:2 * fold]), 0),)
            return self.block(x)
        recent = self.state[1]
        tau = self.t - self.delay        # the frame this block works on at this step
        # zero padding: no frame before the stream's first, none after its last
        shift.past = past[:1] * (tau - g >= 0).to(x.dtype)
        shift.future = x[:, :fold] * (tau + g <= self.last).to(x.dtype)
        current = recent[:1]
        self.new_state = (torch.cat((past[1:], current[:, fold:2 * fold]), 0), torch.cat((recent[1:], x), 0))
        return self.block(current)


def shifted_blocks(backbone: nn.Module) -> list[tuple[nn.Module, str, nn.Module, TemporalShift]]:
    """(parent, name, block, shift) of every block whose first convolution is temporally
    shifted, in forward order. Both TSM backbones put the shift on the block's first module,
    which sees the block's own input: ResNetTSM ('blockres') on ``block.conv1.conv``,
    MobileNetV2TSM on ``block.conv[0]``; the block is the shift's grandparent."""
    names = {m: n for n, m in backbone.named_modules()}
    out = []
    for name, m in backbone.named_modules():
        if type(m) is not TemporalShift:
            continue
        block = backbone.get_submodule(name.rsplit(".", 2)[0])
        first = next(block.children())
        if not (first is m or next(first.children(), None) is m):
            raise ValueError(f"{name}: the shift is not on the block's first module (shift_place 'block'?): "
                             f"online mode supports 'blockres' ResNetTSM and MobileNetV2TSM")
        bname = names[block]
        parent = backbone.get_submodule(bname.rsplit(".", 1)[0]) if "." in bname else backbone
        out.append((parent, bname.rsplit(".", 1)[-1], block, m))
    return out


def check_tsm(model) -> None:
    from mmaction.models.backbones import MobileNetV2TSM, ResNetTSM
    bb = getattr(model, "backbone", None)
    name = type(bb).__name__
    if not isinstance(bb, (ResNetTSM, MobileNetV2TSM)):   # their subclasses too (mmmodels.SmallInputResNetTSM)
        raise ValueError(f"online mode needs a TSM backbone ({', '.join(TSM_BACKBONES)}), this run has {name}: "
                         f"drop --online (the windowed path runs every model)")
    if getattr(bb, "temporal_pool", False) or getattr(bb, "non_local_cfg", None):
        raise ValueError("online mode does not support TSM with temporal pooling or non-local blocks")
    if getattr(model.cls_head, "temporal_pool", False):
        raise ValueError("online mode does not support a TSM head with temporal pooling")


def swap_in_place(model, gap: int = 1, mode: str = "exact") -> list[OnlineShiftBlock]:
    """Replace every shifted block of a loaded recogniser's backbone by its online wrapper
    (same weights, same modules); returns the wrappers in forward order."""
    if mode not in MODES:
        raise ValueError(f"online mode {mode!r}: choose {' or '.join(MODES)}")
    if gap < 1:
        raise ValueError(f"gap {gap}: must be >= 1 (frames between shift partners)")
    check_tsm(model)
    wrappers = []
    for k, (parent, name, block, shift) in enumerate(shifted_blocks(model.backbone), start=1):
        online = OnlineTemporalShift.from_offline(shift)
        holder_name, holder = next((n, h) for n, h in block.named_modules()
                                   if any(c is shift for c in h.children()))
        child = next(n for n, c in holder.named_children() if c is shift)
        holder._modules[child] = online
        w = OnlineShiftBlock(block, online, gap, mode, delay=k * gap if mode == "exact" else 0)
        parent._modules[name] = w
        wrappers.append(w)
    if not wrappers:
        raise ValueError("this TSM backbone has no shifted block (is_shift false?): nothing to run online")
    return wrappers


class OnlineTSM(nn.Module):
    """One online step as a tensor function (what ONNX captures):

    ``(frame, t, last, logits, *caches) -> (scores, logits, *caches)``: ``frame`` the packed
    test-pipeline frame (1, 3, H, W), raw 0..255; ``t`` the step number; ``last`` the step of
    the stream's last frame (:data:`NO_END` while unknown); ``logits`` the ring of the head's
    recent per-frame logits. ``scores`` are frame ``t - delay``'s class scores (consensus over
    its last ``num_segments`` frames ``gap`` apart)."""

    def __init__(self, model, mode: str = "exact", gap: int = 1):
        super().__init__()
        self.model, self.mode, self.gap = model.eval(), mode, gap
        self.blocks = swap_in_place(model, gap, mode)
        self.num_segments = int(model.backbone.num_segments)
        self.delay = len(self.blocks) * gap if mode == "exact" else 0
        self.span = (self.num_segments - 1) * gap + 1
        pre = model.data_preprocessor
        if getattr(pre, "to_rgb", False):
            raise ValueError("data preprocessors that swap BGR to RGB are not supported (none in this project)")
        self.normalise = bool(getattr(pre, "_enable_normalize", False))
        self.eval()      # the wrapper too: torch.onnx.export restores the wrapper's mode to every submodule

    def head_logits(self, feat: torch.Tensor) -> torch.Tensor:
        """TSMHead.forward up to its consensus, for one frame: pool, dropout, fc."""
        head = self.model.cls_head
        x = head.avg_pool(feat) if head.avg_pool is not None else feat
        x = torch.flatten(x, 1)
        if head.dropout is not None:
            x = head.dropout(x)
        return head.fc_cls(x)

    def forward(self, frame, t, last, logits, *states):
        x = frame.float()
        if self.normalise:
            x = (x - self.model.data_preprocessor.mean) / self.model.data_preprocessor.std
        i = 0
        for b in self.blocks:
            b.state, b.t, b.last = states[i:i + b.n_states], t, last
            i += b.n_states
        ring = torch.cat((logits[1:], self.head_logits(self.model.backbone(x))), 0)
        back = torch.arange(0, self.span, self.gap)                  # steps back from the newest frame
        used = ring[self.span - 1 - back]
        # frames before the stream's start do not count (the first predictions average fewer)
        weight = ((t - self.delay - back.to(x.dtype)) >= 0).to(x.dtype)[:, None]
        mean = (used * weight).sum(0, keepdim=True) / weight.sum().clamp(min=1)
        scores = self.model.cls_head.average_clip(mean, num_segs=1)
        return (scores, ring, *[c for b in self.blocks for c in b.new_state])

    def empty_states(self, frame: torch.Tensor) -> list[torch.Tensor]:
        """Zero caches for frames of ``frame``'s shape: [logits ring, then each shifted block's]."""
        for b in self.blocks:
            b.state = None
        t = torch.tensor(0.0)
        with torch.no_grad():
            x = frame.float()
            for b in self.blocks:
                b.t, b.last = t, torch.tensor(NO_END)
            logits = self.head_logits(self.model.backbone(x))
        states = [torch.zeros((self.span, logits.shape[1]))] + [torch.zeros_like(c) for b in self.blocks for c in b.new_state]
        for b in self.blocks:
            b.state = None
        return states


def input_names(n_states: int) -> list[str]:
    return ["frame", "t", "last", "logits", *[f"cache{i}" for i in range(n_states - 1)]]


def export_step(net: OnlineTSM, frame: torch.Tensor, out: Path) -> Path:
    """The online step as ONNX (legacy TorchScript exporter, as export.export_model)."""
    states = net.empty_states(frame)
    names = input_names(len(states))[3:]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(net, (frame.float(), torch.tensor(0.0), torch.tensor(NO_END), *states), str(out),
                          dynamo=False, opset_version=export.OPSET, do_constant_folding=True,
                          input_names=input_names(len(states)),
                          output_names=["scores", *[f"{n}_out" for n in names]])
    return out


@dataclass
class Stepper:
    """Drives an :class:`OnlineTSM` (PyTorch) or its ONNX export over a stream: holds the
    caches and the step count. ``push(frame)`` -> ``(frame_index, scores)`` or None while
    the delay fills; ``flush()`` -> the remaining frames' scores once the stream ends."""
    net: OnlineTSM
    backend: str = "torch"
    onnx_path: Path | None = None
    threads: int | None = None
    states: list = field(default=None, init=False, repr=False)
    t: int = field(default=0, init=False)

    def __post_init__(self):
        if self.backend not in ("torch", "onnx"):
            raise ValueError(f"backend {self.backend!r}: choose 'torch' or 'onnx'")
        self.sess, self._tmp = None, None

    @property
    def delay(self) -> int:
        return self.net.delay

    def start(self, frame: torch.Tensor) -> None:
        """Empty caches for frames shaped like ``frame`` (and the ONNX export, once): the
        first push does it, or call it before a timed stream."""
        self._blank = torch.zeros_like(frame)
        self.states = self.net.empty_states(frame)
        if self.backend == "onnx":
            if self.onnx_path is None:
                self._tmp = tempfile.TemporaryDirectory()
                self.onnx_path = export_step(self.net, frame, Path(self._tmp.name) / "online.onnx")
            if self.sess is None:
                self.sess = export.session(self.onnx_path, self.threads)
            self.states = [s.numpy() for s in self.states]

    def _step(self, frame, last: float):
        if self.backend == "torch":
            with torch.no_grad():
                out = self.net(frame, torch.tensor(float(self.t)), torch.tensor(float(last)), *self.states)
            scores, self.states = out[0][0].numpy(), list(out[1:])
        else:
            values = dict(zip(input_names(len(self.states)),
                              [np.asarray(frame, np.float32), np.array(self.t, np.float32), np.array(last, np.float32),
                               *self.states]))
            # by name: the exporter drops an input the graph does not read (``last`` in causal mode)
            out = self.sess.run(None, {i.name: values[i.name] for i in self.sess.get_inputs()})
            scores, self.states = out[0][0], out[1:]
        tau = self.t - self.delay
        self.t += 1
        return (tau, scores) if tau >= 0 else None

    def push(self, frame: torch.Tensor):
        if self.states is None:
            self.start(frame)
        return self._step(frame, NO_END)

    def flush(self):
        """The end of the stream: yields the frames still in the pipeline, one step each,
        computed with the offline model's zero padding after the last frame."""
        if self.states is None:
            return
        last = self.t - 1
        for _ in range(self.delay):
            out = self._step(self._blank, last)
            if out is not None and out[0] <= last:
                yield out

    def reset(self) -> None:
        self.states, self.t = None, 0


def frame_pipeline(test_pipeline: list) -> list:
    """The run's test pipeline for one frame held in an array: no segment sampling, the
    decode step reads the array (mmaction2's ArrayDecode); resize, crop and format as tested."""
    steps = [dict(s) for s in test_pipeline]
    if not steps or steps[0]["type"] != "SampleFrames" or steps[0].get("clip_len", 1) != 1:
        raise ValueError(f"expected segment sampling first in the run's test pipeline, got "
                         f"{[s['type'] for s in steps]}")
    decode = [i for i, s in enumerate(steps) if s["type"].endswith("Decode")]
    if len(decode) != 1:
        raise ValueError(f"expected one decode step in the run's test pipeline, got {[s['type'] for s in steps]}")
    steps[decode[0]] = dict(type="ArrayDecode")
    return steps[1:]


def frame_inputs(image_rgb: np.ndarray) -> dict:
    """What SampleFrames would have left for a one-frame clip (ArrayDecode reads ``array``)."""
    return dict(array=image_rgb[None], total_frames=1, start_index=0, modality="RGB", label=-1,
                frame_inds=np.array([0]), clip_len=1, frame_interval=None, num_clips=1)


def offline_frame_logits(model, clip: torch.Tensor) -> torch.Tensor:
    """Per-frame head logits of the offline model on one clip taken whole: (T, 3, H, W) raw
    frames as ``num_segments = T`` (what the exact online stream equals frame by frame)."""
    bb = model.backbone
    old = {m: m.num_segments for m in bb.modules() if type(m) is TemporalShift}
    try:
        for m in old:
            m.num_segments = clip.shape[0]
        x = clip.float()
        pre = model.data_preprocessor
        if getattr(pre, "_enable_normalize", False):
            x = (x - pre.mean) / pre.std
        with torch.no_grad():
            feat = bb(x)
            head = model.cls_head
            y = torch.flatten(head.avg_pool(feat), 1)
            return head.fc_cls(y)
    finally:
        for m, n in old.items():
            m.num_segments = n
