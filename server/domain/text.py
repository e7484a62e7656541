"""The text agents report, and what of it is refused: one check per kind of text.

Agent names (:func:`name_problem`) and app names (:func:`app_problem`) are shown to admins
everywhere they look (the queue, reports, a terminal client, email digests) and must read
as exactly what they are; free text (:func:`free_text_problem`: window titles, urls) keeps
anything storable and is escaped where it is shown. All of them go through
:func:`unstorable`: what PostgreSQL cannot store (NUL, lone surrogates).
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls, DEL, C1 controls; and the line and paragraph separators (line breaks).
_CONTROLS = "\x00-\x1f\x7f-\x9f\u2028\u2029"

# ALM, LRM, RLM; LRE, RLE, PDF, LRO, RLO; LRI, RLI, FSI, PDI.
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt) less the bidi controls:
# soft hyphen, combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# variation selectors and vowel separator, zero-width space/non-joiner/joiner, word joiner,
# invisible operators, deprecated format characters, variation selectors, zero-width no-break
# space (BOM), shorthand format and musical formatting controls, tags, and the code points
# reserved for more of them; plus the interlinear annotation marks (U+FFF9-U+FFFB), which
# hide the text between them.
_INVISIBLE = (
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200d\u2060-\u2065\u206a-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)

_REFUSED = re.compile(f"[{_CONTROLS}{_BIDI_CONTROLS}{_INVISIBLE}]")

_BIDI = re.compile(f"[{_BIDI_CONTROLS}]")

_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def unstorable(s: str) -> str | None:
    """Why a text cannot be stored as is on every database, or ``None``.

    PostgreSQL refuses NUL in text, and a lone surrogate (valid in JSON, not in UTF-8)
    cannot be encoded for either database. Every text an agent reports is checked for it,
    and so is every text a client binds into a query (a search, a cursor).
    """
    if "\x00" in s:
        return "must not contain NUL characters"
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode text (no lone surrogates)"
    return None


def _hidden_or_control(s: str) -> str | None:
    """Why ``s`` would not show what it holds, or ``None``: the check of names and app names.

    - C0 and C1 controls (U+0000-U+001F, U+007F-U+009F) and line breaks: terminal escape
      injection. ESC (or the C1 CSI) starts a sequence that a terminal runs rather than shows:
      ``evil\\x1b]0;pwned\\x07.exe`` retitles the window, others move the cursor and repaint
      what an admin reads.
    - Bidirectional controls: Trojan Source (CVE-2021-42574). They reorder how the text is
      displayed: ``Jane \\u202eeoD`` shows as "Jane Doe".
    - Invisible (default-ignorable) characters: ``jd\\u200boe`` shows as "jdoe" but is another
      agent and another user, a duplicate an admin cannot tell apart. Emoji that need a
      zero-width joiner or a variation selector are refused with them; plain emoji are not.

    The message names the first such character by its code point (never the character).
    """
    if s.isascii() and s.isprintable():  # the common case, without the regex: no C0, no DEL
        return None
    found = _REFUSED.search(s)
    if found is None:
        return None
    char = found.group()
    code = f"U+{ord(char):04X}"
    if _BIDI.match(char):
        return f"must not contain bidirectional control characters ({code})"
    if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return f"must not contain control characters or line breaks ({code})"
    return f"must not contain invisible characters ({code})"


def _script(char: str) -> str | None:
    """LATIN, CYRILLIC or GREEK for a letter of one of those scripts, else ``None``.

    :mod:`unicodedata` has no Script property, but the letters of these scripts are named
    after it ("CYRILLIC SMALL LETTER A", "FULLWIDTH LATIN CAPITAL LETTER A", "MODIFIER LETTER
    SMALL GREEK GAMMA") and no letter of another script is. The few named otherwise count
    for no script: signs (micro, Kelvin, Ohm), a few modifier letters (U+1D43), and the
    mathematical alphanumerics, which UTS #39 counts as Common anyway.
    """
    if not char.isalpha():
        return None
    words = unicodedata.name(char, "").split()
    return next((w for w in _CONFUSABLE_SCRIPTS if w in words), None)


def _mixed_script(s: str) -> str | None:
    """Why ``s`` holds a mixed-script confusable, or ``None``.

    Latin, Cyrillic and Greek share look-alike letters (Latin "a", Cyrillic U+0430 and
    Greek U+03B1 look the same; so do "o", U+043E and U+03BF, or "J" and U+0408), so a word
    mixing them (Latin "paypal" with a Cyrillic U+0430) passes for another name. A word (a
    run of letters and combining marks) must keep to one of them. Anything else separates
    words, so device names such as "PC-" or "LAPTOP-" followed by a Cyrillic place or person pass: refusing a real
    machine's name would cost its agent every batch, while a look-alike needs letters side
    by side to pass for a name. Words of other scripts (kana and kanji, Arabic, Hangul) mix
    freely. A name written wholly in Cyrillic that looks Latin (whole-script confusable) is
    not detected: that needs Unicode's confusables table.
    """
    if s.isascii():
        return None
    first: str | None = None
    for i, char in enumerate(s):
        if not (char.isalpha() or unicodedata.category(char).startswith("M")):
            first = None  # a word ends
            continue
        script = _script(char)
        if script is None:
            continue
        if first is None:
            first = script
        elif script != first:
            return (
                f"must not mix {first.title()} and {script.title()} letters in one word "
                f"(U+{ord(char):04X} {unicodedata.name(char)} in {s[max(0, i - 20) : i + 20]!r})"
            )
    return None


def name_problem(value: str) -> str | None:
    """What is wrong with an agent name (device, domain, logon or display name), or ``None``.

    Admins decide from these names who gets a license, and they are shown everywhere an
    admin looks (the queue, reports, a terminal client, email digests): each must read as
    exactly what it is. So no controls, bidi controls or invisible characters
    (:func:`_hidden_or_control`), and no word mixing look-alike scripts
    (:func:`_mixed_script`).
    """
    if not 1 <= len(value) <= 256:
        return "must be 1 to 256 characters"
    if (why := _hidden_or_control(value)) is not None:
        return why
    if (why := _mixed_script(value)) is not None:
        return why
    return unstorable(value)


def app_problem(value: str) -> str | None:
    """What is wrong with an event's app (an executable's name), or ``None``.

    Shown in reports and the admin client like a name, so it refuses what would not show
    as it is (:func:`_hidden_or_control`). Mixed scripts are let through: an app name is
    not what anyone is told apart by.
    """
    if not value:
        return "required: a non-empty string"
    if len(value) > 256:
        return "must be at most 256 characters"
    if (why := _hidden_or_control(value)) is not None:
        return why
    return unstorable(value)


def free_text_problem(value: str, limit: int) -> str | None:
    """What is wrong with a window title or url, or ``None``.

    These are free text, as the user's apps showed it: a title may hold a tab, or the bidi
    marks of a right-to-left page. docs/api.md refuses controls only in names and app, so they
    are kept as reported, controls included, and every client escapes stored text on
    display. Only what cannot be stored (:func:`unstorable`) is refused.
    """
    if len(value) > limit:
        return f"must be at most {limit} characters"
    return unstorable(value)
