"""graphql-core's executor with a short path for what needs no resolver info.

graphql-core executes every field alike: it builds the field's path and resolve info
(Strawberry's, of 16 members), calls the resolver (Strawberry's default one is ``getattr``),
checks the result for an awaitable, then completes it through ``complete_value``'s type
dispatch, list by list and object by object. A 50-row queue page is ~1,100 fields, ~900 of
them leaves read off an attribute (``displayName``, ``firstSeenAt``, ...), most of the rest
objects and lists read the same way (``edges``, ``node``) or answered from what the page
already loaded (``User.agents``, ``User.pending``).

:class:`Executor` completes such fields itself, when no schema extension resolves fields
(Strawberry's middleware manager is then empty) and nothing is deferred. For each selection
(an object type and its collected fields) it builds a plan once per operation (shared by
every execution of a document without directives; with directives, whose variables can change
what is collected, once per execution): how each field is read — an attribute (a basic Strawberry field: no resolver, no field extension, the
default ``getattr``), ``__typename``, or a resolver marked :func:`known_answer` whose answer
is known without its info — and how its value is completed (a leaf type's coercion, a list's
items, an object's plan). A field whose plan says neither goes through graphql-core's
``execute_field``, as does a field whose value is not the plain case: a null for a non-null
field, an ``Exception`` value, an awaitable, a value its leaf type refuses, an attribute that
raises, a list that is not a ``list`` or ``tuple``, an answer the marked resolver does not know.
The short path has no side effect (it reads attributes and calls known-answer functions), so
graphql-core's path then completes that field from the start and gives the same value or the
same error, at the same path; within it, each object's fields take the short path again.
"""

from __future__ import annotations

import enum
import keyword
import weakref
from collections.abc import Callable
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Literal, TypeVar

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLLeafType,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    OperationDefinitionNode,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from graphql.type import GraphQLNonNull, TypeNameMetaFieldDef, is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

F = TypeVar("F", bound=Callable[..., Any])


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN = _Unknown.UNKNOWN
"""What a :func:`known_answer` function returns when only the resolver can answer."""
Unknown = Literal[_Unknown.UNKNOWN]

_KNOWN_ANSWER = "_plm_known_answer"


def known_answer(known: Callable[[Any], Any]) -> Callable[[F], F]:
    """Mark a synchronous resolver whose answer ``known(source)`` gives unless it is ``UNKNOWN``.

    The resolver must answer ``known(source)`` itself whenever that is not ``UNKNOWN`` (it
    calls ``known`` first), take no argument but ``info``, and have no field extension:
    :class:`Executor` then completes the field with that answer without calling the resolver.
    ``known`` must have no side effect.
    """

    def mark(resolver: F) -> F:
        setattr(resolver, _KNOWN_ANSWER, known)
        return resolver

    return mark


# How a field's value is read off its parent on the short path: the attribute's getter, a
# known-answer function, ``__typename``'s constant; or None: only the resolver can.
Reader = Callable[[Any], Any] | None

# By the field's id (GraphQLField is unhashable); the field is kept to rule out a reused id.
_READERS: dict[int, tuple[GraphQLField, Reader, ReadBy]] = {}

ReadBy = Literal["attribute", "known answer"] | None


def read_by(field: GraphQLField) -> ReadBy:
    """How the short path reads ``field``: off an attribute, by a known-answer function, or not."""
    return _read(field)[1]


def _reader(field: GraphQLField) -> Reader:
    return _read(field)[0]


def _read(field: GraphQLField) -> tuple[Reader, ReadBy]:
    found = _READERS.get(id(field))
    if found is not None and found[0] is field:
        return found[1], found[2]
    reader: Reader = None
    by: ReadBy = None
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if isinstance(definition, StrawberryField) and not definition.extensions:
        resolver = definition.base_resolver
        if resolver is None:
            if definition.default_resolver is getattr and getattr(field.resolve, "_is_default", False):
                reader, by = attrgetter(definition.python_name), "attribute"
        else:
            known = getattr(resolver.wrapped_func, _KNOWN_ANSWER, None)
            if known is not None and not field.args and not resolver.is_async:
                reader, by = known, "known answer"
    _READERS[id(field)] = (field, reader, by)
    return reader, by


class _Slow(Exception):
    """The value is not the plain case: graphql-core's path completes the field."""


# Exact types whose values are never awaitable, nor exceptions: no check needed for a leaf.
_PLAIN_VALUES: frozenset[type] = frozenset({str, int, float, bool, datetime, date})

