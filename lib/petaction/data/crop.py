"""Crop a frame to the pet box and resize it: the geometry of the prepared cache."""
from __future__ import annotations

import cv2
import numpy as np


def square_crop_box(box, img_w: int, img_h: int, margin: float) -> tuple[int, int, int, int]:
    """Square (x0, y0, x1, y1) around a box, grown by `margin` per side, kept inside the image.

    A square crop keeps the pet's aspect ratio, so no single frame reveals a clip's pose
    sequence through its distortion. The square is shifted (not shrunk) to stay inside
    the image, and clipped only when the image itself is smaller than the square.
    """
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    side = min(side, max(img_w, img_h))
    cx, cy = x + w / 2, y + h / 2
    x0 = min(max(cx - side / 2, 0), max(img_w - side, 0))
    y0 = min(max(cy - side / 2, 0), max(img_h - side, 0))
    x1, y1 = min(x0 + side, img_w), min(y0 + side, img_h)
    x0, y0, x1, y1 = int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return 0, 0, img_w, img_h
    return x0, y0, x1, y1


def crop_resize(img: np.ndarray, crop: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Cut `crop` out of the image and resize it to size x size (INTER_AREA: downscaling)."""
    x0, y0, x1, y1 = crop
    patch = img[y0:y1, x0:x1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def resize_short_side(img: np.ndarray, short_side: int) -> tuple[np.ndarray, float]:
    """Whole frame resized so its short side is `short_side`; returns (image, scale)."""
    h, w = img.shape[:2]
    scale = short_side / min(h, w)
    out = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                     interpolation=cv2.INTER_AREA)
    return out, scale


def transform_box(box, crop: tuple[int, int, int, int], size) -> tuple[float, float, float, float]:
    """A box (x, y, w, h) in source pixels expressed in the resized crop's pixels (clipped).

    `size` is the output's side (a square crop) or its (width, height) (a whole frame):
    each axis scales by its own output/crop ratio, the exact factors cv2.resize applied.
    """
    x0, y0, x1, y1 = crop
    out_w, out_h = (size, size) if np.isscalar(size) else size
    sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
    bx0, by0 = (box[0] - x0) * sx, (box[1] - y0) * sy
    bx1, by1 = (box[0] + box[2] - x0) * sx, (box[1] + box[3] - y0) * sy
    bx0, bx1 = np.clip([bx0, bx1], 0, out_w)
    by0, by1 = np.clip([by0, by1], 0, out_h)
    return float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0)


def whole_frame(img: np.ndarray, box, short_side: int) -> tuple[np.ndarray, tuple]:
    """The uncropped frame resized to `short_side`, and its box (x, y, w, h) in the resized
    pixels: the same geometry as a crop of the whole image, so boxes partly outside are clipped."""
    h, w = img.shape[:2]
    out, _ = resize_short_side(img, short_side)
    return out, transform_box(box, (0, 0, w, h), (out.shape[1], out.shape[0]))


def read_image(path) -> np.ndarray | None:
    """Decode a JPG (None when empty or corrupt). np.fromfile copes with any path encoding."""
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:
        return None
    return cv2.imdecode(data, cv2.IMREAD_COLOR)
