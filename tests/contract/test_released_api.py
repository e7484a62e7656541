"""The released GraphQL API: ``schema.graphql`` may grow, but never break what was released.

``released.graphql`` beside this module is a committed snapshot of the public API as it was
last released. :func:`test_schema_graphql_keeps_the_released_api` compares the exported
``schema.graphql`` (kept in sync with the code by ``tests/graphql/test_schema_file.py``)
with it and fails on every change a client written against the release could notice:

* whatever graphql-core's ``find_breaking_changes`` reports: a removed type, field,
  argument or enum value; a changed type or kind; a new required argument or input field;
* a changed or removed default value of an argument or input field: a client that leaves
  the value out would get something else, or an error.

graphql-core 3.3 reports default changes only as "dangerous" (``ARG_DEFAULT_VALUE_CHANGE``,
``INPUT_FIELD_DEFAULT_VALUE_CHANGE``), and older releases, which Strawberry also accepts, do
not compare input field defaults at all; so :func:`default_changes` compares every default
itself, from the SDL, whatever graphql-core is installed.

How to release
--------------
* Additive changes (a new type, field, optional argument, optional input field or enum
  value) need no snapshot update: run ``plm export-schema`` as usual and the guard lets
  them through.
* When a release is cut, regenerate the snapshot from the exported schema and commit it
  with the release::

      .venv/bin/plm export-schema && cp schema.graphql tests/contract/released.graphql

* A breaking change fails the test below. If the break is really intended, edit
  ``released.graphql`` deliberately in the same commit (remove or change exactly what
  breaks), so the reviewer sees the API break in the diff, and tell client authors.

The remaining tests prove the guard able to fail: each feeds it a modified copy of the
snapshot and requires the change to be reported, in words.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from graphql import (
    DirectiveDefinitionNode,
    DocumentNode,
    InputObjectTypeDefinitionNode,
    InputObjectTypeExtensionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    InterfaceTypeExtensionNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    build_ast_schema,
    find_breaking_changes,
    parse,
    print_ast,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RELEASED = HERE / "released.graphql"
SCHEMA = REPO / "schema.graphql"


# ---------------------------------------------------------------------------- the guard


def _defaults(document: DocumentNode) -> dict[str, str | None]:
    """What a client that leaves a value out gets, for every argument and input field.

    The default as printed SDL; a nullable value without one is null when left out, exactly
    as with ``= null``; a non-null value without one is required (``None``).
    """
    found: dict[str, str | None] = {}

    def add(what: str, value: InputValueDefinitionNode) -> None:
        if value.default_value is not None:
            found[what] = print_ast(value.default_value)
        else:
            found[what] = None if isinstance(value.type, NonNullTypeNode) else "null"

    for node in document.definitions:
        if isinstance(node, InputObjectTypeDefinitionNode | InputObjectTypeExtensionNode):
            for input_field in node.fields or ():
                add(f"Input field {node.name.value}.{input_field.name.value}", input_field)
        elif isinstance(
            node,
            ObjectTypeDefinitionNode
            | ObjectTypeExtensionNode
            | InterfaceTypeDefinitionNode
            | InterfaceTypeExtensionNode,
        ):
            for field in node.fields or ():
                for arg in field.arguments or ():
                    add(f"Argument {node.name.value}.{field.name.value}({arg.name.value}:)", arg)
        elif isinstance(node, DirectiveDefinitionNode):
            for arg in node.arguments or ():
                add(f"Argument @{node.name.value}({arg.name.value}:)", arg)
    return found


def default_changes(released: DocumentNode, current: DocumentNode) -> Iterator[str]:
    """Every argument or input field kept from ``released`` whose default is not the same.

    What counts is what a client that leaves the value out gets: a nullable value without
    a default is null, as with ``= null``, so adding or dropping ``= null`` changes nothing,
    while ``= 3`` on a value that was null when left out does. A default on a value that
    was required is additive (every client already passes it). Values that are gone are
    ``find_breaking_changes``' to report.
    """
    now = _defaults(current)
    for name, old in _defaults(released).items():
        if name not in now or now[name] == old or old is None:
            continue
        new = now[name]
        if new is None:
            yield (
                f"DEFAULT_VALUE_REMOVED: {name} had the default {old}; "
                "it has none now, so a client that leaves it out gets an error."
            )
        else:
            yield f"DEFAULT_VALUE_CHANGED: {name} changed its default from {old} to {new}."


def api_changes(released_sdl: str, current_sdl: str) -> list[str]:
    """Every change from ``released_sdl`` to ``current_sdl`` that can break a client, in words."""
    released, current = parse(released_sdl), parse(current_sdl)
    breaking = find_breaking_changes(build_ast_schema(released), build_ast_schema(current))
    return [f"{c.type.name}: {c.description}" for c in breaking] + list(default_changes(released, current))


def failure_message(changes: list[str]) -> str:
    lines = "\n".join(f"  - {c}" for c in changes)
    return (
        f"schema.graphql breaks the released API ({RELEASED.relative_to(REPO)}) "
        f"in {len(changes)} way(s):\n{lines}\n"
        "Keep the released API (add beside it instead of changing it). A break that is really "
        "intended needs a deliberate edit of released.graphql in the same commit; see "
        "tests/contract/test_released_api.py."
    )


# ---------------------------------------------------------------------------- the test


def test_schema_graphql_keeps_the_released_api() -> None:
    changes = api_changes(RELEASED.read_text(), SCHEMA.read_text())
    assert not changes, failure_message(changes)


# ---------------------------------------------------------------------------- the guard can fail


def edited(sdl: str, old: str, new: str) -> str:
    """``sdl`` with the one occurrence of ``old`` replaced by ``new``."""
    assert sdl.count(old) == 1, f"{old!r} must occur exactly once in the snapshot"
    return sdl.replace(old, new)


BREAKS = {
    "removed field": (
        "  licensesAvailable: Int!\n",
        "",
        ["FIELD_REMOVED", "Account.licensesAvailable"],
    ),
    "changed field type": (
        "  retentionDays: Int!\n",
        "  retentionDays: String!\n",
        ["FIELD_CHANGED_KIND", "Account.retentionDays", "Int!", "String!"],
    ),
    "field made nullable": (
        "  pendingUsers(first: Int! = 50, after: String = null, search: String = null, "
        "reason: PendingReason = null, orderBy: PendingOrder! = ENTERED_ASC): UserConnection!\n",
        "  pendingUsers(first: Int! = 50, after: String = null, search: String = null, "
        "reason: PendingReason = null, orderBy: PendingOrder! = ENTERED_ASC): UserConnection\n",
        ["FIELD_CHANGED_KIND", "Query.pendingUsers"],
    ),
    "removed enum value": (
        "  OVER_LIMIT\n  MANUAL_REVIEW\n}",
        "  OVER_LIMIT\n}",
        ["VALUE_REMOVED_FROM_ENUM", "MANUAL_REVIEW", "PendingReason"],
    ),
    "changed argument default": (
        "queueMetrics(days: Int! = 30)",
        "queueMetrics(days: Int! = 7)",
        ["DEFAULT_VALUE_CHANGED", "Argument Query.queueMetrics(days:)", "from 30 to 7"],
    ),
    "removed argument default": (
        "queueMetrics(days: Int! = 30)",
        "queueMetrics(days: Int!)",
        ["DEFAULT_VALUE_REMOVED", "Argument Query.queueMetrics(days:)", "30"],
    ),
    "changed enum argument default": (
        "orderBy: PendingOrder! = ENTERED_ASC",
        "orderBy: PendingOrder! = NAME_ASC",
        ["DEFAULT_VALUE_CHANGED", "Query.pendingUsers(orderBy:)", "ENTERED_ASC", "NAME_ASC"],
    ),
    "changed input field default": (
        "doNotTrack: Boolean! = false",
        "doNotTrack: Boolean! = true",
        ["DEFAULT_VALUE_CHANGED", "Input field RemoveUsersInput.doNotTrack", "from false to true"],
    ),
    "changed argument type": (
        "user(id: ID!): User",
        "user(id: Int!): User",
        ["ARG_CHANGED_KIND", "Query.user", "id"],
    ),
    "removed argument": (
        "agents(first: Int! = 50, after: String = null, search: String = null)",
        "agents(first: Int! = 50, after: String = null)",
        ["ARG_REMOVED", "Query.agents", "search"],
    ),
    "new required argument": (
        "queueMetrics(days: Int! = 30)",
        "queueMetrics(days: Int! = 30, until: Date!)",
        ["REQUIRED_ARG_ADDED", "until", "Query.queueMetrics"],
    ),
    "new required input field": (
        "input UpdateNotificationSettingsInput {\n  notifyOnPending: Boolean!\n}",
        "input UpdateNotificationSettingsInput {\n  notifyOnPending: Boolean!\n  digestSeconds: Int!\n}",
        ["REQUIRED_INPUT_FIELD_ADDED", "digestSeconds", "UpdateNotificationSettingsInput"],
    ),
}


@pytest.mark.parametrize(("old", "new", "expected"), BREAKS.values(), ids=BREAKS.keys())
def test_the_guard_catches(old: str, new: str, expected: list[str]) -> None:
    released = RELEASED.read_text()
    changes = api_changes(released, edited(released, old, new))
    assert any(all(word in c for word in expected) for c in changes), changes


def test_the_guard_catches_a_removed_type() -> None:
    released = RELEASED.read_text()
    gone = edited(released, "type ActionCount {\n  action: QueueAction!\n  count: Int!\n}\n\n", "")
    gone = edited(gone, "resolvedByAction: [ActionCount!]!", "resolvedByAction: [QueueAction!]!")
    changes = api_changes(released, gone)
    assert any("TYPE_REMOVED" in c and "ActionCount" in c for c in changes), changes


def test_the_failure_lists_every_change_in_words() -> None:
    released = RELEASED.read_text()
    broken = released
    for name in (
        "removed field",
        "changed argument default",
        "changed input field default",
        "removed enum value",
    ):
        old, new, _ = BREAKS[name]
        broken = edited(broken, old, new)
    changes = api_changes(released, broken)
    message = failure_message(changes)
    assert len(changes) == 4, changes
    # graphql-core's own wording differs between its releases; the words that matter do not.
    for words in (
        ("FIELD_REMOVED: ", "Account.licensesAvailable", "removed"),
        ("VALUE_REMOVED_FROM_ENUM: ", "MANUAL_REVIEW", "PendingReason", "removed"),
        ("DEFAULT_VALUE_CHANGED: Argument Query.queueMetrics(days:) changed its default from 30 to 7.",),
        (
            "DEFAULT_VALUE_CHANGED: Input field RemoveUsersInput.doNotTrack changed its default from false to true.",
        ),
    ):
        assert any(
            all(w in line for w in words) for line in message.splitlines() if line.startswith("  - ")
        ), (
            words,
            message,
        )
    assert "in 4 way(s)" in message


def test_additions_pass_the_guard() -> None:
    released = RELEASED.read_text()
    grown = edited(released, "  retentionDays: Int!\n", "  retentionDays: Int!\n  queueVersion: Int!\n")
    grown = edited(
        grown, "queueMetrics(days: Int! = 30)", "queueMetrics(days: Int! = 30, reason: PendingReason = null)"
    )
    grown = edited(grown, "  OVER_LIMIT\n  MANUAL_REVIEW\n}", "  OVER_LIMIT\n  MANUAL_REVIEW\n  RELEASED\n}")
    grown = edited(
        grown,
        "input RemoveUsersInput {\n",
        "input RemoveUsersInput {\n  reason: String = null\n",
    )
    grown += "\ntype SeatPlan {\n  licensesUsedAfter: Int!\n}\n"
    assert api_changes(released, grown) == []


def test_a_default_counts_by_what_a_client_that_leaves_the_value_out_gets() -> None:
    released = (
        "type Query {\n  a(x: Int): Int\n  b(x: Int!): Int\n  c(x: Int): Int\n}\ninput I {\n  f: Int\n}\n"
    )
    current = "type Query {\n  a(x: Int = 3): Int\n  b(x: Int! = 3): Int\n  c(x: Int = null): Int\n}\ninput I {\n  f: Int = 1\n}\n"
    # a: null when left out, now 3; b: was required, a default is additive; c: null either way.
    assert api_changes(released, current) == [
        "DEFAULT_VALUE_CHANGED: Argument Query.a(x:) changed its default from null to 3.",
        "DEFAULT_VALUE_CHANGED: Input field I.f changed its default from null to 1.",
    ]
    assert api_changes(current, released) == [
        "DEFAULT_VALUE_CHANGED: Argument Query.a(x:) changed its default from 3 to null.",
        "DEFAULT_VALUE_REMOVED: Argument Query.b(x:) had the default 3; "
        "it has none now, so a client that leaves it out gets an error.",
        "DEFAULT_VALUE_CHANGED: Input field I.f changed its default from 1 to null.",
    ]
