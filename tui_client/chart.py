"""A daily bar chart in text: one column per day, eighth blocks, dates underneath. Plain Python.

The detail pane draws a user's retained activity with it; a day without activity shows as
a dot on the base line, so the days stay countable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

BLOCKS = " ▁▂▃▄▅▆▇█"
EMPTY = "·"


def resample(values: Sequence[float], width: int) -> list[float]:
    """At most ``width`` values: consecutive days summed when there are more days than columns."""
    if len(values) <= width or width <= 0:
        return list(values)
    per = math.ceil(len(values) / width)
    return [sum(values[i : i + per]) for i in range(0, len(values), per)]


def bars(values: Sequence[float], height: int, bar_width: int = 1) -> list[str]:
    """The chart's lines, top first: the largest value fills ``height`` lines; any activity at
    all shows at least one eighth; nothing shows as a dot on the bottom line."""
    top = max(values, default=0)
    levels = [0 if v <= 0 or top <= 0 else max(1, round(v / top * height * 8)) for v in values]
    lines = []
    for row in range(height - 1, -1, -1):
        cells = (
            EMPTY if row == 0 and value <= 0 else BLOCKS[min(8, max(0, level - row * 8))]
            for level, value in zip(levels, values, strict=True)
        )
        lines.append("".join(cell * bar_width for cell in cells))
    return lines


def axis(first: date, last: date, width: int) -> str:
    """The dates under a chart ``width`` wide: the first at the left, the last at the right."""
    left, right = f"{first:%b} {first.day}", f"{last:%b} {last.day}"
    if first == last or width < len(left) + len(right) + 1:
        return right.rjust(width)
    return left + right.rjust(width - len(left))
