"""The executor's short path answers exactly as graphql-core's path does.

Each document runs on one small schema twice, with :class:`server.graphql.execution.Executor`
and with Strawberry's own executor: data and errors (messages, paths, locations) must be
equal — for plain values, and for every case the short path hands back to graphql-core: a
null for a non-null field (at any depth: in a list's item, under non-null lists and objects),
an ``Exception`` value, an awaitable value (a leaf of a scalar that would serialize it, an
object, a list, a list's item), a value its type refuses, an attribute that raises, a list
that is not a ``list``, a known-answer resolver that does not know, an object type with
``is_type_of`` and an abstract type — with aliases, fragments, ``__typename``,
``@skip``/``@include``, in fixed documents and hypothesis-generated ones. Then the app's own
queue documents run on a seeded account with both executors.
"""

from __future__ import annotations

import asyncio
import enum
import re
from collections import deque
from collections.abc import Awaitable, Generator
from datetime import UTC, datetime, timedelta
from types import CodeType
from typing import Annotated, Any, NewType

import pytest
import strawberry
from hypothesis import given, settings
from hypothesis import strategies as st
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from server.graphql.completion import UNKNOWN
from server.graphql.execution import Executor, context_answer, known_answer, read_by
from server.graphql.schema import schema as app_schema
from server.infra.db import Database
from tests.graphql.helpers import PENDING_PAGE, Gql
from tests.graphql.test_queries import two_device_queue
from tests.server.domain import arrive
from tests.support import START, Tenant


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


Loose = NewType("Loose", str)
"""A scalar that serializes anything: an awaitable read off an attribute included."""

CONFIG = StrawberryConfig(
    scalar_map={
        Loose: strawberry.scalar(
            name="Loose",
            serialize=lambda value: (
                None if value == "null" else f"<{value}>"
            ),  # None: graphql-core refuses it
            parse_value=lambda v: v,
        )
    }
)


