"""Drawing the synthetic clips (synth.py): a clip's per-frame pose table (POSE_FIELDS) turned into
a cartoon dog or cat on its own background, frame by frame, with cv2 primitives. synth.py draws
the poses and writes the AI-Hub files; this module only paints them. Every random draw comes
from a stream seeded by the clip's keys (_rng), so a clip renders the same on every machine.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


# Per-frame pose parameters of a clip (columns of clip_poses()).
POSE_FIELDS = ("cx", "cy", "s", "yaw", "roll", "pitch", "arch", "body_dy", "head_dx", "head_dy",
               "head_tilt", "leg_fr", "leg_fl", "leg_hr", "leg_hl", "len_fr", "len_fl", "len_hr",
               "len_hl", "tail", "ear", "blur")
_F = {name: i for i, name in enumerate(POSE_FIELDS)}


# Figure geometry in body lengths (x forward, y up, origin at the body centre).
_SHAPES = {
    "DOG": dict(a=0.50, b=0.2, leg=0.34, leg_w=0.13, neck=(0.13, 0.17), neck_w=0.15,
                head=(0.12, 0.10), snout_c=(0.13, -0.035), snout=(0.115, 0.052), nose=(0.24, -0.02),
                eye=(0.035, 0.03), eye_r=0.018, forehead=(0.02, 0.095), mouth=(0.10, -0.07),
                lip=(0.18, -0.075), ear_base=(-0.03, 0.075), ear_len=0.17, ear_w=0.09,
                tail_len=0.6, tail_w=(0.15, 0.09), ear_up=1.95, ear_flat=2.85),
    "CAT": dict(a=0.40, b=0.19, leg=0.27, leg_w=0.1, neck=(0.08, 0.12), neck_w=0.13,
                head=(0.125, 0.115), snout_c=(0.09, -0.04), snout=(0.05, 0.042), nose=(0.135, -0.02),
                eye=(0.05, 0.03), eye_r=0.024, forehead=(0.02, 0.11), mouth=(0.07, -0.065),
                lip=(0.10, -0.075), ear_base=(-0.01, 0.085), ear_len=0.15, ear_w=0.10,
                tail_len=0.62, tail_w=(0.08, 0.06), ear_up=1.5, ear_flat=2.6),
}
_DARK = (25, 25, 30)


def _rng(*key) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(k) for k in key])))


_CIRCLE = {k: np.stack([np.cos(np.linspace(0, 2 * math.pi, k, endpoint=False)),
                        np.sin(np.linspace(0, 2 * math.pi, k, endpoint=False))], 1) for k in (14, 16, 20, 28)}


def _ell(center, axes, angle, k):
    c, s = math.cos(angle), math.sin(angle)
    u = _CIRCLE[k]
    x, y = axes[0] * u[:, 0], axes[1] * u[:, 1]
    return np.stack([center[0] + c * x - s * y, center[1] + s * x + c * y], 1)


def _figure(p, pose):
    """Primitives (pixel coordinates), 15 keypoints (15, 2) and the extent (x0, y0, x1, y1).

    Everything is built in the animal's local frame (body lengths, x forward, y up) and
    mapped to pixels in one batch: x scaled by ``yaw`` (facing / turning), rotated by
    ``roll``, scaled by ``s`` and moved to (cx, cy).
    """
    sh = _SHAPES[p["species"]]
    (cx, cy, s, yaw, roll, pitch, arch, body_dy, hdx, hdy, htilt, lfr, lfl, lhr, lhl,
     nfr, nfl, nhr, nhl, tail, ear, blur) = pose.tolist()
    a, b = sh["a"], sh["b"]
    arch_h = 1.3 * b * arch
    piv = 0.6 * a
    cp, sp = math.cos(pitch), math.sin(pitch)

    # points attached to the (arched, pitched, lowered) body
    att = np.array([[0.62 * a, -0.55 * b], [0.50 * a, -0.55 * b], [-0.62 * a, -0.5 * b],
                    [-0.74 * a, -0.5 * b], [0.85 * a, 0.45 * b], [-0.97 * a, 0.35 * b]])
    outline = np.stack([a * _CIRCLE[28][:, 0], b * _CIRCLE[28][:, 1]], 1)
    pts = np.concatenate([att, outline])
    lift = arch_h * np.clip(1.0 - (pts[:, 0] / a) ** 2, 0.0, None)
    x, y = pts[:, 0] - piv, pts[:, 1] + lift
    bpts = np.stack([x * cp - y * sp + piv, x * sp + y * cp + body_dy], 1)
    starts, neck0, tb, body_poly = bpts[:4], bpts[4], bpts[5], bpts[6:]

    # legs: direction relative to gravity (0 = straight down, + forward); lengths absorb the arch lift
    ang = np.array([lfr, lfl, lhr, lhl])
    length = sh["leg"] * np.array([nfr, nfl, nhr, nhl]) + lift[:4] * cp
    ankles = starts + length[:, None] * np.stack([np.sin(ang), -np.cos(ang)], 1)

    # head frame
    hc = neck0 + np.array([cp * sh["neck"][0] - sp * sh["neck"][1] + hdx,
                           sp * sh["neck"][0] + cp * sh["neck"][1] + hdy])
    th = htilt + pitch
    ch, shh = math.cos(th), math.sin(th)
    hv = np.array([sh["nose"], sh["forehead"], sh["mouth"], sh["lip"], sh["eye"], sh["snout_c"],
                   sh["ear_base"], (sh["ear_base"][0] - 0.045, sh["ear_base"][1])])
    hp = hc + np.stack([ch * hv[:, 0] - shh * hv[:, 1], shh * hv[:, 0] + ch * hv[:, 1]], 1)
    nose, forehead, mouth, lip, eye, snout_c, ear_near, ear_far = hp
    ea = ear + th
    d = np.array([math.cos(ea), math.sin(ea)])
    ears = []
    for base in (ear_far, ear_near):
        if p["species"] == "DOG":  # floppy: a rounded flap
            ears.append(_ell(base + 0.5 * sh["ear_len"] * d, (0.5 * sh["ear_len"], 0.5 * sh["ear_w"]), ea, 14))
        else:
            nrm = np.array([-d[1], d[0]])
            ears.append(np.stack([base + 0.5 * sh["ear_w"] * nrm, base + sh["ear_len"] * d,
                                  base - 0.5 * sh["ear_w"] * nrm]))

    # tail: a chain of segments curling along its length
    k_seg = 7
    phi = math.atan2(math.sin(tail), -math.cos(tail)) + pitch + p["tail_curl"] / k_seg * np.arange(k_seg)
    seg = sh["tail_len"] / k_seg
    tail_pts = np.concatenate([tb[None], tb + np.cumsum(seg * np.stack([np.cos(phi), np.sin(phi)], 1), 0)])

    # one batch to pixels
    parts = [ankles, starts, neck0[None], hc[None], tail_pts, body_poly,
             _ell(hc, sh["head"], th, 20), _ell(snout_c, sh["snout"], th - 0.08, 16), ears[0], ears[1],
             eye[None], nose[None], np.stack([forehead, mouth, lip, neck0 + 0.45 * (hc - neck0)])]
    sizes = [len(q) for q in parts]
    allp = np.concatenate(parts)
    cr, sr = math.cos(roll), math.sin(roll)
    lx, ly = allp[:, 0] * yaw, allp[:, 1]
    world = np.stack([cx + s * (lx * cr - ly * sr), cy - s * (lx * sr + ly * cr)], 1)
    (w_ank, w_start, w_neck0, w_hc, w_tail, w_body, w_head, w_snout, w_ear_far, w_ear_near,
     w_eye, w_nose, w_misc) = np.split(world, np.cumsum(sizes)[:-1])

    fur = p["fur"]

    def shade(k):
        return tuple(int(round(min(255.0, v * k))) for v in fur)

    leg_w = sh["leg_w"] * s
    prims = []  # (kind, points px, colour, size px)

    def leg(i, colour):
        prims.append(("line", np.stack([w_start[i], w_ank[i]]), colour, leg_w))
        prims.append(("circle", w_ank[i:i + 1], colour, 0.6 * leg_w))

    far = shade(0.68)
    leg(1, far)
    leg(3, far)
    prims.append(("poly", w_ear_far, shade(0.6), 0))
    tail_col = shade(0.88)
    w0, w1 = sh["tail_w"]
    for i in range(k_seg):
        prims.append(("line", w_tail[i:i + 2], tail_col, (w0 + (w1 - w0) * i / (k_seg - 1)) * s))
    near = shade(1.0)
    prims.append(("poly", w_body, near, -1))
    leg(2, shade(0.95))
    leg(0, shade(0.95))
    prims.append(("line", np.concatenate([w_neck0, w_hc]), near, sh["neck_w"] * s))
    prims.append(("poly", w_head, near, 0))
    prims.append(("poly", w_snout, shade(1.12), 0))
    prims.append(("poly", w_ear_near, shade(0.8), 0))
    prims.append(("circle", w_eye, _DARK, sh["eye_r"] * s))
    prims.append(("circle", w_nose, _DARK, 0.022 * s))

    # 1 nose, 2 forehead, 3 mouth corner, 4 lower lip, 5 neck, 6/7 front-leg starts (near = right),
    # 8/9 front ankles, 10/11 femurs, 12/13 hind ankles, 14 tail base, 15 tail tip
    kps = np.stack([w_nose[0], w_misc[0], w_misc[1], w_misc[2], w_misc[3], w_start[0], w_start[1],
                    w_ank[0], w_ank[1], w_start[2], w_start[3], w_ank[2], w_ank[3], w_tail[0], w_tail[-1]])

    # extent: polygons, lines widened by half their width, circles by their radius
    r_leg, r_tail, r_neck = 0.6 * leg_w, 0.5 * w0 * s, 0.5 * sh["neck_w"] * s
    boxes = [(w_ank, r_leg), (w_start, 0.5 * leg_w), (w_tail, r_tail), (w_body, 0.0), (w_head, 0.0),
             (w_snout, 0.0), (w_ear_far, 0.0), (w_ear_near, 0.0), (np.concatenate([w_neck0, w_hc]), r_neck)]
    lo = np.min([q.min(0) - r for q, r in boxes], 0)
    hi = np.max([q.max(0) + r for q, r in boxes], 0)
    return prims, kps, (float(lo[0] - 0.5 * blur), float(lo[1]), float(hi[0] + 0.5 * blur), float(hi[1]))


def _draw(img, prims, mask=False):
    for kind, q, colour, size in prims:
        c = (255, 255, 255) if mask else colour
        if kind == "poly":
            cv2.fillPoly(img, [np.round(q * 16).astype(np.int32)], c, cv2.LINE_AA, 4)
            if size == -1 and not mask:  # body outline
                edge = tuple(int(v * 0.6) for v in colour)
                cv2.polylines(img, [np.round(q * 16).astype(np.int32)], True, edge, 1, cv2.LINE_AA, 4)
        elif kind == "line":
            p0, p1 = (tuple(int(v) for v in np.round(pt * 16)) for pt in q)
            cv2.line(img, p0, p1, c, max(1, int(round(size))), cv2.LINE_AA, 4)
        else:
            ctr = tuple(int(v) for v in np.round(q[0] * 16))
            cv2.circle(img, ctr, max(1, int(round(size * 16))), c, -1, cv2.LINE_AA, 4)


def _background(p):
    """A per-clip background: smooth gradient, optional floor, blotches, shapes, grain."""
    W, H = p["size"]
    r = _rng(p["bg_seed"])
    c1, c2 = (np.asarray(c, np.float32) for c in p["bg_colors"])
    ang = r.uniform(0, 2 * math.pi)
    xs = np.linspace(0.0, 1.0, W, dtype=np.float32)
    ys = np.linspace(0.0, H / W, H, dtype=np.float32)
    proj = math.cos(ang) * xs[None, :] + math.sin(ang) * ys[:, None]
    proj = (proj - proj.min()) / max(float(proj.max() - proj.min()), 1e-6)
    img = c1 + (c2 - c1) * proj[..., None]
    if r.random() < 0.4:  # a floor
        horizon = r.uniform(0.45, 0.75) * H
        c3 = np.clip(c1 + r.normal(0.0, 25.0, 3), 0, 255).astype(np.float32)
        m = np.clip((np.arange(H, dtype=np.float32) - horizon) / (0.05 * H), 0, 1)[:, None, None] * 0.7
        img = img * (1 - m) + c3 * m
    gh, gw = max(2, H // 10), max(2, W // 10)
    blotch = r.normal(0, 1, (gh, gw, 3)).astype(np.float32)
    img += cv2.resize(blotch, (W, H), interpolation=cv2.INTER_LINEAR) * np.float32(r.uniform(2, 6))
    out = np.clip(img, 0, 255).astype(np.uint8)
    unit = min(W, H)
    for _ in range(int(r.integers(0, 2))):
        over = out.copy()
        colour = tuple(int(v) for v in r.uniform(20, 235, 3))
        x, y = int(r.uniform(0, W)), int(r.uniform(0, H))
        kind = int(r.integers(3))
        if kind == 0:
            cv2.circle(over, (x, y), max(2, int(r.uniform(0.05, 0.2) * unit)), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            w2, h2 = int(r.uniform(0.05, 0.3) * unit), int(r.uniform(0.05, 0.3) * unit)
            cv2.rectangle(over, (x - w2, y - h2), (x + w2, y + h2), colour, -1)
        else:
            axes = (max(2, int(r.uniform(0.05, 0.3) * unit)), max(1, int(r.uniform(0.02, 0.1) * unit)))
            cv2.ellipse(over, (x, y), axes, float(r.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        alpha = float(r.uniform(0.2, 0.45))
        out = cv2.addWeighted(over, alpha, out, 1 - alpha, 0)
    grain = r.normal(0, 2.5, (H, W, 1)).astype(np.float32)
    return np.clip(out.astype(np.float32) + grain, 0, 255).astype(np.uint8)


def _render(bg, geo, blur):
    prims, _, (x0, y0, x1, y1) = geo
    img = bg.copy()
    k = int(round(blur))
    if k < 2:
        _draw(img, prims)
        return img
    k |= 1  # motion blur (BODYSHAKE): blur the figure layer and its mask horizontally
    H, W = bg.shape[:2]
    xa, xb = max(0, int(x0) - k), min(W, int(math.ceil(x1)) + k + 1)
    ya, yb = max(0, int(y0) - 2), min(H, int(math.ceil(y1)) + 3)
    if xa >= xb or ya >= yb:
        return img
    layer = bg.copy()
    _draw(layer, prims)
    mask = np.zeros(bg.shape[:2], np.uint8)
    _draw(mask, prims, mask=True)
    lb = cv2.blur(layer[ya:yb, xa:xb], (k, 1)).astype(np.float32)
    mb = cv2.blur(mask[ya:yb, xa:xb], (k, 1)).astype(np.float32)[..., None] / 255.0
    sub = bg[ya:yb, xa:xb].astype(np.float32)
    img[ya:yb, xa:xb] = np.clip(sub * (1 - mb) + lb * mb + 0.5, 0, 255).astype(np.uint8)
    return img


def render_clip(params: dict) -> list:
    """All n frames (BGR uint8 arrays) of a clip, including those a sparse clip leaves out."""
    bg = _background(params)
    return [_render(bg, _figure(params, row), row[_F["blur"]]) for row in params["poses"]]
