"""Stored text made safe to show (``tui_client.safe``): pure functions, no app, no server."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Span as TextSpan
from rich.text import Text
from textual.content import Span

from tui_client import safe

BAD = "\ufffd"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def never_shown(c: str) -> bool:
    """What must never reach the terminal: C0 and C1 controls, DEL, bidi and zero-width characters."""
    return unicodedata.category(c) == "Cc" or c in BIDI or c in ZERO_WIDTH


# Ordinary printable text: letters, marks, digits, punctuation, symbols and spaces.
printable = st.text(st.characters(categories=("L", "M", "N", "P", "S", "Zs")))


@pytest.mark.parametrize(
    "char",
    ["\x00", "\x07", "\x08", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b", "\x9f", *BIDI, *ZERO_WIDTH],
    ids=repr,
)
def test_each_unsafe_character_shows_as_a_replacement_character(char: str) -> None:
    assert safe.clean(f"a{char}b") == f"a{BAD}b"


def test_a_terminal_escape_is_defused_visibly_and_in_place() -> None:
    assert safe.clean("Eve\x1b]0;pwned\x07 \u202eevil") == f"Eve{BAD}]0;pwned{BAD} {BAD}evil"


def test_multiline_text_keeps_its_newlines_and_nothing_else() -> None:
    assert safe.clean("one\ntwo\r\n\x1b[2J", multiline=True) == f"one\ntwo{BAD}\n{BAD}[2J"
    assert safe.clean("one\ntwo") == f"one{BAD}two"


@given(st.text())
def test_nothing_unsafe_survives_and_each_character_keeps_its_place(text: str) -> None:
    for multiline in (False, True):
        out = safe.clean(text, multiline=multiline)
        assert len(out) == len(text)
        allowed = {"\n"} if multiline else set()
        assert not any(never_shown(c) and c not in allowed for c in out), repr(out)
        assert all(o == t for o, t in zip(out, text, strict=True) if o != BAD)


@given(printable)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert safe.clean(text) == text
    assert safe.plain(text).plain == text


@given(printable)
def test_a_plain_string_is_never_markup(text: str) -> None:
    for shown in (safe.plain(text), safe.styled(text), safe.styled((text, "b"))):
        assert shown.plain == text


def test_markup_in_data_stays_text_and_only_the_given_styles_apply() -> None:
    shown = safe.styled(("[@click=app.quit]Eve[/]", "b"), " · ", "[red]\x1b[2J")
    assert shown.plain == f"[@click=app.quit]Eve[/] · [red]{BAD}[2J"
    assert shown.spans == [Span(0, 23, "b")]
    assert safe.plain("[b]x[/b] [/]").spans == []


def test_a_table_cell_is_plain_text_without_controls() -> None:
    cell = safe.cell("[@click=app.quit]Eve[/]\x1b")
    assert isinstance(cell, Text)
    assert cell.plain == f"[@click=app.quit]Eve[/]{BAD}" and cell.spans == []
    styled = Text("✓ \x1b", style="bold")
    styled.stylize("red", 0, 1)
    cleaned = safe.cell(styled)
    assert isinstance(cleaned, Text)
    assert (cleaned.plain, cleaned.style, cleaned.spans) == (f"✓ {BAD}", "bold", [TextSpan(0, 1, "red")])
    assert styled.plain == "✓ \x1b"  # the caller's Text is left alone
    assert safe.cell(3) == 3 and safe.cell(None) is None
