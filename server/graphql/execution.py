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
default ``getattr``), ``__typename``, a resolver marked :func:`known_answer` whose answer
is known without its info, or a query's root field marked :func:`context_answer` whose
answer the request's context gives (``me``) — and how its value is completed (a leaf type's coercion, a list's
items, an object's plan). A field whose plan says neither goes through graphql-core's
``execute_field``, as does a field whose value is not the plain case: a null for a non-null
field, an ``Exception`` value, an awaitable, a value its leaf type refuses, an attribute that
raises, a list that is not a ``list`` or ``tuple``, an answer the marked resolver does not know.
The short path has no side effect (it reads attributes and calls known-answer functions), so
graphql-core's path then completes that field from the start and gives the same value or the
same error, at the same path; within it, each object's fields take the short path again.
Shapes, plans and the function generated per plan are :mod:`server.graphql.completion`'s.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from operator import attrgetter
from typing import Any, Literal, TypeVar

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    OperationDefinitionNode,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, FragmentDetails, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, gather_with_cancel
from graphql.type import TypeNameMetaFieldDef
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from .completion import (
    LEAF,
    LIST,
    OBJECT,
    PLAIN_VALUES,
    UNKNOWN,
    Plan,
    Reader,
    Shape,
    Slow,
    compiled,
    direct_call,
    settling,
    shape_of,
)
from .completion import Unknown as Unknown  # known_answer's users read both here

__all__ = ["UNKNOWN", "Executor", "Unknown", "context_answer", "known_answer", "read_by"]

F = TypeVar("F", bound=Callable[..., Any])


_KNOWN_ANSWER = "_plm_known_answer"
_CONTEXT_ANSWER = "_plm_context_answer"


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


def context_answer(known: Callable[[Any], Any]) -> Callable[[F], F]:
    """Mark a synchronous resolver of a query's root field whose answer ``known(context)``
    gives (the request's context) unless it is ``UNKNOWN``; as :func:`known_answer` otherwise.

    A root field's source is the operation's root value, which says nothing of the request
    (None here): what such a field answers, like ``me``, comes from the context. Only a root
    field of a query is read this way (:class:`Executor` gives it the context); anywhere else
    the resolver is called.
    """

    def mark(resolver: F) -> F:
        setattr(resolver, _CONTEXT_ANSWER, known)
        return resolver

    return mark


# By the field's id (GraphQLField is unhashable); the field is kept to rule out a reused id.
_READERS: dict[int, tuple[GraphQLField, Reader, ReadBy]] = {}

ReadBy = Literal["attribute", "known answer", "context answer"] | None


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
            func = resolver.wrapped_func
            known = getattr(func, _KNOWN_ANSWER, None)
            in_context = getattr(func, _CONTEXT_ANSWER, None)
            if not field.args and not resolver.is_async:
                if known is not None:
                    reader, by = known, "known answer"
                elif in_context is not None:
                    reader, by = in_context, "context answer"
    _READERS[id(field)] = (field, reader, by)
    return reader, by


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
_SHARED_PLANS: dict[int, tuple[weakref.ref[OperationDefinitionNode], dict[PlanKey, Plan]]] = {}


def _share(operation: OperationDefinitionNode, plans: dict[PlanKey, Plan]) -> None:
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


def _plan_key(parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet, root: bool) -> PlanKey:
    return (
        # No type's name has a "^": a root's plans are apart from the same type's elsewhere.
        "^" + parent_type.name if root else parent_type.name,
        tuple((name, tuple(id(d.node) for d in fields)) for name, fields in grouped_field_set.items()),
    )


