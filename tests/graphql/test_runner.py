"""server.graphql.runner: the stages enter the hooks Strawberry's own runner would."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner

from server.graphql.runner import Runner
from server.graphql.schema import schema

STAGES = ("operation", "parsing", "validation", "executing")


def _hooks(runner: SchemaExtensionsRunner, stage: str) -> list[tuple[SchemaExtension, bool]]:
    return [(h.extension, h.is_async) for h in getattr(runner, stage)().hooks]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_finds_strawberrys_hooks_for_the_schemas_extensions(stage: str) -> None:
    extensions = schema.get_extensions()
    ours = Runner(execution_context=None, extensions=extensions)  # type: ignore[arg-type]  # unused here
    theirs = SchemaExtensionsRunner(execution_context=None, extensions=extensions)  # type: ignore[arg-type]
    assert _hooks(ours, stage) == _hooks(theirs, stage)
    assert isinstance(schema.create_extensions_runner(None, extensions), Runner)  # type: ignore[arg-type]


async def test_every_kind_of_hook_runs_around_its_stage_in_order() -> None:
    """Generator, async generator and plain (sync and async) hooks, each entered and left
    around its stage, in the extensions' order; the same as Strawberry's runner gives."""

    async def run(make_runner: type[SchemaExtensionsRunner]) -> list[str]:
        log: list[str] = []

        class Generator(SchemaExtension):
            def on_operation(self) -> Iterator[None]:
                log.append("generator in")
                yield
                log.append("generator out")

        class AsyncGenerator(SchemaExtension):
            async def on_operation(self) -> AsyncIterator[None]:
                log.append("async generator in")
                yield
                log.append("async generator out")

        class Plain(SchemaExtension):
            def on_parse(self) -> None:  # type: ignore[override]  # Strawberry takes a plain callable too
                log.append("plain parse")

            async def on_execute(self) -> None:  # type: ignore[override]
                log.append("async plain execute")

        @strawberry.type
        class Query:
            @strawberry.field
            def hello(self) -> str:
                log.append("resolved")
                return "world"

        class Probe(strawberry.Schema):
            def create_extensions_runner(
                self, execution_context: object, extensions: list[SchemaExtension]
            ) -> SchemaExtensionsRunner:
                return make_runner(execution_context=execution_context, extensions=extensions)  # type: ignore[arg-type]

        probe = Probe(query=Query, extensions=[Generator, AsyncGenerator, Plain])
        result = await probe.execute("{ hello }")
        assert result.errors is None and result.data == {"hello": "world"}
        return log

    ours = await run(Runner)
    assert ours == await run(SchemaExtensionsRunner)
    assert ours == [
        "generator in",
        "async generator in",
        "plain parse",
        "async plain execute",
        "resolved",
        "async generator out",
        "generator out",
    ]


async def test_an_error_inside_a_stage_reaches_its_hooks() -> None:
    seen: list[str] = []

    class Watch(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            try:
                yield
            except Exception as exc:  # recorded, then raised again
                seen.append(type(exc).__name__)
                raise

    class Failing(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            yield
            raise RuntimeError("after execution")

    @strawberry.type
    class Query:
        hello: str = "world"

    class Probe(strawberry.Schema):
        def create_extensions_runner(
            self, execution_context: object, extensions: list[SchemaExtension]
        ) -> SchemaExtensionsRunner:
            return Runner(execution_context=execution_context, extensions=extensions)  # type: ignore[arg-type]

    result = await Probe(query=Query, extensions=[Watch, Failing]).execute("{ hello }")
    assert seen == ["RuntimeError"]
    assert result.errors is not None and "after execution" in result.errors[0].message