# How a value is completed (the kind of the type under any non-null wrapper).
_LEAF, _LIST, _OBJECT = 0, 1, 2


class _Shape:
    """How a value of one output type is completed, for one field's nodes."""

    __slots__ = ("coerce", "fields", "item", "kind", "leaf", "non_null", "object_type", "plan")

    def __init__(self, kind: int, non_null: bool) -> None:
        self.kind = kind
        self.non_null = non_null
        self.coerce: Callable[[Any], Any] | None = None
        self.leaf: GraphQLLeafType | None = None
        self.item: _Shape | None = None
        self.object_type: GraphQLObjectType | None = None
        self.fields: FieldDetailsList | None = None
        # The object's plan, once built (the object type's fields collected for ``fields``).
        self.plan: _Plan | None = None


def _shape(return_type: GraphQLOutputType, fields: FieldDetailsList) -> _Shape | None:
    """How a value of ``return_type`` is completed, or ``None`` if only graphql-core's path can.

    Not on the short path: abstract types, objects with ``is_type_of`` (it takes the resolve
    info), a list under ``@stream`` or any directive but ``@skip``/``@include`` (applied when
    fields are collected).
    """
    non_null = isinstance(return_type, GraphQLNonNull)
    inner = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if is_leaf_type(inner):
        shape = _Shape(_LEAF, non_null)
        shape.coerce = inner.coerce_output_value
        shape.leaf = inner
        return shape
    if isinstance(inner, GraphQLList):
        item = _shape(inner.of_type, fields)
        if item is None or not _only_skip_include(fields):
            return None
        shape = _Shape(_LIST, non_null)
        shape.item = item
        return shape
    if isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
        shape = _Shape(_OBJECT, non_null)
        shape.object_type, shape.fields = inner, fields
        return shape
    return None


def _only_skip_include(fields: FieldDetailsList) -> bool:
    return all(
        directive.name.value in ("skip", "include")
        for details in fields
        for directive in details.node.directives or ()
    )


class _Plan:
    """How one selection of an object type is executed: an entry per response name, in order.

    Each entry is (response name, the field's nodes, how it is read, how its value is
    completed); ``None`` for either: graphql-core's ``execute_field``. ``fast`` tells whether
    every entry takes the short path (an object in a list is then completed whole).
    """

    __slots__ = ("entries", "fast", "name", "plain", "run")

    def __init__(self, name: str, entries: list[tuple[str, FieldDetailsList, Reader, _Shape | None]]) -> None:
        self.name = name  # the object type's
        self.entries = entries
        self.fast = all(reader is not None and shape is not None for _, _, reader, shape in entries)
        # When fast: (response name, reader, a leaf's coercion or None, shape) per entry.
        self.plain: list[_Entry] = [
            (name, reader, shape.coerce if shape.kind == _LEAF else None, shape)
            for name, _, reader, shape in entries
            if reader is not None and shape is not None
        ]
        # When fast, once first used: the object's completion as one function (_compiled).
        self.run: Callable[[Any, _Complete], dict[str, Any]] | None = None


# A fast plan's entry: (response name, reader, a leaf's coercion or None, shape).
_Entry = tuple[str, Callable[[Any], Any], Callable[[Any], Any] | None, _Shape]
# Executor._complete: a value completed as its shape says.
_Complete = Callable[[_Shape, Any], Any]


def _entry(value: Any, coerce: Callable[[Any], Any] | None, shape: _Shape, complete: _Complete) -> Any:
    """One entry's value completed, as :meth:`Executor._object` did field by field: a plain
    leaf value coerced here, anything else by ``complete``; raises when not plain."""
    if coerce is not None and type(value) in _PLAIN_VALUES:
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _Slow
        return coerced
    if value is UNKNOWN:
        raise _Slow
    return complete(shape, value)


# graphql-core's coercions that answer a value of this exact type with the value itself.
_UNCHANGED: dict[Callable[[Any], Any], type] = {
    GraphQLString.coerce_output_value: str,
    GraphQLID.coerce_output_value: str,
    GraphQLBoolean.coerce_output_value: bool,
}


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