class Later:
    """An awaitable (not a coroutine: never warned about when left unawaited)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Generator[None, None, Any]:
        return self.value
        yield  # a generator


class LaterItem(Later):
    """An awaitable Item: it has the fields a selection reads, but graphql-core awaits it."""

    name = "not awaited"
    count = 0
    tags = ("not awaited",)


class ItemError(Exception):
    """An Exception as an Item: it has the fields a selection reads, but graphql-core raises it."""

    name = "not raised"
    count = 0
    tags = ("not raised",)


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Tagged(Named):
    """Implements an interface: its GraphQL type has ``is_type_of``."""

    tag: str


@strawberry.type
class Other:
    other: str


def _known_owner(item: Item) -> Item | Any | None:
    if item.owner_ == "raise":
        raise RuntimeError("cannot know the owner")
    return UNKNOWN if item.owner_ == "unknown" else item.owner_


@strawberry.type
class Item:
    name: str
    label: str | None
    count: int
    total: int | None
    score: float | None
    colour: Colour
    at: datetime
    id: strawberry.ID
    broken: str
    loose: Loose | None
    sub: Item | None
    subs: list[Item]
    maybe: list[Item | None] | None
    tags: list[str]
    tagged: Tagged | None
    either: Annotated[Item | Other, strawberry.union("Either")] | None
    owner_: strawberry.Private[Any] = None

    @strawberry.field
    def computed(self) -> str:
        return self.name.upper()

    @strawberry.field
    async def later(self) -> str:
        return self.name + "!"

    @strawberry.field
    @known_answer(_known_owner)
    def owner(self) -> Item | None:
        known = _known_owner(self)
        if known is not UNKNOWN:
            return known
        return Later(self.sub)  # type: ignore[return-value]  # graphql-core awaits it


class FakeTagged:
    """What Tagged's fields read, but not a Tagged: its type's ``is_type_of`` refuses it."""

    name = "fake"
    tag = "fake"


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
        "total": None,
        "score": 0.5,
        "colour": Colour.RED,
        "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "id": strawberry.ID("7"),
        "broken": "ok",
        "loose": "l",
        "sub": None,
        "subs": [],
        "maybe": None,
        "tags": ["t"],
        "tagged": None,
        "either": None,
    }
    return Item(name=name, **(values | fields))


def _leaf(name: str) -> Item:
    return _item(name, count=len(name), tags=[name, name + "2"])


def _good(name: str) -> Item:
    """An Item with every field plain, nested."""
    sub = _item(name + ".sub", label="l", count=-1, colour=Colour.BLUE, subs=[_leaf(name + ".s0")])
    return _item(
        name,
        count=3,
        sub=sub,
        subs=[_leaf(name + ".a"), _leaf(name + ".b")],
        maybe=[_leaf(name + ".m"), None],
        owner_=_leaf(name + ".o"),
        tagged=Tagged(name="t", tag="x"),
        either=Other(other="o"),
    )


def _items() -> list[Any]:
    """Plain items, then each case the short path hands back."""
    return [
        _good("a"),
        _good("b"),
        _item(None, label="x"),  # null for a non-null field
        _item("c", count="many"),  # a value Int refuses
        _item("d", colour="GREEN"),  # not a Colour
        _item("e", count=2**40),  # past Int's 32 bits
        _item("f", label=ValueError("boom")),  # an Exception as a leaf's value
        Raising(_good("g")),  # an attribute that raises
        _item("h", subs=[_leaf("h0"), _item(None), _leaf("h2")]),  # a null inside a non-null list
        _item("i", maybe=[_leaf("i0"), _item(None), ValueError("item")]),  # errors inside a nullable list
        _item("j", subs=(_leaf("j0"), _leaf("j1")), tags=("x", "y")),  # tuples
        _item("k", subs=deque([_leaf("k0")]), tags=deque(["z"])),  # iterables that are not lists
        _item("l", subs=None, tags=[None]),  # null non-null list, null non-null item
        _item("m", sub=ItemError("no sub"), maybe=Later([_leaf("m0")])),  # Exception object, awaitable list
        _item(
            "n", sub=LaterItem(_leaf("n0")), subs=[LaterItem(_leaf("n1"))], tags=[Later("n2")]
        ),  # awaitables
        _item("m2", subs=[_leaf("m3"), ItemError("in a list")], maybe=[ItemError("in a nullable list")]),
        _item("x", subs=[_leaf("x0"), None], maybe=[None, _leaf("x1")]),  # null items
        _item("o", loose=Later("n"), label=Later("lbl")),  # awaitable leaves (Loose would serialize it)
        _item("p", owner_="unknown", sub=_leaf("p0")),  # the known answer is not known
        _item("q", owner_="raise"),  # the known answer raises
        _item("r", owner_=_item(None)),  # a known answer that does not complete
        _item("s", tagged=_leaf("not tagged"), either=_leaf("s0")),  # is_type_of refuses; a union
        _item("t", subs=[_leaf("t0"), _item("t1", sub=_item(None))]),  # a nullable null deep in a list
        _item("u", tagged=FakeTagged()),  # is_type_of refuses what has the fields
        _item("v", tags="abc", maybe={"x": _leaf("v0")}),  # a str, a mapping: not lists to graphql-core
        _item("w", loose="null"),  # a scalar serializing to None
        _item("y", count=True, total=7, score=float("nan")),  # a bool for an Int; NaN for a Float
        _item("z", count=2**31 - 1, total=-(2**31), score=1),  # Int's bounds; an int for a Float
        _item("z1", count=-(2**31) - 1, total=2**31, score=float("inf")),  # past them; infinity
        _item("z2", count=2.0, total=2.5, score=True),  # floats for Ints; a bool for a Float
    ]


def _known_caller(context: Any) -> Item | Any:
    """The request's caller, when its context names one (a context answer)."""
    who = context.get("who") if isinstance(context, dict) else None
    if who == "raise":
        raise RuntimeError("cannot know the caller")
    return UNKNOWN if who is None else _good(who)


