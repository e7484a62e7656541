"""How a selection's objects are completed on the executor's short path (server.graphql.execution).

A *shape* says how a value of one output type is completed (a leaf's coercion, a list's
items, an object's plan); a *plan* is one selection of an object type: per response name,
how the field is read and how its value is completed. A plan whose every entry takes the
short path completes its objects with one function generated for it (:func:`compiled`).
"""

from __future__ import annotations

import enum
import keyword
import math
from collections.abc import Callable
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Literal

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.type import GraphQLNonNull, is_leaf_type
from strawberry.schema.schema_converter import GraphQLCoreConverter

DEFINITION_BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN = _Unknown.UNKNOWN
"""What a :func:`known_answer` function returns when only the resolver can answer."""
Unknown = Literal[_Unknown.UNKNOWN]

# How a field's value is read off its parent on the short path: the attribute's getter, a
# known-answer function, ``__typename``'s constant; or None: only the resolver can.
Reader = Callable[[Any], Any] | None


class Slow(Exception):
    """The value is not the plain case: graphql-core's path completes the field."""


# Exact types whose values are never awaitable, nor exceptions: no check needed for a leaf.
PLAIN_VALUES: frozenset[type] = frozenset({str, int, float, bool, datetime, date})

# How a value is completed (the kind of the type under any non-null wrapper).
LEAF, LIST, OBJECT = 0, 1, 2


class Shape:
    """How a value of one output type is completed, for one field's nodes."""

    __slots__ = ("coerce", "fields", "item", "kind", "leaf", "non_null", "object_type", "plan")

    def __init__(self, kind: int, non_null: bool) -> None:
        self.kind = kind
        self.non_null = non_null
        self.coerce: Callable[[Any], Any] | None = None
        self.leaf: GraphQLLeafType | None = None
        self.item: Shape | None = None
        self.object_type: GraphQLObjectType | None = None
        self.fields: FieldDetailsList | None = None
        # The object's plan, once built (the object type's fields collected for ``fields``).
        self.plan: Plan | None = None


def shape_of(return_type: GraphQLOutputType, fields: FieldDetailsList) -> Shape | None:
    """How a value of ``return_type`` is completed, or ``None`` if only graphql-core's path can.

    Not on the short path: abstract types, objects with ``is_type_of`` (it takes the resolve
    info), a list under ``@stream`` or any directive but ``@skip``/``@include`` (applied when
    fields are collected).
    """
    non_null = isinstance(return_type, GraphQLNonNull)
    inner = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if is_leaf_type(inner):
        shape = Shape(LEAF, non_null)
        shape.coerce = inner.coerce_output_value
        shape.leaf = inner
        return shape
    if isinstance(inner, GraphQLList):
        item = shape_of(inner.of_type, fields)
        if item is None or not _only_skip_include(fields):
            return None
        shape = Shape(LIST, non_null)
        shape.item = item
        return shape
    if isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
        shape = Shape(OBJECT, non_null)
        shape.object_type, shape.fields = inner, fields
        return shape
    return None


def _only_skip_include(fields: FieldDetailsList) -> bool:
    return all(
        directive.name.value in ("skip", "include")
        for details in fields
        for directive in details.node.directives or ()
    )


class Plan:
    """How one selection of an object type is executed: an entry per response name, in order.

    Each entry is (response name, the field's nodes, how it is read, how its value is
    completed); ``None`` for either: graphql-core's ``execute_field``. ``fast`` tells whether
    every entry takes the short path (an object in a list is then completed whole).
    """

    __slots__ = ("compiles", "entries", "fast", "name", "plain", "run", "waiting")

    def __init__(self, name: str, entries: list[tuple[str, FieldDetailsList, Reader, Shape | None]]) -> None:
        self.name = name  # the object type's
        self.entries = entries
        self.fast = all(reader is not None and shape is not None for _, _, reader, shape in entries)
        # When fast: (response name, reader, a leaf's coercion or None, shape) per entry.
        self.plain: list[Entry] = [
            (name, reader, shape.coerce if shape.kind == LEAF else None, shape)
            for name, _, reader, shape in entries
            if reader is not None and shape is not None
        ]
        # When fast, once first used: the object's completion as one function (compiled).
        self.run: Callable[[Any, Complete], dict[str, Any]] | None = None
        # How many times ``run`` was generated, and whether an object below it was not yet
        # ready to be called directly when it was (see :func:`compiled`).
        self.compiles = 0
        self.waiting = False


# A fast plan's entry: (response name, reader, a leaf's coercion or None, shape).
Entry = tuple[str, Callable[[Any], Any], Callable[[Any], Any] | None, Shape]
# Executor._complete: a value completed as its shape says.
Complete = Callable[[Shape, Any], Any]


def entry(value: Any, coerce: Callable[[Any], Any] | None, shape: Shape, complete: Complete) -> Any:
    """One entry's value completed, as :meth:`Executor._object` did field by field: a plain
    leaf value coerced here, anything else by ``complete``; raises when not plain."""
    if coerce is not None and type(value) in PLAIN_VALUES:
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Slow
        return coerced
    if value is UNKNOWN:
        raise Slow
    return complete(shape, value)


