"""Column widths from the content and the room there is: plain Python, no Textual.

A list's columns each say how narrow they may get and how much they matter. :func:`fit`
gives every column the width of its widest cell (or label) when the row fits; when it does
not, the least useful columns give way first: narrowed to their minimum, then cut. A
column that is shown whole or not at all (a name: half a name identifies nobody) keeps its
full text for as long as it is shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from rich.cells import cell_len

from tui_client import safe

#: Cells a column takes beside its content: one on each side (``DataTable.cell_padding``).
PADDING = 2


@dataclass(frozen=True)
class Col:
    """One column of a list."""

    key: str
    label: str
    #: The narrowest it is still worth showing at; None: whole or not at all (a name).
    min: int | None
    #: How useful it is: when the row does not fit, the lowest is narrowed, then cut, first.
    keep: int
    #: Never wider than this, whatever the content (None: as wide as its widest cell).
    max: int | None = None

    def wanted(self, content: int) -> int:
        """Its width with room to spare: its widest cell or its label, within its bounds."""
        width = max(content, cell_len(self.label))
        return width if self.max is None else min(width, max(self.max, cell_len(self.label)))

    def least(self, content: int) -> int:
        """The narrowest it may be drawn at."""
        return self.wanted(content) if self.min is None else min(self.wanted(content), self.min)


def fit(cols: Sequence[Col], content: Mapping[str, int], room: int) -> dict[str, int]:
    """The width of each column shown, in the columns' order; a column left out is cut.

    ``content`` is each column's widest cell (absent: nothing yet), ``room`` the cells the
    row may take, padding included.
    """
    least = {c.key: c.least(content.get(c.key, 0)) for c in cols}
    shown = list(cols)
    # Cut the least useful columns until the rest fit at their narrowest (one always stays).
    while len(shown) > 1 and sum(least[c.key] + PADDING for c in shown) > room:
        shown.remove(min(shown, key=lambda c: c.keep))
    widths = {c.key: c.wanted(content.get(c.key, 0)) for c in shown}
    excess = sum(widths.values()) + PADDING * len(shown) - room
    for c in sorted(shown, key=lambda c: c.keep):
        if excess <= 0:
            break
        give = min(excess, widths[c.key] - least[c.key])
        widths[c.key] -= give
        excess -= give
    if excess > 0:  # one column left, wider than the table: it gives way however whole it is
        (key,) = widths
        widths[key] = max(1, room - PADDING)
    return widths


class ContentWidths:
    """The widest cell of each column over the rows shown: grows as rows come, reset on a redraw."""

    def __init__(self) -> None:
        self.widths: dict[str, int] = {}

    def clear(self) -> None:
        self.widths.clear()

    def add(self, cells: Iterable[tuple[str, object]]) -> bool:
        """Measure a row's cells; True when a column got wider."""
        grew = False
        for key, value in cells:
            width = _width(value)
            if width > self.widths.get(key, 0):
                self.widths[key] = width
                grew = True
        return grew


def _width(value: object) -> int:
    text = getattr(value, "plain", value)
    # Measured as shown: a control becomes one U+FFFD (safe.cell).
    return cell_len(safe.clean(text if isinstance(text, str) else str(text)))