@strawberry.type
class Query:
    @strawberry.field
    @context_answer(_known_caller)
    def caller(self, info: strawberry.Info) -> Item:
        known = _known_caller(info.context)
        if known is not UNKNOWN:
            return known  # type: ignore[no-any-return]
        return _good("resolved")

    @strawberry.field
    def items(self) -> list[Item | None]:
        return _items()

    @strawberry.field
    def strict(self) -> list[Item]:
        return _items()

    @strawberry.field
    def plain(self) -> list[Item]:
        return [_good("a"), _good("b")]

    @strawberry.field
    def one(self) -> Item:
        return _good("one")


LEAVES = [
    "name",
    "label",
    "count",
    "total",
    "score",
    "colour",
    "at",
    "id",
    "broken",
    "loose",
    "tags",
    "__typename",
]
RESOLVED = ["computed", "later"]
OBJECTS = ["sub", "subs", "maybe", "owner"]
FIELDS = [
    *LEAVES,
    *RESOLVED,
    *(f"{field} {{ name count }}" for field in OBJECTS),
    "tagged { name tag __typename }",
    "either { __typename ... on Item { name } ... on Other { other } }",
]
DOCUMENTS = [
    "{ items { " + " ".join(FIELDS) + " } }",
    "{ strict { name count } }",
    "{ strict { subs { name } } }",
    "{ items { subs { tags } maybe { name sub { name } } } }",
    "{ items { n: name ...F c2: count @skip(if: true) ... on Item { colour } } } fragment F on Item { count at }",
    "query($s: Boolean!, $t: Boolean!) { items { name @include(if: $s) label sub @skip(if: $t) { name } } }",
    "{ items { owner { name owner { name } } sub { owner { name } } } }",
    "{ plain { a: name b: name ...F sub { ...F } subs { ...F __typename } } } fragment F on Item { name count tags }",
    "{ plain { sub { name } sub { count subs { name } } owner { tags } } one { subs { sub { name } } } }",
    "{ one { name later sub { later } } __typename }",
    "{ items { owner { name } maybe { name } tagged { name tag } loose tags } }",
    "{ items { id owner { name } } }",
    "{ items { subs { name count } sub { name tags } } }",
    "{ items { maybe { name } } strict { name maybe { count } } }",
]


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    types = [Tagged]
    return (
        strawberry.Schema(Query, types=types, config=CONFIG, execution_context_class=Executor),
        strawberry.Schema(Query, types=types, config=CONFIG),
    )


FAST, PLAIN = _schemas()


def _shown(result: Any) -> tuple[Any, Any]:
    errors = sorted(
        (e.message, e.path, [(loc.line, loc.column) for loc in e.locations or ()])
        for e in result.errors or ()
    )
    return result.data, errors


async def _both(
    document: str, variables: dict[str, Any] | None = None, context: Any = None
) -> tuple[Any, Any]:
    fast = await _settled(FAST.execute(document, variable_values=variables, context_value=context))
    plain = await _settled(PLAIN.execute(document, variable_values=variables, context_value=context))
    return _shown(fast), _shown(plain)


async def _settled(execution: Awaitable[Any]) -> Any:
    """The result, once the resolvers a null propagation left behind (graphql-core settles
    them in the background, with either executor) have run: none is left unawaited."""
    result = await execution
    current = asyncio.current_task()
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t is not current), return_exceptions=True)
    return result


@pytest.mark.parametrize("document", DOCUMENTS)
@pytest.mark.parametrize("flag", [True, False])
async def test_the_short_path_answers_as_graphql_core_does(document: str, flag: bool) -> None:
    fast, plain = await _both(document, {"s": flag, "t": not flag})
    assert fast == plain


async def test_the_cases_handed_back_were_exercised() -> None:
    (data, errors), _ = await _both(DOCUMENTS[0])
    messages = " ".join(message for message, _, _ in errors)
    for expected in ("non-nullable", "Int cannot represent", "Enum 'Colour'", "boom", "cannot read broken"):
        assert expected in messages, expected
    assert "cannot know the owner" in messages
    by_name = {item["name"]: item for item in data["items"] if item is not None}
    assert by_name["o"]["loose"] == "<n>" and by_name["o"]["label"] == "lbl"  # awaited, then serialized
    assert by_name["p"]["owner"] == {"name": "p0", "count": 2}  # the resolver's awaitable answer
    assert by_name["a"]["owner"] == {"name": "a.o", "count": 3}  # the known answer


