"""The short path of an operation whose document this process has parsed and validated.

Strawberry runs every operation through its pipeline: it makes the schema's five
extensions, enters four stages of their hooks (operation, parsing, validation, execution),
and only then executes. For a document already in :data:`~server.graphql.extensions.PARSED`
and, without an error, in :data:`~server.graphql.extensions.VALIDATED`, those hooks do no
more than set the parse options, look the document and its (empty) validation errors up,
and note the operation for the access log. :func:`execute` does just that, then executes as
Strawberry does (the same graphql-core call and arguments) and ends as it does: the errors
coded and masked by :class:`~server.graphql.extensions.ErrorPolicy`'s own operation hook,
the answer built as ``_handle_execution_result`` builds it. ~40 us of the ~490 a small
operation cost (``{ me { id } }`` in-process).

Anything else answers ``None`` before any work, and Strawberry's pipeline runs it: a
document seen for the first time or with validation errors, an operation that cannot be
told or is not allowed, a schema with directives or an extension that resolves fields.
``tests/graphql/test_prepared.py`` compares both paths' answers.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any, cast

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.middleware import MiddlewareManager
from strawberry.execution import optimized_is_awaitable
from strawberry.schema._graphql_core import execution_context_class_kwargs
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, _coerce_error
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.await_maybe import await_maybe

from .extensions import (
    PARSED,
    VALIDATED,
    ErrorPolicy,
    Parsing,
    TokenLimit,
    Validation,
    parse_key,
    validation_key,
)
from .operation import OperationInfo, note_operation


async def execute(
    schema: Any,
    query: str | None,
    variable_values: dict[str, Any] | None = None,
    context_value: Any | None = None,
    root_value: Any | None = None,
    operation_name: str | None = None,
    allowed_operation_types: Iterable[OperationType] | None = None,
    operation_extensions: dict[str, Any] | None = None,
) -> ExecutionResult | None:
    """``schema.execute``'s answer by the short path, or None: take Strawberry's pipeline."""
    if (
        not query
        or schema.directives
        or schema.config.enable_experimental_incremental_execution
        or list(schema.extensions) != STANDS_FOR
    ):
        return None
    context = schema._create_execution_context(
        query=query,
        allowed_operation_types=DEFAULT_ALLOWED_OPERATION_TYPES
        if allowed_operation_types is None
        else allowed_operation_types,
        variable_values=variable_values,
        context_value=context_value,
        root_value=root_value,
        operation_name=operation_name,
        operation_extensions=operation_extensions,
    )
    limit, policy = TokenLimit(), ErrorPolicy()
    limit.execution_context = policy.execution_context = context
    for _ in limit.on_operation():  # TokenLimit's hook: the parse options
        pass
    document = PARSED.get(parse_key(query, context))
    errors = None if document is None else VALIDATED.get(validation_key(query, context))
    if document is None or errors is None or errors:
        return None
    context.graphql_document = document
    try:
        operation_type = context.operation_type
    except RuntimeError:
        return None
    if operation_type not in context.allowed_operations:
        return None
    context.pre_execution_errors = []  # as Validation leaves a valid document
    # ErrorPolicy's operation hook: masks the result's errors once the result is set.
    masking = cast(Generator[None, None, None], policy.on_operation())
    next(masking)
    try:
        note_operation(context)
        result: GraphQLExecutionResult = await await_maybe(
            schema._get_execute_function()(
                schema._schema,
                document,
                root_value=root_value,
                middleware=MiddlewareManager(),
                variable_values=variable_values,
                operation_name=context.operation_name,
                context_value=context_value,
                is_awaitable=optimized_is_awaitable,
                **execution_context_class_kwargs(schema.execution_context_class),
                **schema._get_custom_context_kwargs(operation_extensions),
            )
        )
    except Exception as exc:  # as Strawberry answers an exception raised by execution
        masking.close()  # the hook sees it fail and masks nothing
        errors = [_coerce_error(exc)]
        context.pre_execution_errors = errors
        schema._process_errors(errors, context)
        return _answer(context, PreExecutionError(data=None, errors=errors))
    context.result = result
    if result.errors:
        context.pre_execution_errors = result.errors
        schema._process_errors(result.errors, context)
    next(masking, None)
    if result.errors:
        context.pre_execution_errors = result.errors  # masked
    return _answer(context, ExecutionResult(data=result.data, errors=result.errors))


def _answer(context: Any, result: ExecutionResult) -> ExecutionResult:
    """``_handle_execution_result``'s ending: the extensions' results (ours give none)."""
    result.extensions = dict(context.extensions_results)
    context.result = result
    return result


# The schema's extensions the short path stands for, in order (server.graphql.schema).
STANDS_FOR: list[type] = [ErrorPolicy, TokenLimit, Parsing, Validation, OperationInfo]
