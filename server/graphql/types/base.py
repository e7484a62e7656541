"""What every type module shares: the contract's enums, ids, ``PageInfo`` and ``DateTime``."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import strawberry
from strawberry.schema.types.base_scalars import DateTimeDefinition

from server.domain import models
from server.domain.errors import ErrorCode as DomainErrorCode
from server.domain.reads import cursors, lists

from ..completion import inline


def _isoformat(value: datetime) -> str:
    """``DateTime``'s serialization: ``value.isoformat()``, as Strawberry's, written by orjson
    for a UTC time (every time the server holds) in 0.35 us rather than 0.84 (a 50-row queue
    page serializes ~350). Equal output: ``tests/graphql/test_scalars.py``."""
    if type(value) is datetime and value.tzinfo is UTC:
        return orjson.dumps(value)[1:-1].decode()
    return value.isoformat()


# Strawberry's DateTime (name, description, parsing) with that serialization (the schema's
# scalar_overrides).
DATETIME = replace(DateTimeDefinition, serialize=_isoformat)

# Written out in generated completions for a UTC datetime, without the call (~350 a page).
inline(_isoformat, datetime, "{v}.tzinfo is UTC", "dumps({v})[1:-1].decode()", UTC=UTC, dumps=orjson.dumps)

Role = strawberry.enum(models.Role, name="Role")
UserStatus = strawberry.enum(models.UserStatus, name="UserStatus")
PendingReason = strawberry.enum(models.PendingReason, name="PendingReason")
PendingOrder = strawberry.enum(lists.PendingOrder, name="PendingOrder")
QueueAction = strawberry.enum(models.QueueAction, name="QueueAction")
ErrorCode = strawberry.enum(DomainErrorCode, name="ErrorCode")
SuggestionKind = strawberry.enum(models.SuggestionKind, name="SuggestionKind")


def _describe(enum_type: Any, **descriptions: str) -> None:
    """Give enum values the contract's descriptions (the domain's enums carry none)."""
    definition = enum_type.__strawberry_definition__
    definition.values = [
        replace(v, description=descriptions.get(v.name, v.description)) for v in definition.values
    ]


_describe(
    QueueAction,
    RELEASED="A licensed user moved to the queue by an admin, freeing its license.",
    UNDONE="An earlier action was reversed by undoAction.",
)
_describe(
    ErrorCode,
    PLAN_CHANGED="The queue changed since the preview whose queueVersion was passed as expectedQueueVersion.",
    NOT_UNDOABLE="The action can no longer be undone (too old, already undone, or the state moved on).",
)
AutoApproveMode = strawberry.enum(models.AutoApproveMode, name="AutoApproveMode")
_describe(
    AutoApproveMode,
    OFF="Admins approve every pending user (the default).",
    OLDEST_FIRST=(
        "Whenever licenses are free, OVER_LIMIT and RELEASED users whose agents' domain is in"
        " autoApproveDomains (any domain when the list is empty) are approved, oldest entry first,"
        " in the same transaction that freed the licenses. MANUAL_REVIEW users never are."
    ),
)
_describe(
    PendingReason,
    OVER_LIMIT="The account had no free license when the user appeared, or its limit was lowered.",
    MANUAL_REVIEW="Manual review mode was on when the user appeared.",
    RELEASED="An admin released the user's license (releaseLicenses or swapLicense).",
)
_describe(
    SuggestionKind,
    ASSIGN="Give the pending user's agents to an existing user (assignPendingUser).",
    MERGE="Fold the pending user's agent into an existing agent (mergePendingUser).",
)


T = TypeVar("T")


def builder(cls: type[T]) -> Callable[..., T]:
    """A constructor for the Strawberry type ``cls`` taking its ``__init__``'s keywords, with
    its defaults, for the types a page makes per row: calling the class costs ~430 ns for
    eight fields (``type.__call__`` and the dataclass ``__init__``), this ~200 ns. It sets the
    same attributes and nothing else, so a type with ``__post_init__`` or a default factory
    is refused (``tests/graphql/test_builders.py`` compares both constructions)."""
    if hasattr(cls, "__post_init__") or any(
        f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]  # a Strawberry type is a dataclass
    ):
        raise TypeError(f"{cls.__name__} has __post_init__ or a default factory: construct it by calling it")
    env: dict[str, Any] = {"new": object.__new__, "cls": cls}
    params, body = [], []
    for name, param in list(inspect.signature(cls.__init__).parameters.items())[1:]:
        if param.kind is not param.KEYWORD_ONLY and param.kind is not param.POSITIONAL_OR_KEYWORD:
            raise TypeError(f"{cls.__name__}.__init__ takes {param}: construct it by calling it")
        if param.default is param.empty:
            params.append(name)
        else:
            env[f"D_{name}"] = param.default
            params.append(f"{name}=D_{name}")
        body.append(f"    o.{name} = {name}")
    source = "\n".join([f"def make(*, {', '.join(params)}):", "    o = new(cls)", *body, "    return o"])
    exec(compile(source, f"<builder of {cls.__name__}>", "exec"), env)  # names are __init__'s
    make: Callable[..., T] = env["make"]
    return make


def gid(value: int | None) -> strawberry.ID:
    assert value is not None
    # strawberry.ID is a NewType of str: calling it is a Python call (~80 ns), twice a row.
    return str(value)  # type: ignore[return-value]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None

    @classmethod
    def of(cls, page: cursors.Page[Any]) -> PageInfo:
        return cls(has_next_page=page.has_next, end_cursor=page.end_cursor)
