"""Stored text made safe to show: never a terminal control, never markup.

Everything the server stores came from someone else (agents, other admins, the CLI), and
older rows predate the server's checks. Two rules keep it harmless on the admin's screen:

- **No control reaches the terminal.** Textual writes text to the terminal as it is (it
  strips only BEL, BS, VT, FF and CR), so an ``ESC`` in a name could retitle the window or
  rewrite the screen, and a bidi override or a zero-width character could make one name read
  as another. :func:`clean` replaces each such character with U+FFFD, visibly, so the admin
  sees that something odd is there.
- **Data is never markup.** Textual's markup runs actions (``[@click=app.quit]``), and no
  escape function is safe against it (``textual.markup.escape`` leaves ``[ @click=...]``
  and ``[B]`` alone; an unmatched ``[/]`` raises). So data is handed to Textual only as
  content objects: :func:`plain` and :func:`styled` for labels and statics, ``Text`` for
  table cells (:class:`~tui_client.widgets.paged_table.PagedTable` converts every cell),
  and notifications are always plain text (``AdminApp.notify``).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.content import Content

REPLACEMENT = "\ufffd"

# C0 controls, DEL and C1 controls (ESC, BEL, CR, the 8-bit CSI \x9b...).
CONTROLS = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
# Bidi controls: marks, embeddings, overrides and isolates.
BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
# Invisible characters: zero-width space and joiners, word joiner and invisible operators,
# the Mongolian vowel separator, the byte-order mark.
ZERO_WIDTH = [0x180E, 0x200B, 0x200C, 0x200D, *range(0x2060, 0x2065), 0xFEFF]
# Line and paragraph separators: line breaks to Python (str.splitlines) but not to Textual.
SEPARATORS = [0x2028, 0x2029]
UNSAFE = frozenset(CONTROLS + BIDI + ZERO_WIDTH + SEPARATORS)

_ONE_LINE = dict.fromkeys(UNSAFE, REPLACEMENT)
_LINES = {c: r for c, r in _ONE_LINE.items() if c != ord("\n")}


def clean(text: str, *, multiline: bool = False) -> str:
    """``text`` with every unsafe character replaced by U+FFFD (one for one, so offsets hold).

    ``multiline`` keeps newlines; otherwise a newline is unsafe too (a name spanning lines).
    """
    return text.translate(_LINES if multiline else _ONE_LINE)


def plain(text: str) -> Content:
    """One line of stored (or any) text for a label or a static: shown exactly, never parsed."""
    return Content(clean(text))


def styled(*parts: str | tuple[str, str]) -> Content:
    """One line assembled from text and ``(text, style)`` parts; no part is parsed as markup.

    ``styled(("2 selected", "b"), " · filter “", search, "”")`` instead of
    ``f"[b]2 selected[/] · filter “{search}”"``.
    """
    return Content.assemble(*_cleaned(parts))


def cell(value: object) -> object:
    """A table cell: a string becomes plain ``Text`` (a ``DataTable`` parses a ``str`` as markup)
    that ends in "…" when its column is narrower, ``Text`` is cleaned, anything else (numbers,
    ``None``) is left to the table."""
    if isinstance(value, str):
        return Text(clean(value), no_wrap=True, overflow="ellipsis", end="")
    if isinstance(value, Text):
        cleaned = clean(value.plain)
        if cleaned != value.plain:
            value = value.copy()
            value.plain = cleaned  # one for one: the spans still fit
        return value
    return value


def text(value: str, style: str) -> Text:
    """A styled table cell (an overdue row's name): plain ``Text``, cut with "…" like any cell."""
    return Text(clean(value), style=style, no_wrap=True, overflow="ellipsis", end="")


def _cleaned(parts: Iterable[str | tuple[str, str]]) -> Iterable[str | tuple[str, str]]:
    for part in parts:
        yield clean(part) if isinstance(part, str) else (clean(part[0]), part[1])