class Counting(Executor):
    """Counts the fields graphql-core's ``execute_field`` executes."""

    executed: list[str] = []  # a test's tally

    def execute_field(self, parent_type: Any, source: Any, fields: Any, path: Any, position: Any) -> Any:
        Counting.executed.append(f"{parent_type.name}.{fields[0].node.name.value}")
        return super().execute_field(parent_type, source, fields, path, position)


def test_plain_selections_take_the_short_path() -> None:
    counting = strawberry.Schema(Query, types=[Tagged], config=CONFIG, execution_context_class=Counting)
    document = DOCUMENTS[7]
    Counting.executed.clear()
    result = counting.execute_sync(document)
    assert not result.errors and result.data == PLAIN.execute_sync(document).data
    # The root field has a resolver; everything under it (2 items, ~60 fields) is completed here.
    assert Counting.executed == ["Query.plain"]
    # Only what is not plain goes through graphql-core's path.
    Counting.executed.clear()
    document = "{ items { name colour } }"
    result = counting.execute_sync(document)
    assert _shown(result) == _shown(PLAIN.execute_sync(document))
    assert Counting.executed.count("Item.name") < 5 and Counting.executed.count("Item.colour") < 5


CALLER_DOCUMENTS = [
    "{ caller { name sub { name } subs { name count } } }",
    "{ caller { name } items { name } }",
    "{ c: caller { name } d: caller { count } __typename }",
    "{ ...Q } fragment Q on Query { caller { name owner { name } } }",
]


@pytest.mark.parametrize("document", CALLER_DOCUMENTS)
@pytest.mark.parametrize("context", [{"who": "me"}, {}, None, {"who": "raise"}])
async def test_a_root_field_answered_from_the_context_answers_as_its_resolver(
    document: str, context: Any
) -> None:
    fast, plain = await _both(document, context=context)
    assert fast == plain
    assert fast[0] is not None or context == {"who": "raise"}


def test_a_context_answer_skips_the_resolver_at_the_root_only() -> None:
    counting = strawberry.Schema(Query, types=[Tagged], config=CONFIG, execution_context_class=Counting)
    Counting.executed.clear()
    result = counting.execute_sync("{ caller { name } one { name } }", context_value={"who": "me"})
    assert not result.errors and result.data == {"caller": {"name": "me"}, "one": {"name": "one"}}
    assert Counting.executed == ["Query.one"]
    Counting.executed.clear()
    result = counting.execute_sync("{ caller { name } }", context_value={})  # not known: resolved
    assert not result.errors and result.data == {"caller": {"name": "resolved"}}
    assert Counting.executed == ["Query.caller"]
    fields = FAST._schema.type_map["Query"].fields  # type: ignore[attr-defined]
    assert read_by(fields["caller"]) == "context answer" and read_by(fields["one"]) is None
    assert read_by(app_schema._schema.type_map["Query"].fields["me"]) == "context answer"  # type: ignore[attr-defined]


def test_only_attributes_and_known_answers_take_the_short_path() -> None:
    fields = FAST._schema.type_map["Item"].fields  # type: ignore[attr-defined]
    assert read_by(fields["name"]) == "attribute" and read_by(fields["sub"]) == "attribute"
    assert read_by(fields["owner"]) == "known answer"
    assert read_by(fields["computed"]) is None  # a resolver
    assert read_by(fields["later"]) is None  # an async one
    # The app's schema uses the executor; the queue page's fields take the short path.
    assert app_schema.execution_context_class is Executor
    types: dict[str, Any] = app_schema._schema.type_map  # object types: their fields
    assert read_by(types["User"].fields["displayName"]) == "attribute"
    assert read_by(types["User"].fields["agents"]) == "known answer"
    assert read_by(types["User"].fields["pending"]) == "known answer"
    assert read_by(types["Agent"].fields["user"]) == "known answer"
    assert read_by(types["User"].fields["activity"]) is None  # arguments, async
    # Known when the page is the whole list (cursors.Page.count), else counted by query.
    assert read_by(types["UserConnection"].fields["totalCount"]) == "known answer"
    assert read_by(types["AgentConnection"].fields["totalCount"]) == "known answer"


