"""The Strawberry schema of the contract, and its SDL export (``plm export-schema``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult

from . import prepared
from .execution import Executor
from .extensions import EXTENSIONS, finish_errors
from .mutations import Mutation
from .operation import OperationInfo
from .queries import Query
from .runner import Runner
from .subscriptions import Subscription
from .types.base import DATETIME
from .webhooks import WebhookMutation, WebhookQuery


class Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry logs every error at ERROR level; most are the client's (validation,
        # FORBIDDEN, limits). Unexpected ones are logged, with the request id, where they
        # are masked (extensions.ErrorPolicy).
        return None

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> Runner:
        return Runner(execution_context=execution_context, extensions=extensions)

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        # A document parsed and validated before takes the short path (server.graphql.prepared).
        result = await prepared.execute(self, query, *args, **kwargs)
        if result is None:
            result = await super().execute(query, *args, **kwargs)
        context = kwargs.get("context_value", args[1] if len(args) > 1 else None)
        result.errors = finish_errors(result.errors, getattr(context, "request_id", None))
        for error in result.errors or ():
            _drop_tracebacks(error)
        return result


def _drop_tracebacks(error: BaseException | None) -> None:
    """Forget an answered error's tracebacks (an unexpected one was logged with its own as it
    was masked): their frames hold the execution, a reference cycle that would keep the
    request's context and rows for the cyclic garbage collector."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        if error.__context__ is not None and error.__context__ is not error.__cause__:
            _drop_tracebacks(error.__context__)
        error = error.__cause__ or getattr(error, "original_error", None)


class Names(NameConverter):
    """Strawberry's names, each worked out once: it camel-cases every argument's name again
    on every call of a field that has arguments (``convert_arguments``), ~1% of a queue page."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        found = self._names.get(name)
        if found is None:  # the schema's Python names: a bounded set
            found = self._names[name] = super().apply_naming_config(name)
        return found


# Each feature's fields live in its own module; the root types are their union.
RootQuery = merge_types("Query", (Query, WebhookQuery))
RootMutation = merge_types("Mutation", (Mutation, WebhookMutation))

schema = Schema(
    query=RootQuery,
    mutation=RootMutation,
    subscription=Subscription,
    extensions=[*EXTENSIONS, OperationInfo],
    execution_context_class=Executor,
    scalar_overrides={datetime: DATETIME},
    config=StrawberryConfig(name_converter=Names()),
)

SCHEMA_FILE = Path(__file__).resolve().parent.parent.parent / "schema.graphql"


def sdl() -> str:
    return schema.as_str() + "\n"


def export(path: Path = SCHEMA_FILE) -> Path:
    path.write_text(sdl())
    return path