# graphql-core's coercions that answer a value of this exact type with the value itself, when
# the condition (a Python expression of the value, ``{v}``; None: always) holds: a String,
# an ID, a Boolean, an Int in 32 bits, a finite Float. (Calling the Int and Float ones costs
# ~0.5 us: two calls and their isinstance checks.)
_UNCHANGED: dict[Callable[[Any], Any], tuple[type, str | None]] = {
    GraphQLString.coerce_output_value: (str, None),
    GraphQLID.coerce_output_value: (str, None),
    GraphQLBoolean.coerce_output_value: (bool, None),
    GraphQLInt.coerce_output_value: (int, f"{GRAPHQL_MIN_INT} <= {{v}} <= {GRAPHQL_MAX_INT}"),
    GraphQLFloat.coerce_output_value: (float, "isfinite({v})"),
}


# Leaf coercions written out in the generated code for values of one exact type meeting a
# condition: (the type, the condition and the expression of ``{v}``, the names they use).
# Registered by the scalar that owns the coercion (:func:`inline`); anything else calls it.
_INLINE: dict[Callable[[Any], Any], tuple[type, str, str, dict[str, Any]]] = {}


def inline(coerce: Callable[[Any], Any], of: type, condition: str, expression: str, **names: Any) -> None:
    """Have generated completions compute ``coerce(v)`` as ``expression`` when ``v`` is of
    exactly the type ``of`` and ``condition`` holds (both Python expressions of ``{v}``; the
    names they use given as keywords). The caller guarantees the expression answers what
    ``coerce`` answers there (a test of its own compares them)."""
    _INLINE[coerce] = (of, condition, expression, names)


def _attribute(reader: Callable[[Any], Any]) -> str | None:
    """The attribute an ``attrgetter`` of one plain name reads, else None."""
    if type(reader) is not attrgetter:
        return None
    args = reader.__reduce__()[1]
    if len(args) != 1 or not isinstance(args[0], str):
        return None
    name: str = args[0]
    return name if name.isidentifier() and not keyword.iskeyword(name) else None


def _enum_names(leaf: GraphQLLeafType | None) -> tuple[type, dict[Any, str]] | None:
    """A Strawberry enum's Python class and each member's coerced name (what its coercion
    answers for the member, computed once), else None."""
    wrapped = getattr(leaf, "wrapped_cls", None)
    if (
        not isinstance(leaf, GraphQLEnumType)
        or not isinstance(wrapped, type)
        or not issubclass(wrapped, enum.Enum)
    ):
        return None
    names: dict[Any, str] = {}
    for member in wrapped:
        try:
            name = leaf.coerce_output_value(member)
        except Exception:  # not for this shortcut: the general path raises it
            return None
        if not isinstance(name, str):
            return None
        names[member] = name
    return wrapped, names


# Classes whose values a Strawberry type's plans complete as the type's own: by the type's
# class (see completes_as).
_COMPLETED_AS: dict[type, tuple[type, ...]] = {}


def completes_as(strawberry_type: type, record: type) -> None:
    """Have the generated completions call ``strawberry_type``'s plan functions directly for
    values of ``record`` too (a domain record the resolvers hand over as it is, without a
    Strawberry object per row). ``record`` must have an attribute of the same name and value
    for each of the type's fields without a resolver, and its resolvers must read only those
    (``tests/graphql/test_completion.py`` checks the names); graphql-core's path completes
    such a value the same way, reading the same attributes."""
    _COMPLETED_AS[strawberry_type] = (*_COMPLETED_AS.get(strawberry_type, ()), record)


def completed_as() -> dict[type, tuple[type, ...]]:
    """Every registration of :func:`completes_as`: the records by Strawberry type."""
    return dict(_COMPLETED_AS)


def direct_call(shape: Shape) -> tuple[tuple[type, ...], Callable[[Any, Complete], dict[str, Any]]] | None:
    """For an object shape whose plan is fast and generated: the Python classes its values
    are (the Strawberry type's, then any it :func:`completes_as`) and the plan's function, to
    call directly; else None."""
    plan = shape.plan
    if shape.kind != OBJECT or plan is None or not plan.fast or plan.run is None or settling(plan):
        return None
    definition = (shape.object_type.extensions or {}).get(DEFINITION_BACKREF) if shape.object_type else None
    origin = getattr(definition, "origin", None)
    if not isinstance(origin, type):
        return None
    return (origin, *_COMPLETED_AS.get(origin, ())), plan.run


# How many times a plan's function may be generated: once, then again while objects below
# it get theirs (one more time per level of nesting below it that was not ready).
MAX_COMPILES = 4


def settling(plan: Plan) -> bool:
    """Whether the plan's function is to be generated again (:func:`compiled`)."""
    return plan.waiting and plan.compiles < MAX_COMPILES


def _unready(shape: Shape) -> bool:
    """An object (or list of objects) whose plan is not built, or whose function is not
    generated yet or is still settling."""
    inner = shape.item if shape.kind == LIST else shape
    if inner is None or inner.kind != OBJECT:
        return False
    plan = inner.plan
    return plan is None or (plan.fast and (plan.run is None or settling(plan)))