class Executor(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans = self._plans_of_operation()

    # graphql-core stores its resolvers' helpers as bound methods of the execution context:
    # a reference cycle through every execution, which kept the request's context, loaders
    # and rows for the cyclic garbage collector (~800 objects a queue page; collections of
    # 10-30 ms, and of 400-550 ms once the heap is large). Made when a resolver's info asks.
    @property
    def async_helpers(self) -> GraphQLResolveInfoHelpers:
        return GraphQLResolveInfoHelpers(gather=self.gather_async_work, track=self.track_async_work)

    @async_helpers.setter
    def async_helpers(self, _helpers: GraphQLResolveInfoHelpers) -> None:
        pass  # graphql-core's __init__ sets them; the property makes them

    def _plans_of_operation(self) -> dict[PlanKey, Plan]:
        """The operation's shared plans, or this execution's own when its directives (or their
        variables) decide what is collected. Objects' plans hang off their shapes, so a
        shared plan is built once for every later execution of the operation."""
        operation = self.operation
        found = _SHARED_PLANS.get(id(operation))
        if found is not None and found[0]() is operation:
            return found[1]
        plans: dict[PlanKey, Plan] = {}
        if _without_directives(operation, self.fragments):
            _share(operation, plans)
        return plans

    def _fast(self) -> bool:
        middleware = self.middleware_manager
        return middleware is None or not middleware.middlewares

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet, root: bool = False
    ) -> Plan:
        """The selection's plan; a query's ``root`` reads the request's context, so only
        its context answers (and ``__typename``) are read there, and only there."""
        key = _plan_key(parent_type, grouped_field_set, root)
        found = self._plans.get(key)
        if found is not None:
            return found
        entries: list[tuple[str, FieldDetailsList, Reader, Shape | None]] = []
        for response_name, fields in grouped_field_set.items():
            field = self.schema.get_field(parent_type, fields[0].node.name.value)
            reader: Reader = None
            shape: Shape | None = None
            if field is TypeNameMetaFieldDef:
                reader = _constant(parent_type.name)
                shape = shape_of(field.type, fields)
            elif field is not None:
                reader = _reader(field)
                if (read_by(field) == "context answer") is not root:
                    reader = None
                if reader is not None:
                    shape = shape_of(field.type, fields)
            entries.append((response_name, fields, reader, shape))
        plan = Plan(parent_type.name, entries)
        self._plans[key] = plan
        return plan

    def _object_plan(self, shape: Shape) -> Plan:
        plan = shape.plan
        if plan is None:
            assert shape.object_type is not None and shape.fields is not None
            grouped_field_set, defer_usages, _ = self.collect_subfields(shape.object_type, shape.fields)
            if defer_usages:
                raise Slow
            plan = shape.plan = self._plan(shape.object_type, grouped_field_set)
        return plan

    def _complete(self, shape: Shape, value: Any) -> Any:
        """``value`` completed as ``shape`` says, as graphql-core would; raises when not plain."""
        if value is None or value is Undefined:
            if shape.non_null:
                raise Slow
            return None
        kind = shape.kind
        if kind == LEAF:
            if type(value) not in PLAIN_VALUES and (isinstance(value, Exception) or self.is_awaitable(value)):
                raise Slow
            coerced = shape.coerce(value)  # type: ignore[misc]  # set for a leaf
            if coerced is None or coerced is Undefined:
                raise Slow
            return coerced
        if isinstance(value, Exception) or self.is_awaitable(value):
            raise Slow
        if kind == LIST:
            if type(value) is not list and type(value) is not tuple:
                raise Slow
            item = shape.item
            assert item is not None
            if item.kind == OBJECT:
                return self._objects(item, value)
            complete = self._complete
            return [complete(item, v) for v in value]
        plan = self._object_plan(shape)
        if not plan.fast:
            raise Slow
        return self._object(plan, value)

    def _objects(self, item: Shape, values: list[Any] | tuple[Any, ...]) -> list[Any]:
        """A list of objects: _complete's object case for each item, inlined; an item of the
        Strawberry type by the plan's function directly, as a generated completion calls it."""
        plan = self._object_plan(item)
        if not plan.fast:
            raise Slow
        direct = direct_call(item)
        if direct is not None:
            classes, run = direct
            complete = self._complete
            return [run(v, complete) if type(v) in classes else self._item(item, plan, v) for v in values]
        return [self._item(item, plan, v) for v in values]

    def _item(self, item: Shape, plan: Plan, value: Any) -> Any:
        if value is None or value is Undefined:
            if item.non_null:
                raise Slow
            return None
        if isinstance(value, Exception) or self.is_awaitable(value):
            raise Slow
        return self._object(plan, value)

    def _object(self, plan: Plan, source: Any) -> dict[str, Any]:
        run = plan.run
        if run is None or settling(plan):
            # Once more after its first use: the objects below it have their functions now.
            run = plan.run = compiled(plan)
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
        # A query's root fields read the request's context (context_answer), nothing else.
        root = path is None and parent_type is self.schema.query_type
        plan = self._plan(parent_type, grouped_field_set, root)
        source = self.context_value if root else source_value
        if plan.fast:
            try:
                return self._object(plan, source)
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
                        value = reader(source)
                        if value is UNKNOWN:
                            raise Slow
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
