"""docs/api.md: the text of an ingest batch. Agent names and ``app`` refuse what would not show
as it is (controls, bidi controls, invisible characters; in names, words mixing look-alike
scripts); titles and urls keep any storable text.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import AsyncIterator
from functools import cache
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col

from server.domain.activity.batch import BatchInvalid, parse_batch
from server.domain.models import Agent, IngestBatch, User
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.server.domain import count, events
from tests.support import START, FakeClock, Tenant, batch_body, serve_app

NAME_FIELDS = ("deviceName", "domain", "logonName", "displayName")

# What names and app refuse, written out from the standards rather than read from the code.
C0_C1 = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))]
LINE_BREAKS = ["\u2028", "\u2029"]
BIDI = [chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))]
# Unicode 15 DerivedCoreProperties.txt, Default_Ignorable_Code_Point, less the bidi controls;
# and the interlinear annotation marks.
INVISIBLE_RANGES = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200D),
    (0x2060, 0x2065),
    (0x206A, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xFFF9, 0xFFFB),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]
INVISIBLE = [chr(c) for lo, hi in INVISIBLE_RANGES for c in range(lo, hi + 1)]
REFUSED = frozenset(C0_C1 + LINE_BREAKS + BIDI + INVISIBLE)
# Format characters (Cf) that are visible, so not refused: Arabic number and end-of-ayah
# signs, Syriac abbreviation mark, Kaithi number signs, Egyptian hieroglyph format controls.
VISIBLE_FORMAT = frozenset(
    chr(c) for c in (*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD)
) | frozenset(chr(c) for c in range(0x13430, 0x13440))

# One of each kind, as a test id names it.
SAMPLES = {
    "NUL": "\x00",
    "tab": "\t",
    "newline": "\n",
    "ESC": "\x1b",
    "BEL": "\x07",
    "DEL": "\x7f",
    "C1 NEL": "\x85",
    "C1 CSI": "\x9b",
    "line separator": "\u2028",
    **{f"bidi U+{ord(c):04X}": c for c in BIDI},
    "ZWSP": "\u200b",
    "ZWNJ": "\u200c",
    "ZWJ": "\u200d",
    "word joiner": "\u2060",
    "BOM": "\ufeff",
    "soft hyphen": "\u00ad",
    "Mongolian vowel separator": "\u180e",
    "variation selector 16": "\ufe0f",
    "Hangul filler": "\u3164",
    "tag": "\U000e0041",
}
# Words mixing look-alike scripts, each beside the name it passes for.
CONFUSABLES = {
    "p\u0430ypal": "Latin paypal with a Cyrillic a",
    "J\u0430ne Doe": "Cyrillic a in a Latin first name",
    "Jane D\u043e\u0435": "Cyrillic o and e in a Latin last name",
    "\u0408doe": "Cyrillic Je as an initial",
    "je\u0301\u0430n": "a combining accent does not end a word",
    "\u0391CME": "Greek Alpha in ACME",
    "\u03bfffice": "Greek omicron in office",
    "\u0412\u043b\u0430\u0434\u0438\u043cir": "Cyrillic name ending in Latin letters",
    "\u03b1\u0431": "Greek and Cyrillic",
    "\uff41\u0430": "fullwidth Latin a and Cyrillic a",
}
ACCEPTED_NAMES = [
    "Jane Doe",
    "José Núñez",
    "Zoë Ångström-Løvås",
    "Jean-François d'Arcy",
    "Владимир Путилин",
    "Δημήτρης Παπαδόπουλος",
    "Jane Doe Иванова",  # words of different scripts, each one-script
    "山田\u3000太郎",  # ideographic space between family and given name
    "やまだ たろう",
    "ヤマダ太郎",  # kana and kanji in one word
    "محمد عبد الله",
    "דוד כהן",
    "김민준",
    "राहुल शर्मा",
    "Ann 🚀",  # a plain emoji; ZWJ sequences and VS16 emoji are refused with their joiners
    "5µm-LAB",  # the micro sign is not a Greek letter for this check
    "PC-07 (ÅRHUS)",
    "PC-\u041c\u043e\u0441\u043a\u0432\u0430",  # PC-Moskva: punctuation ends a word; real device names pass
    "LAPTOP-\u0418\u0432\u0430\u043d2",  # LAPTOP-Ivan2
    "x" * 256,
]


def body_with(field: str, value: str) -> dict[str, Any]:
    body = batch_body("PC-7", "jdoe", events=2)
    if field == "app":
        body["events"][1]["app"] = value
    elif field in ("title", "url"):
        body["events"][1][field] = value
    else:
        body["agent"][field] = value
    return body


def path_of(field: str) -> str:
    return f"events[1].{field}" if field in ("app", "title", "url") else f"agent.{field}"


def refusal(field: str, value: str) -> str:
    """The one problem ``parse_batch`` finds with ``value`` in ``field``."""
    with pytest.raises(BatchInvalid) as refused:
        parse_batch(body_with(field, value), START)
    assert [d["field"] for d in refused.value.details] == [path_of(field)], refused.value.details
    return refused.value.details[0]["message"]


def accepts(field: str, value: str) -> None:
    batch = parse_batch(body_with(field, value), START)
    if field == "app":
        assert batch.events[1].app == value
    elif field == "title":
        assert batch.events[1].title == value


# ---------------------------------------------------------------------------- parse_batch


@pytest.mark.parametrize("field", [*NAME_FIELDS, "app"])
@pytest.mark.parametrize("char", SAMPLES.values(), ids=SAMPLES.keys())
def test_names_and_app_refuse_controls_bidi_and_invisible_characters(field: str, char: str) -> None:
    message = refusal(field, f"Ja{char}ne")
    if char != "\x00":
        assert f"U+{ord(char):04X}" in message, message
    kind = "bidirectional" if char in BIDI else "invisible" if char in INVISIBLE else "control"
    assert kind in message, message


@pytest.mark.parametrize("field", [*NAME_FIELDS, "app"])
def test_the_classic_attacks_are_refused(field: str) -> None:
    assert "bidirectional" in refusal(field, "Jane \u202eeoD")
    assert "invisible" in refusal(field, "jd\u200boe")
    assert "control" in refusal(field, "evil\x1b]0;pwned\x07.exe")


@pytest.mark.parametrize("field", NAME_FIELDS)
@pytest.mark.parametrize("name", CONFUSABLES, ids=CONFUSABLES.values())
def test_a_name_word_mixing_latin_cyrillic_or_greek_is_refused(field: str, name: str) -> None:
    assert "must not mix" in refusal(field, name)


@pytest.mark.parametrize("field", NAME_FIELDS)
@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_international_names_are_accepted(field: str, name: str) -> None:
    batch = parse_batch(body_with(field, name), START)
    stored = {
        "deviceName": batch.agent.device_name,
        "domain": batch.agent.domain,
        "logonName": batch.agent.logon_name,
        "displayName": batch.agent.display_name,
    }
    assert stored[field] == name


def test_an_app_may_mix_scripts() -> None:
    """Nobody is told apart by an app's name; only its hidden characters matter."""
    accepts("app", "p\u0430ypal.exe")


