"""graphql-core's executor with a short path for leaf fields read off an attribute.

graphql-core executes every field alike: it builds the field's resolve info (Strawberry's,
of 16 members), calls Strawberry's default resolver (``getattr``), checks the result for an
awaitable, then completes it through ``complete_value``'s type dispatch. A 50-row queue page
is ~1,100 fields, ~900 of them such leaves (``displayName``, ``firstSeenAt``, ...).

For a leaf field (a scalar or enum, nullable or not) whose Strawberry field is basic (no
resolver, no field extension: :attr:`StrawberryField.is_basic_field`) and whose default
resolver is ``getattr``, and when no schema extension resolves fields (Strawberry's middleware
manager is then empty),
:class:`Executor` reads the attribute and coerces it here. Whatever is not the plain case —
a null for a non-null field, a value the type refuses, an exception, an ``Exception`` value
— goes through graphql-core's own path, which gives the same value or the same error.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLLeafType, GraphQLObjectType, GraphQLOutputType, Undefined
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from graphql.type import GraphQLNonNull, is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

Leaf = tuple[str, GraphQLLeafType, bool]
"""How a plain leaf field is read: the attribute's name, the leaf type, whether non-null."""

# By the field's id (GraphQLField is unhashable); the field is kept to rule out a reused id.
_PLANS: dict[int, tuple[GraphQLField, Leaf | None]] = {}


def leaf_plan(field: GraphQLField) -> Leaf | None:
    """How ``field`` is read on the short path, or ``None`` when it is not a plain leaf."""
    found = _PLANS.get(id(field))
    if found is not None and found[0] is field:
        return found[1]
    plan: Leaf | None = None
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return_type: GraphQLOutputType = field.type
    non_null = isinstance(return_type, GraphQLNonNull)
    inner = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if (
        isinstance(definition, StrawberryField)
        and definition.is_basic_field
        and definition.default_resolver is getattr
        and getattr(field.resolve, "_is_default", False)
        and is_leaf_type(inner)
    ):
        plan = (definition.python_name, inner, non_null)
    _PLANS[id(field)] = (field, plan)
    return plan


class Executor(StrawberryGraphQLCoreExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        middleware = self.middleware_manager
        if middleware is None or not middleware.middlewares:
            field = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
            plan = None if field is None else leaf_plan(field)
            if plan is not None:
                name, leaf, non_null = plan
                try:
                    value = getattr(source, name)
                    if value is None:
                        if not non_null:
                            return None
                    elif not isinstance(value, Exception):
                        coerced = leaf.coerce_output_value(value)
                        if coerced is not None and coerced is not Undefined:
                            return coerced
                except Exception:  # graphql-core's path below raises it as a field error
                    pass
        return super().execute_field(parent_type, source, field_details_list, path, position_context)
