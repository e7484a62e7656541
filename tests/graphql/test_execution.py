"""The executor's short path for plain leaf fields answers exactly as graphql-core's path does.

Each document runs on one small schema twice, with :class:`server.graphql.execution.Executor`
and with Strawberry's own executor: data and errors (messages, paths) must be equal, for
plain values and for every case the short path hands back (a null for a non-null field, a
value its type refuses, an attribute that raises), with fragments, aliases and ``@skip``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from hypothesis import given
from hypothesis import strategies as st

from server.graphql.execution import Executor, leaf_plan
from server.graphql.schema import schema as app_schema


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@strawberry.type
class Item:
    name: str
    label: str | None
    count: int
    colour: Colour
    at: datetime
    id: strawberry.ID
    broken: str
    sub: Item | None = None

    @strawberry.field
    def computed(self) -> str:
        return self.name.upper()


class Raising:
    """An Item whose ``broken`` attribute raises when read."""

    def __init__(self, item: Item) -> None:
        self._item = item

    def __getattr__(self, name: str) -> Any:
        if name == "broken":
            raise RuntimeError("cannot read broken")
        return getattr(self._item, name)


def _item(name: Any, **fields: Any) -> Item:
    """An Item; ``fields`` may hold values its annotations refuse (what the short path hands back)."""
    values: dict[str, Any] = {
        "label": None,
        "count": 1,
        "colour": Colour.RED,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "id": strawberry.ID("7"),
        "broken": "ok",
    }
    return Item(name=name, **(values | fields))


def _items() -> list[Any]:
    good = _item("a", count=3, sub=_item("b", label="l", count=-1, colour=Colour.BLUE))
    return [
        good,
        _item(None, label="x"),  # null for a non-null field
        _item("c", count="many"),  # a value Int refuses
        _item("d", colour="GREEN"),  # not a Colour
        _item("e", count=2**40),  # past Int's 32 bits
        _item("f", label=ValueError("boom")),  # an Exception as a value
        Raising(good),  # an attribute that raises
    ]


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item | None]:
        return _items()

    @strawberry.field
    def strict(self) -> list[Item]:
        return _items()


FIELDS = ["name", "label", "count", "colour", "at", "id", "broken", "computed", "sub { name count }"]
DOCUMENTS = [
    "{ items { " + " ".join(FIELDS) + " } }",
    "{ strict { name count } }",
    "{ items { n: name ...F c2: count @skip(if: true) ... on Item { colour } } } fragment F on Item { count at }",
    "query($s: Boolean!) { items { name @include(if: $s) label } }",
]


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    return strawberry.Schema(Query, execution_context_class=Executor), strawberry.Schema(Query)


FAST, PLAIN = _schemas()


def _shown(result: Any) -> tuple[Any, Any]:
    errors = sorted((e.message, e.path) for e in result.errors or ())
    return result.data, errors


@pytest.mark.parametrize("document", DOCUMENTS)
async def test_the_short_path_answers_as_graphql_core_does(document: str) -> None:
    variables = {"s": True}
    fast = await FAST.execute(document, variable_values=variables)
    plain = await PLAIN.execute(document, variable_values=variables)
    assert _shown(fast) == _shown(plain)
    assert fast.errors, "the cases the short path hands back were exercised"


@given(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=6), st.booleans())
def test_any_selection_answers_the_same(fields: list[str], strict: bool) -> None:
    document = "{ " + ("strict" if strict else "items") + " { " + " ".join(fields) + " } }"
    assert _shown(FAST.execute_sync(document)) == _shown(PLAIN.execute_sync(document))


def test_only_plain_leaves_take_the_short_path() -> None:
    fields = FAST._schema.type_map["Item"].fields  # type: ignore[attr-defined]
    assert leaf_plan(fields["name"]) is not None and leaf_plan(fields["colour"]) is not None
    assert leaf_plan(fields["computed"]) is None  # a resolver
    assert leaf_plan(fields["sub"]) is None  # an object
    # The app's schema uses the executor; the queue page's leaves take the short path.
    assert app_schema.execution_context_class is Executor
    user = app_schema._schema.type_map["User"].fields
    assert leaf_plan(user["displayName"]) is not None and leaf_plan(user["agents"]) is None