@pytest.mark.parametrize("field", ["title", "url"])
def test_titles_and_urls_keep_controls_and_refuse_only_what_cannot_be_stored(field: str) -> None:
    for kept in ("a\tb", "Jane \u202eeoD", "jd\u200boe", "evil\x1b]0;pwned\x07", "p\u0430ypal"):
        parse_batch(body_with(field, kept), START)
    assert "NUL" in refusal(field, "a\x00b")
    assert "surrogate" in refusal(field, "a\ud800b")


def test_every_format_character_is_refused_unless_visible() -> None:
    """Unicode's invisible format characters (Cf) are all refused: none slips through the table."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        if unicodedata.category(char) == "Cf" and char not in VISIBLE_FORMAT:
            assert char in REFUSED, f"U+{code:04X} {unicodedata.name(char, '')}"
            refusal("logonName", f"a{char}b")


# ---------------------------------------------------------------------------- properties


@cache
def letters(prefix: str) -> list[str]:
    """The letters of the Basic Multilingual Plane named ``prefix ...`` (one script)."""
    return [
        chr(c)
        for c in range(0x10000)
        if chr(c).isalpha() and unicodedata.name(chr(c), "").startswith(prefix) and chr(c) not in REFUSED
    ]


def printable(letters: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Ordinary text: these letters, digits, punctuation, symbols, combining marks, spaces."""
    others = st.characters(categories=("Nd", "P", "S", "Mn", "Zs")).filter(lambda c: c not in REFUSED)
    return st.text(st.one_of(letters, others), min_size=1, max_size=60)


