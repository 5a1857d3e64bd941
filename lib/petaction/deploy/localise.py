"""Where the pet is in a frame, for infer: the hook a pet detector plugs into. A localiser is a
callable taking a ``video.Frame`` and returning the pet box (x, y, w, h) or None (the whole
frame), with a ``name`` the outputs quote: the study's detector, the whole frame, or an AI-Hub
clip's own label boxes (ground truth, for comparison).
"""
from __future__ import annotations

from pathlib import Path

from ..data import video
from ..training.detector import DetectorLocaliser


WHOLE_FRAME = "whole frame (no pet detector trained for this study)"


class WholeFrame:
    """No detector: the model sees the whole frame, and the outputs say so."""
    name = WHOLE_FRAME

    def __call__(self, frame: video.Frame):
        return None


class LabelBoxes:
    """The pet boxes of an AI-Hub clip's own label JSON (the nearest annotated frame's box, as
    prepare crops): ground truth, not a detector, and the outputs say so. It shows what the
    model gives when it sees what it was trained on (tight crops)."""
    name = "AI-Hub label boxes (ground truth, not a detector)"

    def __init__(self, label_json: Path):
        from ..data import aihub
        self.boxes = aihub.boxes_by_frame(aihub.load_label(label_json)["annotations"])
        if not self.boxes:
            raise ValueError(f"{label_json}: no usable bounding_box in its annotations: use --boxes none")

    @classmethod
    def for_folder(cls, folder: Path) -> "LabelBoxes":
        """The label JSON of a clip folder: same name plus .json, in the same split's tree."""
        folder = Path(folder)
        for root in list(folder.parents)[:3]:
            found = sorted(root.rglob(f"{folder.name}.json"))
            if found:
                return cls(found[0])
        raise FileNotFoundError(f"no label JSON named {folder.name}.json near {folder}: use --boxes none")

    def __call__(self, frame: video.Frame):
        from ..data import aihub
        return aihub.nearest_box(self.boxes, frame.index)


def detector_dir(run: Path) -> Path:
    """Where detector.py writes the study's detector: ``<target dir>/detector`` beside ``models/``."""
    return Path(run).resolve().parents[2] / "detector"


def default_localiser(run: Path | None = None):
    """The study's pet detector when one has been trained, else the whole frame.

    Contract for any localiser: a callable taking a ``video.Frame`` (BGR ``image``, ``index``,
    ``t``) and returning the pet box (x, y, w, h) in that frame's pixels, or None (whole
    frame), with a ``name`` attribute the outputs quote."""
    if run is not None and (detector_dir(run) / "metrics.json").is_file():
        return DetectorLocaliser(detector_dir(run))
    return WholeFrame()


def make_localiser(boxes: str, video_spec, run: Path | None = None):
    """--boxes: "auto" (the study's detector, else the whole frame), "detector", "none" (whole
    frame), "label" (an AI-Hub clip's own label boxes)."""
    if boxes == "label":
        if not Path(str(video_spec)).is_dir():
            raise ValueError("--boxes label needs an AI-Hub clip folder (its label JSON holds the boxes)")
        return LabelBoxes.for_folder(Path(video_spec))
    if boxes == "none":
        return WholeFrame()
    if boxes == "auto":
        return default_localiser(run)
    if boxes == "detector":
        if run is None or not (detector_dir(run) / "metrics.json").is_file():
            raise FileNotFoundError(f"no trained pet detector at {detector_dir(run) if run else '<target dir>/detector'}: "
                                    f"train one (papermill notebooks/detector.ipynb out.ipynb) or use --boxes none")
        return DetectorLocaliser(detector_dir(run))
    raise ValueError(f"--boxes {boxes!r}: choose auto, detector, none or label")