def _compiled(plan: _Plan) -> Callable[[Any, _Complete], dict[str, Any]]:
    """The plan's object completion as one generated function: what :meth:`Executor._object`
    did entry by entry, without the loop, and with the commonest leaves inlined: an
    attribute read directly, a ``str`` for ``String``/``ID`` and a ``bool`` for ``Boolean``
    taken as they are (graphql-core answers them unchanged), an enum member's name looked
    up. Every other value goes through :func:`_entry`, as before. The source names no value
    from the document (response names, like readers and shapes, are the function's globals)
    and no attribute that is not a plain identifier."""
    env: dict[str, Any] = {
        "E": _entry,
        "PLAIN": _PLAIN_VALUES,
        "Undefined": Undefined,
        "Slow": _Slow,
        "UNKNOWN": UNKNOWN,
    }
    lines = ["def run(source, complete):"]
    for i, (name, reader, coerce, shape) in enumerate(plan.plain):
        env[f"N{i}"], env[f"R{i}"], env[f"C{i}"], env[f"S{i}"] = name, reader, coerce, shape
        v = f"v{i}"
        attribute = _attribute(reader)
        lines.append(f"    {v} = source.{attribute}" if attribute is not None else f"    {v} = R{i}(source)")
        if coerce is None:  # a list or an object
            lines.append(f"    if {v} is UNKNOWN: raise Slow")
            lines.append(f"    {v} = complete(S{i}, {v})")
            continue
        unchanged = _UNCHANGED.get(coerce)
        members = _enum_names(shape.leaf)
        if unchanged is not None:
            env[f"T{i}"] = unchanged
            lines.append(f"    if type({v}) is not T{i}: {v} = E({v}, C{i}, S{i}, complete)")
        elif members is not None:
            env[f"W{i}"], env[f"M{i}"] = members
            lines.append(f"    {v} = M{i}[{v}] if type({v}) is W{i} else E({v}, C{i}, S{i}, complete)")
        else:
            lines.append(f"    if type({v}) in PLAIN:")
            lines.append(f"        {v} = C{i}({v})")
            lines.append(f"        if {v} is None or {v} is Undefined: raise Slow")
            lines.append(f"    else: {v} = E({v}, C{i}, S{i}, complete)")
    lines.append("    return {" + ", ".join(f"N{i}: v{i}" for i in range(len(plan.plain))) + "}")
    exec(compile("\n".join(lines), f"<completion of {plan.name}>", "exec"), env)  # see above
    run: Callable[[Any, _Complete], dict[str, Any]] = env["run"]
    return run


def _constant(value: str) -> Reader:
    """``__typename``'s reader: the parent type's name."""
    return lambda _source: value


# A plan's key: its parent type's name and, per response name, the ids of the field nodes
# collected under it (the plan keeps the nodes alive, so no id is reused while it exists).
PlanKey = tuple[str, tuple[tuple[str, tuple[int, ...]], ...]]

# Plans shared by every execution of one operation, when no directive in its document makes
# what is collected depend on the variables (@skip/@include(if: $v)) or defers it: by the
# operation node's id, with a weak reference to it. Documents come from the parse cache
# (server.graphql.extensions), so a client's repeated document is the same node; the entry
# goes when the node does, so plans never keep a document (its nodes and tokens) alive past
# that cache's byte bound.
_SHARED_PLANS: dict[int, tuple[weakref.ref[OperationDefinitionNode], dict[PlanKey, _Plan]]] = {}


def _share(operation: OperationDefinitionNode, plans: dict[PlanKey, _Plan]) -> None:
    key = id(operation)

    def forget(ref: weakref.ref[OperationDefinitionNode]) -> None:
        found = _SHARED_PLANS.get(key)
        if found is not None and found[0] is ref:
            del _SHARED_PLANS[key]

    _SHARED_PLANS[key] = (weakref.ref(operation, forget), plans)


def _without_directives(operation: OperationDefinitionNode, fragments: dict[str, FragmentDetails]) -> bool:
    """Whether no directive appears in the operation or its document's fragments (and no
    fragment takes variables of its own)."""

    def clean(node: Any) -> bool:
        if getattr(node, "directives", None):
            return False
        selection_set = getattr(node, "selection_set", None)
        return selection_set is None or all(clean(s) for s in selection_set.selections)

    return clean(operation) and all(
        f.variable_signatures is None and clean(f.definition) for f in fragments.values()
    )