# ---------------------------------------------------------------------------- generated selections

NESTED = ["sub", "subs", "maybe", "owner"]


@st.composite
def selections(draw: st.DrawFn, depth: int = 0) -> str:
    """A selection set on Item: leaves, resolved fields, nested objects; aliases, inline
    fragments, ``__typename``, ``@skip``/``@include`` on literals and variables."""
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["leaf", "leaf", "resolved", "object", "fragment", "named"]))
        if kind == "object" and depth < 2:
            text = draw(st.sampled_from(NESTED)) + " { " + draw(selections(depth + 1)) + " }"
        elif kind == "fragment" and depth < 2:
            text = "... on Item { " + draw(selections(depth + 1)) + " }"
        elif kind == "named":
            text = "...F"
        elif kind == "resolved":
            text = draw(st.sampled_from(RESOLVED))
        else:
            text = draw(st.sampled_from(LEAVES))
        if not text.startswith("...") and draw(st.booleans()):
            # An alias always for the same field: aliased fields never conflict.
            text = f"x_{text.split()[0].lstrip('_')}: {text}"
        directive = draw(
            st.sampled_from(
                ["", "", "", "@skip(if: true)", "@include(if: false)", "@skip(if: $v)", "@include(if: $v)"]
            )
        )
        if directive:
            head, brace, rest = text.partition(" {")
            text = f"{head} {directive}{brace}{rest}"
        parts.append(text)
    return " ".join(parts)


@settings(max_examples=150, deadline=None)
@given(selections(), st.sampled_from(["items", "strict", "plain", "one"]), st.booleans())
def test_any_selection_answers_the_same(selection: str, root: str, flag: bool) -> None:
    body = "{ " + root + " { " + selection + " } }"
    if "...F" in body:
        body += " fragment F on Item { name tags sub { count } }"
    if "$v" in body:
        body = "query($v: Boolean!) " + body
    fast, plain = asyncio.run(_both(body, {"v": flag} if "$v" in body else None))
    assert fast == plain


# ---------------------------------------------------------------------------- the app's documents

APP_DOCUMENTS = [
    PENDING_PAGE,
    """query($first: Int!) { me { id } pendingUsers(first: $first) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { cursor node { ...U agents { __typename id a: deviceName user { ...U } } pending { reason dueAt overdue } } }
    } } fragment U on User { id displayName status firstSeenAt lastSeenAt licensedAt __typename }""",
    """query($first: Int!) { users(first: $first) { totalCount edges { cursor node {
        id status pending { reason } agents { logonName user { id agents { id } } } lastActivityAt
    } } } }""",
    """query($first: Int!) { agents(first: $first) { edges { node { id user { id displayName pending { reason } agents { id } } } } } }""",
    """query($first: Int!, $skip: Boolean = true) { pendingUsers(first: $first, orderBy: NAME_ASC) { edges {
        node { id agents @skip(if: $skip) { id } pending @include(if: $skip) { enteredAt } activity(days: 7) { activeSeconds } }
    } } }""",
]


