"""Text normalisation for likely matches: logins, names, devices and the match keys.

**Normalisation.** Logins: case and accents folded, a ``DOMAIN\\`` prefix and an ``@upn``
suffix dropped, dots, underscores, dashes and spaces removed (``John.Doe@acme.com`` ->
``johndoe``); a separated login also gives its initial form (``john.doe`` -> ``jdoe``).
Names: ``Doe, John`` reordered; first and last token (``John Q. Doe`` -> john, doe); forms
``johndoe`` and ``jdoe``. A one-word name (``jdoe``, ``Administrator``) says nothing.
Devices: case and separators folded (``LAPTOP-7`` -> ``laptop7``).

Pure: no database and no clock.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# fmt: off
GENERIC_LOGINS = frozenset(
    {
        "administrator", "admin", "localadmin", "user", "users", "guest", "owner", "support", "helpdesk",
        "it", "test", "testuser", "student", "teacher", "pc", "local", "default", "root", "sysadmin",
        "service", "kiosk", "public", "shared", "operator", "demo", "temp", "training",
    }
)
# fmt: on


def _fold(s: str) -> str:
    if s.isascii():
        # NFKD leaves ASCII as it is and none of it is combining: the same answer, at once.
        return s.lower()
    decomposed = unicodedata.normalize("NFKD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_ALNUM = re.compile(r"[0-9a-z]+")


def login_tokens(logon: str) -> list[str]:
    """``OLDCORP\\John.Doe@acme.com`` -> ``["john", "doe"]``."""
    s = _fold(logon)
    s = s.rsplit("\\", 1)[-1]
    s = s.split("@", 1)[0]
    return _ALNUM.findall(s)


def login_canon(logon: str) -> str:
    return "".join(login_tokens(logon))


def login_forms(logon: str) -> set[str]:
    """The normalised login and, for a separated one, its initial form; none if generic."""
    tokens = login_tokens(logon)
    canon = "".join(tokens)
    if len(canon) < 2 or canon in GENERIC_LOGINS:
        return set()
    forms = {canon}
    if len(tokens) >= 2 and tokens[0].isalpha() and tokens[-1].isalpha():
        forms.add(tokens[0][0] + tokens[-1])
    return forms


@dataclass(frozen=True, slots=True)
class Name:
    first: str
    last: str

    @property
    def forms(self) -> set[str]:
        return {self.first + self.last, self.first[0] + self.last}


def parse_name(display_name: str) -> Name | None:
    """First and last name, or None when the display name says nothing (one word, digits)."""
    s = _fold(display_name)
    if "," in s:
        last, _, first = s.partition(",")
        s = f"{first} {last}"
    tokens = [t for t in ("".join(_ALNUM.findall(w)) for w in s.split()) if t]
    if len(tokens) < 2 or not all(t.isalpha() for t in tokens):
        return None
    if tokens[0] in GENERIC_LOGINS or tokens[-1] in GENERIC_LOGINS:
        return None
    return Name(tokens[0], tokens[-1])


def device_canon(device_name: str) -> str:
    return "".join(_ALNUM.findall(_fold(device_name)))


def is_local(device_name: str, domain: str) -> bool:
    """A local account: its domain is its device's name (docs/behaviour.md, Admission)."""
    return domain.casefold() == device_name.casefold()


def match_keys(device_name: str, logon_name: str, display_name: str) -> set[str]:
    """What an agent is filed under in ``match_key``, and what a pending agent looks up."""
    keys = {f"p:{f}" for f in login_forms(logon_name)}
    name = parse_name(display_name)
    if name is not None:
        keys |= {f"p:{f}" for f in name.forms}
    device = device_canon(device_name)
    if device:
        keys.add(f"d:{device}")
    return {k[:300] for k in keys}