def _plan_key(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> PlanKey:
    return (
        parent_type.name,
        tuple((name, tuple(id(d.node) for d in fields)) for name, fields in grouped_field_set.items()),
    )


class Executor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans = self._plans_of_operation()

    def _plans_of_operation(self) -> dict[PlanKey, _Plan]:
        """The operation's shared plans, or this execution's own when its directives (or their
        variables) decide what is collected. Objects' plans hang off their shapes, so a
        shared plan is built once for every later execution of the operation."""
        operation = self.operation
        found = _SHARED_PLANS.get(id(operation))
        if found is not None and found[0]() is operation:
            return found[1]
        plans: dict[PlanKey, _Plan] = {}
        if _without_directives(operation, self.fragments):
            _share(operation, plans)
        return plans

    def _fast(self) -> bool:
        middleware = self.middleware_manager
        return middleware is None or not middleware.middlewares

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet) -> _Plan:
        key = _plan_key(parent_type, grouped_field_set)
        found = self._plans.get(key)
        if found is not None:
            return found
        entries: list[tuple[str, FieldDetailsList, Reader, _Shape | None]] = []
        for response_name, fields in grouped_field_set.items():
            field = self.schema.get_field(parent_type, fields[0].node.name.value)
            reader: Reader = None
            shape: _Shape | None = None
            if field is TypeNameMetaFieldDef:
                reader = _constant(parent_type.name)
                shape = _shape(field.type, fields)
            elif field is not None:
                reader = _reader(field)
                if reader is not None:
                    shape = _shape(field.type, fields)
            entries.append((response_name, fields, reader, shape))
        plan = _Plan(parent_type.name, entries)
        self._plans[key] = plan
        return plan

    def _object_plan(self, shape: _Shape) -> _Plan:
        plan = shape.plan
        if plan is None:
            assert shape.object_type is not None and shape.fields is not None
            grouped_field_set, defer_usages, _ = self.collect_subfields(shape.object_type, shape.fields)
            if defer_usages:
                raise _Slow
            plan = shape.plan = self._plan(shape.object_type, grouped_field_set)
        return plan

    def _complete(self, shape: _Shape, value: Any) -> Any:
        """``value`` completed as ``shape`` says, as graphql-core would; raises when not plain."""
        if value is None or value is Undefined:
            if shape.non_null:
                raise _Slow
            return None
        kind = shape.kind
        if kind == _LEAF:
            if type(value) not in _PLAIN_VALUES and (
                isinstance(value, Exception) or self.is_awaitable(value)
            ):
                raise _Slow
            coerced = shape.coerce(value)  # type: ignore[misc]  # set for a leaf
            if coerced is None or coerced is Undefined:
                raise _Slow
            return coerced
        if isinstance(value, Exception) or self.is_awaitable(value):
            raise _Slow
        if kind == _LIST:
            if type(value) is not list and type(value) is not tuple:
                raise _Slow
            item = shape.item
            assert item is not None
            if item.kind == _OBJECT:
                return self._objects(item, value)
            complete = self._complete
            return [complete(item, v) for v in value]
        plan = self._object_plan(shape)
        if not plan.fast:
            raise _Slow
        return self._object(plan, value)

    def _objects(self, item: _Shape, values: list[Any] | tuple[Any, ...]) -> list[Any]:
        """A list of objects: _complete's object case for each item, inlined."""
        plan = self._object_plan(item)
        if not plan.fast:
            raise _Slow
        is_awaitable = self.is_awaitable
        complete_object = self._object
        completed: list[Any] = []
        for value in values:
            if value is None or value is Undefined:
                if item.non_null:
                    raise _Slow
                completed.append(None)
            elif isinstance(value, Exception) or is_awaitable(value):
                raise _Slow
            else:
                completed.append(complete_object(plan, value))
        return completed

    def _object(self, plan: _Plan, source: Any) -> dict[str, Any]:
        run = plan.run
        if run is None:
            run = plan.run = _compiled(plan)
        return run(source, self._complete)

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        if position_context is not None or not self._fast():
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        plan = self._plan(parent_type, grouped_field_set)
        if plan.fast:
            try:
                return self._object(plan, source_value)
            except Exception:  # not plain: field by field below
                pass
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        complete = self._complete
        try:
            for response_name, fields, reader, shape in plan.entries:
                if reader is not None and shape is not None:
                    try:
                        value = reader(source_value)
                        if value is UNKNOWN:
                            raise _Slow
                        results[response_name] = complete(shape, value)
                        continue
                    except Exception:  # not plain: graphql-core's path below
                        pass
                result = self.execute_field(
                    parent_type, source_value, fields, Path(path, response_name, parent_type.name), None
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gather(results, awaitable_fields)

    async def _gather(self, results: dict[str, Any], awaitable_fields: list[str]) -> dict[str, Any]:
        """graphql-core's ``execute_fields`` tail: the awaitable fields awaited together."""
        if len(awaitable_fields) == 1:
            field = awaitable_fields[0]
            results[field] = await results[field]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results
