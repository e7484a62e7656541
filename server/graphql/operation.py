"""A schema extension noting what each execution ran, for metrics and the access log.

Once a document is validated, its operation's type (``query``, ``mutation``,
``subscription``) and name go on the request's :class:`~server.graphql.context.Context`;
the edges (:mod:`server.graphql.http`, :mod:`server.graphql.live`) count and log them.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from server.infra.logs import operation_label


def note_operation(ec: ExecutionContext) -> None:
    """Put the operation's type and name on the request's context (if it takes them)."""
    context = ec.context
    if hasattr(context, "operation_type"):
        try:
            context.operation_type = ec.operation_type.value
        except Exception:  # no operation to name; execution reports it
            context.operation_type = None
        context.operation_name = operation_label(ec.operation_name)


class OperationInfo(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        note_operation(self.execution_context)
        yield
