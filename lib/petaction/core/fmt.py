"""How figures read in the report's prose and tables (evaluation's transfer text and the report
share them, so one figure reads the same wherever it is printed)."""
from __future__ import annotations

import pandas as pd


def pct(x: float) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.1f}%"


def pts(x: float) -> str:
    """A difference of two accuracies, in points."""
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:+.1f}"


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def num(x, fmt: str = "{:.0f}") -> str:
    return "n/a" if x is None or pd.isna(x) else fmt.format(x)