refused_chars = st.sampled_from(sorted(REFUSED))
any_letter = st.characters(categories=["L"]).filter(lambda c: c not in REFUSED)
one_script_name = st.sampled_from(
    ["LATIN ", "CYRILLIC ", "GREEK ", "CJK ", "HIRAGANA ", "ARABIC ", "HANGUL "]
).flatmap(lambda prefix: printable(st.sampled_from(letters(prefix))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from([*NAME_FIELDS, "app"]),
    before=st.text(max_size=20),
    bad=refused_chars,
    after=st.text(max_size=20),
)
def test_any_text_holding_a_refused_character_is_refused(
    field: str, before: str, bad: str, after: str
) -> None:
    refusal(field, f"x{before}{bad}{after}x")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(app=printable(any_letter))
def test_any_ordinary_text_is_an_app(app: str) -> None:
    accepts("app", app)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(NAME_FIELDS), name=one_script_name.map(str.strip).filter(bool))
def test_any_ordinary_one_script_text_is_a_name(field: str, name: str) -> None:
    parse_batch(body_with(field, name), START)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(NAME_FIELDS),
    scripts=st.lists(st.sampled_from(["LATIN ", "CYRILLIC ", "GREEK "]), min_size=2, max_size=2, unique=True),
    data=st.data(),
)
def test_any_word_with_letters_of_two_look_alike_scripts_is_refused(
    field: str, scripts: list[str], data: st.DataObject
) -> None:
    first, second = (data.draw(st.sampled_from(letters(s))) for s in scripts)
    # Combining marks continue a word (digits and punctuation would end it).
    middle = data.draw(st.text(st.sampled_from("\u0300\u0301\u0308\u0327\u030c"), max_size=3))
    assert "must not mix" in refusal(field, f"{first}{middle}{second}")


# ---------------------------------------------------------------------------- over HTTP


@pytest.fixture
async def http(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=db_url), db=db, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
        yield client


async def post(http: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> httpx.Response:
    return await http.post(
        "/ingest",
        content=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {tenant.ingest_key}", "Content-Type": "application/json"},
    )


async def stored(db: Database) -> list[int]:
    return [
        await count(db, User),
        await count(db, Agent),
        len(await events(db)),
        await count(db, IngestBatch),
    ]


@pytest.mark.parametrize("field", [*NAME_FIELDS, "app"])
async def test_a_refused_character_answers_400_naming_the_field_and_stores_nothing(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, field: str
) -> None:
    assert (await post(http, tenant, batch_body("PC-1", "ann", events=1))).status_code == 202
    before = await stored(db)
    values = [f"Ja{c}ne" for c in SAMPLES.values()]
    if field != "app":
        values += list(CONFUSABLES)
    for value in values:
        r = await post(http, tenant, body_with(field, value))
        assert r.status_code == 400, value
        error = r.json()["error"]
        assert error["code"] == "INVALID_INPUT" and error["message"]
        assert [d["field"] for d in error["details"]] == [path_of(field)], (value, error)
    assert await stored(db) == before


async def test_international_names_are_admitted_and_stored_as_sent(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    for n, name in enumerate(ACCEPTED_NAMES):
        body = batch_body(f"PC-{n}", "user", display=name)
        body["agent"]["logonName"] = body["agent"]["domain"] = name
        body["events"][0]["app"] = name
        r = await post(http, tenant, body)
        assert r.status_code == 202, (name, r.text)
    async with db.read() as s:
        names = set((await s.execute(sa.select(col(User.display_name)))).scalars())
    assert names == set(ACCEPTED_NAMES)