def compiled(plan: Plan) -> Callable[[Any, Complete], dict[str, Any]]:
    """The plan's object completion as one generated function: what :meth:`Executor._object`
    did entry by entry, without the loop, and with the commonest cases inlined: an
    attribute read directly, a ``str`` for ``String``/``ID``, a ``bool`` for ``Boolean``, an
    ``int`` within 32 bits for ``Int`` and a finite ``float`` for ``Float`` taken as they are
    (graphql-core answers them unchanged), a null for a nullable leaf kept, a coercion
    registered by :func:`inline` written out, an enum member's name looked up, and an
    object (or a list's objects) of its Strawberry type completed by calling its
    own plan's generated function (:func:`direct_call`) instead of ``complete``. Every other
    value goes through :func:`entry` or ``complete``, as before. The source names no value
    from the document (response names, like readers and shapes, are the function's globals)
    and no attribute that is not a plain identifier.

    An object's plan is built, and its function generated, when its first value is
    completed: below a function generated before that (or before the object's own function
    settled), the object goes through ``complete`` and the plan is ``waiting``;
    :class:`Executor` generates it again on its next use, up to :data:`MAX_COMPILES` times
    in all (a 50-row page settles within its first rows)."""
    env: dict[str, Any] = {
        "E": entry,
        "PLAIN": PLAIN_VALUES,
        "Undefined": Undefined,
        "Slow": Slow,
        "UNKNOWN": UNKNOWN,
        "list": list,
        "type": type,
        "isfinite": math.isfinite,
    }
    waiting = False
    lines = ["def run(source, complete):"]
    for i, (name, reader, coerce, shape) in enumerate(plan.plain):
        env[f"N{i}"], env[f"R{i}"], env[f"C{i}"], env[f"S{i}"] = name, reader, coerce, shape
        v = f"v{i}"
        attribute = _attribute(reader)
        lines.append(f"    {v} = source.{attribute}" if attribute is not None else f"    {v} = R{i}(source)")
        if coerce is None:  # a list or an object
            waiting = waiting or _unready(shape)
            lines.append(f"    if {v} is UNKNOWN: raise Slow")
            direct = (
                direct_call(shape.item)
                if shape.kind == LIST and shape.item is not None
                else direct_call(shape)
            )
            if direct is None:
                lines.append(f"    {v} = complete(S{i}, {v})")
                continue
            classes, env[f"P{i}"] = direct
            for j, cls in enumerate(classes):
                env[f"K{i}_{j}"] = cls

            def of_class(x: str, i: int = i, n: int = len(classes)) -> str:
                return " or ".join(f"type({x}) is K{i}_{j}" for j in range(n))

            if shape.kind == LIST:
                # Each item of its type by its function; any other item as complete would.
                env[f"I{i}"] = shape.item
                lines.append(f"    if type({v}) is list:")
                lines.append(
                    f"        {v} = [P{i}(x, complete) if {of_class('x')} else complete(I{i}, x) for x in {v}]"
                )
                lines.append(f"    else: {v} = complete(S{i}, {v})")
            else:
                lines.append(f"    {v} = P{i}({v}, complete) if {of_class(v)} else complete(S{i}, {v})")
            continue
        leaf: list[str] = []
        unchanged = _UNCHANGED.get(coerce)
        members = _enum_names(shape.leaf)
        if unchanged is not None:
            env[f"T{i}"], condition = unchanged
            outside = "" if condition is None else f" or not ({condition.format(v=v)})"
            leaf.append(f"    if type({v}) is not T{i}{outside}: {v} = E({v}, C{i}, S{i}, complete)")
        elif members is not None:
            env[f"W{i}"], env[f"M{i}"] = members
            leaf.append(f"    {v} = M{i}[{v}] if type({v}) is W{i} else E({v}, C{i}, S{i}, complete)")
        else:
            written = _INLINE.get(coerce)
            if written is not None:
                of, condition, expression, names = written
                env.update(names)
                env[f"T{i}"] = of
                leaf.append(
                    f"    if type({v}) is T{i} and ({condition.format(v=v)}): {v} = {expression.format(v=v)}"
                )
                leaf.append(f"    elif type({v}) in PLAIN:")
            else:
                leaf.append(f"    if type({v}) in PLAIN:")
            leaf.append(f"        {v} = C{i}({v})")
            leaf.append(f"        if {v} is None or {v} is Undefined: raise Slow")
            leaf.append(f"    else: {v} = E({v}, C{i}, S{i}, complete)")
        if shape.non_null:
            lines.extend(leaf)
        else:  # a null is completed as null, as graphql-core completes it
            lines.append(f"    if {v} is not None:")
            lines.extend("    " + line for line in leaf)
    lines.append("    return {" + ", ".join(f"N{i}: v{i}" for i in range(len(plan.plain))) + "}")
    exec(compile("\n".join(lines), f"<completion of {plan.name}>", "exec"), env)  # see above
    run: Callable[[Any, Complete], dict[str, Any]] = env["run"]
    plan.compiles += 1
    plan.waiting = waiting
    return run
