"""A connection's page of users, with what its document asks of them loaded once for the page.

A list field's resolver (server.graphql.queries) reads a page of user rows; here the rows'
agents, pending info, activity and latest activity are read by one batch load each (the
loaders' own batch functions, so the statements are those of per-row loads). Agents and
pending info are given to the users' views; activity and latest activity stay primed in the
request's loaders, whose resolvers answer from them. Either way, those fields answer without
an await or a task per row.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence

from cachetools import LRUCache
from graphql import FieldNode
from strawberry.types.nodes import SelectedField, Selection

from server.domain import models
from server.domain.reads import activity, cursors, loads, rows
from server.domain.records import record

from ..context import Ctx, load_many_now
from .users import UNLOADED, UserConnection, UserList, UserType, list_count


def named(selections: Iterable[Selection], name: str | None = None) -> Iterator[SelectedField]:
    """The fields among ``selections`` (named ``name``, if given), fragments expanded."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            if name is None or selection.name == name:
                yield selection
        else:
            yield from named(selection.selections, name)


# asked_of by the ids of the connection field's nodes, with weak references to them (to
# rule out a reused id without keeping a document alive): its answer depends on the document
# alone, and documents come from the parse cache (server.graphql.extensions), so a client's
# repeated document is answered from here.
_ASKED: LRUCache[tuple[int, ...], tuple[list[weakref.ref[FieldNode]], Asked]] = LRUCache(maxsize=1024)


@record
class Asked:
    """What a document asks of a connection: its nodes' fields by name, and its total count."""

    nodes: frozenset[str]
    total: bool


def asked_of(info: Ctx) -> Asked:
    """What the document asks of ``info``'s connection: its nodes' fields (``edges { node {
    ... } }``), ``totalCount``. Under ``@skip``/``@include`` counts as asked: loading it for
    nothing costs a statement, never a wrong answer; the answer is the document's."""
    nodes = info._raw_info.field_nodes
    key = tuple(map(id, nodes))
    found = _ASKED.get(key)
    if found is not None and all(ref() is node for ref, node in zip(found[0], nodes, strict=True)):
        return found[1]
    asked = Asked(
        nodes=frozenset(
            field.name
            for connection in info.selected_fields
            for edges in named(connection.selections, "edges")
            for node in named(edges.selections, "node")
            for field in named(node.selections)
        ),
        total=any(f.name == "totalCount" for c in info.selected_fields for f in named(c.selections)),
    )
    _ASKED[key] = ([weakref.ref(n) for n in nodes], asked)
    return asked


def asked_days(info: Ctx) -> list[int]:
    """The ``days`` the document asks its nodes' ``activity`` for (variables applied), each
    once; a value ``activity`` refuses is left to its resolver to refuse."""
    found: set[int] = set()
    for connection in info.selected_fields:
        for edges in named(connection.selections, "edges"):
            for node in named(edges.selections, "node"):
                for field in named(node.selections, "activity"):
                    # A literal comes as its text ("30"), a variable as its value.
                    value = field.arguments.get("days", activity.DEFAULT_DAYS)
                    try:
                        days = int(value)
                    except (TypeError, ValueError):
                        continue
                    if 1 <= days <= activity.MAX_DAYS:
                        found.add(days)
    return sorted(found)


async def user_connection(
    info: Ctx,
    page: cursors.Page[rows.UserRow],
    filt: UserList,
) -> UserConnection:
    """A page of users with the agents, pending info, activity and latest activity its document
    asks for, each loaded once for the page (the loaders' batch loads: the statements are those
    of per-row loads), and the list's count if asked and the page is not the whole list (then
    ``totalCount`` is answered like the rest of the page, without a resolver)."""
    asked = asked_of(info)
    ctx = info.context
    count = page.count
    if count is None and asked.total:
        count = await list_count(ctx, filt)
    users = page.items
    agents: Sequence[Sequence[rows.AgentFields]] | None = None
    retained: dict[int, loads.Retained] | None = None
    if "agents" in asked.nodes:
        loaded = await load_many_now(ctx.loaders.agents, [u.id for u in users])
        agents = loaded
    if "pending" in asked.nodes:
        ids = [u.id for u in users if u.status is models.UserStatus.PENDING]
        retained = dict(zip(ids, await load_many_now(ctx.loaders.retained, ids), strict=True))
    if "activity" in asked.nodes and (days := asked_days(info)):
        await load_many_now(ctx.loaders.activity, [(u.id, d) for d in days for u in users])
    if "lastActivityAt" in asked.nodes:
        await load_many_now(ctx.loaders.last_activity, [u.id for u in users])
    # Read once: an ORM attribute read costs ~0.4 us, twice per row otherwise.
    retention_days, queue_target_hours = ctx.account.retention_days, ctx.account.queue_target_hours
    nothing = loads.Retained()
    nodes = [
        UserType.resolved_of(
            user,
            UNLOADED if agents is None else agents[i],
            UNLOADED
            if retained is None
            else loads.pending_info(user, retained.get(user.id, nothing), retention_days, queue_target_hours),
        )
        for i, user in enumerate(users)
    ]
    return UserConnection.of(page, filt, nodes, count)
