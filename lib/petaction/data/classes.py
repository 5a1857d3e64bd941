"""Class vocabulary of the AI-Hub pet behaviour dataset (see shared/aihub-format.md).

The action *code* comes from the clip name (``cat-arch-000156`` -> ``ARCH``); the Korean
``metadata.action`` text is only a cross-check, so each code carries a few keywords that
any of its text variants contains.
"""
from __future__ import annotations

import re
import unicodedata

DOG_ACTIONS = ("BODYLOWER", "BODYSCRATCH", "BODYSHAKE", "FEETUP", "FOOTUP", "HEADING", "LYING",
               "MOUNTING", "SIT", "TAILING", "TAILLOW", "TURN", "WALKRUN")
CAT_ACTIONS = ("ARCH", "ARMSTRETCH", "FOOTPUSH", "GETDOWN", "GROOMING", "HEADING", "LAYDOWN",
               "LYING", "ROLL", "SITDOWN", "TAILING", "WALKRUN")
# The 21-class union the original study reports (shared codes counted once), in a fixed order.
ALL_ACTIONS = tuple(sorted(set(DOG_ACTIONS) | set(CAT_ACTIONS)))
SPECIES_ACTIONS = {"DOG": DOG_ACTIONS, "CAT": CAT_ACTIONS}

# Keywords (after removing white space) that the Korean action text of each code contains.
# Texts vary between releases ("걷거나 뜀" vs "걷거나 달리는 동작", trailing spaces, typos),
# so a text matching none of its code's keywords is reported, never used to relabel.
ACTION_KEYWORDS = {
    "ARCH": ("아치",), "ARMSTRETCH": ("앞발", "휘두", "뻗"), "BODYLOWER": ("엎드", "낮추"),
    "BODYSCRATCH": ("긁",), "BODYSHAKE": ("털",), "FEETUP": ("두앞발", "두발", "양발"),
    "FOOTUP": ("한쪽", "한발", "앞발을들"), "FOOTPUSH": ("꾹꾹", "누르"), "GETDOWN": ("납작", "엎드"),
    "GROOMING": ("그루밍", "핥"), "HEADING": ("머리",), "LAYDOWN": ("옆으로", "눕"),
    "LYING": ("배를", "배보"), "MOUNTING": ("마운팅", "올라타"), "ROLL": ("구르", "뒹굴"),
    "SIT": ("앉",), "SITDOWN": ("웅크", "식빵", "앉"), "TAILING": ("꼬리", "흔들"),
    "TAILLOW": ("꼬리", "내리", "낮"), "TURN": ("빙글", "돈다", "돌"), "WALKRUN": ("걷", "뛰", "달리", "뜀"),
}

# Emotions (both metadata.inspect.emotion and metadata.owner.emotion use these texts).
EMOTIONS = {
    "행복/즐거움": "happy", "편안/안정": "relaxed", "불안/슬픔": "anxious",
    "화남/불쾌": "angry", "공포": "fear", "공격성": "aggressive",
}
EMOTION_CODES = tuple(EMOTIONS.values())

# Clip names: "cat-arch-000000" (newer) or "20201028_cat-arch-000156.mp4" (older).
CLIP_NAME = re.compile(r"^(?:\d{8}_)?(?P<species>dog|cat)-(?P<action>[a-z]+)-(?P<seq>\d+)(?:\.mp4)?$",
                       re.IGNORECASE)


def parse_clip_name(name: str) -> dict | None:
    """Species, action code and sequence number from a clip folder name, or None."""
    m = CLIP_NAME.match(unicodedata.normalize("NFC", name))
    if not m:
        return None
    return {"species": m["species"].upper(), "action": m["action"].upper(), "seq": int(m["seq"])}


def text_matches_action(code: str, text: str | None) -> bool:
    """True when the Korean action text names the action code (see ACTION_KEYWORDS)."""
    if not text:
        return False
    squashed = re.sub(r"\s+", "", unicodedata.normalize("NFC", text))
    return any(k in squashed for k in ACTION_KEYWORDS.get(code, ()))


def emotion_code(text: str | None) -> str | None:
    """English emotion code for a Korean emotion text (white space tolerant), or None."""
    if not text:
        return None
    squashed = re.sub(r"\s+", "", unicodedata.normalize("NFC", text))
    return EMOTIONS.get(squashed)


def ordered_labels(present: set[str], target: str) -> list[str]:
    """Class names of a study in canonical order (the model's output index order)."""
    canon = ALL_ACTIONS if target == "action" else EMOTION_CODES
    return [c for c in canon if c in present] + sorted(set(present) - set(canon))
