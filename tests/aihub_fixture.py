"""A hand-made AI-Hub tree with every quirk and every kind of bad input (for prepare tests)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

W, H = 160, 120


def jpg(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), rng.integers(0, 255, 3), np.uint8)
    cv2.rectangle(img, (40, 30), (100, 90), (255, 255, 255), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".jpg", img)[1].tobytes())


def label(species: str, action_text: str, n: int, step: int = 6, box=(40, 30, 60, 60), emotion="편안/안정",
          owner="행복/즐거움", drop_box_at=None, breed="믹스") -> dict:
    anns = []
    for i in range(n):
        rec = {"frame_number": i * step, "timestamp": i * 200,
               "bounding_box": {"x": box[0], "y": box[1], "width": box[2], "height": box[3]},
               "keypoints": {str(k): ({"x": 50 + k, "y": 40 + k} if k % 4 else None) for k in range(1, 16)}}
        if drop_box_at == i:
            del rec["bounding_box"]
        anns.append(rec)
    return {"file_video": "x.mp4",
            "metadata": {"seq": 1, "species": species, "action": action_text, "location": "실내",
                         "height": H, "width": W, "duration": n * 0.2,
                         "animal": {"breed": breed, "gender": "MALE", "age": 3, "neuter": "Y"},
                         "owner": {"emotion": owner, "pain": "N", "disease": "N"},
                         "inspect": {"action": action_text, "emotion": emotion}},
            "annotations": anns}


def clip(root: Path, split: str, sub: str, name: str, lab: dict | None, frames: list[int] | None,
         bom: bool = False, step: int = 6, label_sub: str | None = None, seed: int = 0) -> None:
    """Write frames (annotation indices that get a JPG; `seed` varies their colour) and the
    label (None: no label; under `label_sub` when given, else `sub`)."""
    if frames is not None:
        for i in frames:
            jpg(root / split / "원천데이터" / sub / name / f"frame_{i * step}_timestamp_{i * 200}.jpg", i + seed)
    if lab is not None:
        p = root / split / "라벨링데이터" / (label_sub or sub) / f"{name}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(lab, ensure_ascii=False)
        p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


def make_quirky_tree(root: Path) -> dict:
    """Returns what prepare must conclude: the kept clip names and the rejected paths' reasons."""
    # good clips, each with a normal quirk
    clip(root, "Training", "DOG", "dog-walkrun-000001", label("DOG", "걷거나 뜀", 12), list(range(12)))
    clip(root, "Training", "DOG", "20201028_dog-walkrun-000002.mp4", label("DOG", "걷거나 달리는 동작 ", 12),
         list(range(12)), bom=True)                                                        # old name + BOM + trailing space
    clip(root, "Training", "CAT", "cat-arch-000001", label("CAT", "허리를 아치로 세우는 동작", 20),
         [0, 3, 4, 9, 15, 19])                                                              # sparse JPGs
    clip(root, "Training", "ARCH", "cat-arch-000002", label("CAT", "허리를 아치로 세우는 동작", 8, box=(120, 90, 80, 60)),
         list(range(8)))                                                                    # box partly outside
    clip(root, "Training", "CAT", "cat-arch-000003", label("CAT", "허리를 아치로 세우는 동작", 8, drop_box_at=2),
         list(range(8)))                                                                    # a frame without a box
    clip(root, "Validation", "고양이", "cat-walkrun-000009", label("CAT", "걷는 동작", 8), list(range(8)))  # Korean folder
    clip(root, "Training", "DOG", "dog-sit-000001", label("DOG", "꼬리를 흔드는 동작", 8), list(range(8)))   # text mismatch, kept
    # a clip with a corrupt and a zero-byte JPG: kept with its other frames
    clip(root, "Training", "DOG", "dog-sit-000002", label("DOG", "앉는 동작", 6), list(range(6)))
    d = root / "Training" / "원천데이터" / "DOG" / "dog-sit-000002"
    (d / "frame_6_timestamp_200.jpg").write_bytes(b"")
    (d / "frame_12_timestamp_400.jpg").write_bytes(b"not a jpeg at all")
    # bad input
    clip(root, "Training", "DOG", "dog-sit-000003", label("DOG", "앉는 동작", 6), None)        # label without frames
    clip(root, "Training", "DOG", "dog-sit-000004", None, list(range(4)))                      # frames without label
    clip(root, "Training", "DOG", "dog-sit-000005", None, list(range(4)))                      # invalid JSON
    (root / "Training" / "라벨링데이터" / "DOG" / "dog-sit-000005.json").write_text("{not json", encoding="utf-8")
    lab = label("DOG", "앉는 동작", 4)
    del lab["annotations"]
    clip(root, "Training", "DOG", "dog-sit-000006", lab, list(range(4)))                       # no annotations
    clip(root, "Training", "DOG", "dog-sit-000007", label("DOG", "앉는 동작", 2), [])           # no readable frame
    d = root / "Training" / "원천데이터" / "DOG" / "dog-sit-000007"
    d.mkdir(parents=True, exist_ok=True)
    (d / "frame_0_timestamp_0.jpg").write_bytes(b"")
    clip(root, "Training", "DOG", "dog-fly-000001", label("DOG", "나는 동작", 4), list(range(4)))  # unknown code
    # one clip identity twice: two different clips of one name in Training and Validation
    # (all rejected), an identical copy in both (kept once, from Training), and two label JSONs
    # of one name in one split (ambiguous pairing: all rejected)
    clip(root, "Training", "CAT", "cat-arch-000004", label("CAT", "허리를 아치로 세우는 동작", 8), list(range(8)))
    clip(root, "Validation", "CAT", "cat-arch-000004", label("CAT", "허리를 아치로 세우는 동작", 5), list(range(5)),
         seed=50)
    for split in ("Training", "Validation"):
        clip(root, split, "DOG", "dog-sit-000008", label("DOG", "앉는 동작", 6), list(range(6)))
    clip(root, "Training", "DOG", "dog-sit-000009", label("DOG", "앉는 동작", 4), list(range(4)))
    clip(root, "Training", "SIT", "dog-sit-000009", label("DOG", "앉는 동작", 4), None)
    src = root / "Training" / "원천데이터" / "DOG"
    lab_dir = root / "Training" / "라벨링데이터" / "DOG"
    val_src = root / "Validation" / "원천데이터"
    return {
        "kept": {"dog-walkrun-000001", "20201028_dog-walkrun-000002.mp4", "cat-arch-000001", "cat-arch-000002",
                 "cat-arch-000003", "cat-walkrun-000009", "dog-sit-000001", "dog-sit-000002", "dog-sit-000008"},
        "rejected": {
            str(src / "dog-sit-000002" / "frame_6_timestamp_200.jpg"): "empty or corrupt JPG",
            str(src / "dog-sit-000002" / "frame_12_timestamp_400.jpg"): "empty or corrupt JPG",
            str(lab_dir / "dog-sit-000003.json"): "label JSON without a frame folder",
            str(src / "dog-sit-000004"): "frame folder without a label JSON",
            str(lab_dir / "dog-sit-000005.json"): "invalid JSON",
            str(lab_dir / "dog-sit-000006.json"): "no 'annotations'",
            str(src / "dog-sit-000007"): "no readable frame",
            str(src / "dog-sit-000007" / "frame_0_timestamp_0.jpg"): "empty or corrupt JPG",
            str(src / "dog-fly-000001"): "unknown class code",
            str(root / "Training" / "원천데이터" / "CAT" / "cat-arch-000004"): "is shared by 2 different clips",
            str(val_src / "CAT" / "cat-arch-000004"): "is shared by 2 different clips",
            str(val_src / "DOG" / "dog-sit-000008"): f"duplicate copy of {src / 'dog-sit-000008'}",
            str(src / "dog-sit-000009"): "pairing is ambiguous",
            str(lab_dir / "dog-sit-000009.json"): "pairing is ambiguous",
            str(root / "Training" / "라벨링데이터" / "SIT" / "dog-sit-000009.json"): "pairing is ambiguous",
        },
        "text_mismatch": {"dog-sit-000001"},
        "one_identity": {"cat-arch-000004": None, "dog-sit-000008": 6},   # name -> frames kept (None: rejected)
    }


def make_breed_tree(root: Path) -> dict:
    """Clips grouped by breed for split_policy official with group_by metadata.animal.breed:
    A only in Training, B only in Validation, C in both (2 Training, 1 Validation)."""
    layout = {"A": ["Training"] * 4, "B": ["Validation"] * 2, "C": ["Training", "Training", "Validation"]}
    n = 0
    where = {}
    for breed, sides in layout.items():
        for side in sides:
            n += 1
            name = f"dog-sit-{n:06d}"
            clip(root, side, "DOG", name, label("DOG", "앉는 동작", 4, breed=breed), list(range(4)))
            where[name] = (breed, side, root / side / "원천데이터" / "DOG" / name)
    return where