@pytest.mark.parametrize("document", APP_DOCUMENTS)
async def test_the_app_answers_as_with_strawberrys_executor(
    gql: Gql, db: Database, tenant: Tenant, document: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await two_device_queue(db, tenant, licensed=2, pending=7)

    fast = await gql(tenant.admin_token, document, first=5)
    monkeypatch.setattr(app_schema, "execution_context_class", StrawberryGraphQLCoreExecutionContext)
    plain = await gql(tenant.admin_token, document, first=5)
    assert fast.data == plain.data and fast.errors == plain.errors
    assert plain.ok()


async def test_a_document_run_again_answers_as_the_first_time(
    gql: Gql, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document without directives shares its plans between executions (the parse cache
    gives the same nodes); one whose @skip/@include depend on variables never does, so each
    run collects its own fields. Either way every run answers as graphql-core's executor."""
    from server.graphql import execution

    async def both(document: str, **variables: Any) -> Any:
        fast = await gql(tenant.admin_token, document, **variables)
        with monkeypatch.context() as m:
            m.setattr(app_schema, "execution_context_class", StrawberryGraphQLCoreExecutionContext)
            plain = await gql(tenant.admin_token, document, **variables)
        assert fast.data == plain.data and fast.errors == plain.errors
        return plain.ok()

    for i in range(3):
        await arrive(db, tenant.account_id, f"LIC{i}", f"lic{i}")
    shared = APP_DOCUMENTS[1]
    # Every field on the short path: a plan reused across runs would keep the first run's fields.
    per_run = """query($first: Int!, $skip: Boolean!) { pendingUsers(first: $first) {
        edges { node { id agents @skip(if: $skip) { id } pending @include(if: $skip) { reason } } } } }"""
    for i in range(4):
        await arrive(db, tenant.account_id, f"PC{i}", f"p{i}", now=START + timedelta(seconds=i))
        # The same documents again, over more rows and with other variables.
        await both(shared, first=1 + i)
        for skip in (True, False):
            page = await both(per_run, first=1 + i, skip=skip)
            for edge in page["pendingUsers"]["edges"]:
                assert ("agents" in edge["node"]) is not skip and ("pending" in edge["node"]) is skip
    operations = [op for ref, _plans in execution._SHARED_PLANS.values() if (op := ref()) is not None]
    assert any(
        "me" in str(op.loc.source.body) and "fragment U" in op.loc.source.body for op in operations if op.loc
    )
    assert not any("$skip" in op.loc.source.body for op in operations if op.loc)


def test_shared_plans_go_with_their_document() -> None:
    """Shared plans hold their operation weakly: once the parse cache lets a document go, its
    plans (which keep its nodes and tokens) go too."""
    import gc

    from graphql import OperationDefinitionNode, parse

    from server.graphql import execution

    document = parse("{ me { id } }")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    key = id(operation)
    execution._share(operation, {})
    assert execution._SHARED_PLANS[key][0]() is operation
    del document, operation
    gc.collect()
    assert key not in execution._SHARED_PLANS


def test_a_plain_object_is_completed_by_one_generated_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each fast plan completes its objects with one function generated for it, once; the
    function's source holds no name from the document (an alias is a global it reads)."""
    from server.graphql import completion, execution

    compiled: list[tuple[str, Any]] = []
    original = completion.compiled

    def recording(plan: Any) -> Any:
        run = original(plan)
        compiled.append((plan.name, run))
        return run

    monkeypatch.setattr(execution, "compiled", recording)
    document = "{ plain { x_alias: name id colour at count label tags sub { name colour } subs { id } } }"
    result = FAST.execute_sync(document)
    assert not result.errors and result.data == PLAIN.execute_sync(document).data
    assert all("x_alias" in item for item in result.data["plain"])  # type: ignore[index]
    # Item's three selections (the root's items, sub, subs), each generated once for all
    # rows; the root's again on its second row, once sub's and subs' functions exist: it then
    # calls them directly (P: a plan's function) instead of going through ``complete``.
    assert [name for name, _ in compiled] == ["Item"] * 4
    first, settled = compiled[0][1], compiled[-1][1]
    direct = re.compile(r"P\d+")

    def names(code: CodeType) -> set[str]:  # a list's comprehension is a code object of its own
        return {*code.co_names}.union(*(names(c) for c in code.co_consts if isinstance(c, CodeType)))

    assert not any(direct.fullmatch(n) for n in names(first.__code__))
    assert sum(bool(direct.fullmatch(n)) for n in names(settled.__code__)) == 2
    for _, run in compiled:
        assert "x_alias" not in run.__code__.co_names and "x_alias" not in run.__code__.co_consts
    assert any("N0" in run.__code__.co_names for _, run in compiled)
