"""server.graphql.prepared: a document parsed and validated before skips Strawberry's
pipeline, and answers exactly as the pipeline does (data, errors, their codes and masking,
the operation noted for the access log)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from server.domain import auth
from server.domain.reads import lists
from server.graphql import prepared
from server.graphql.context import Context
from server.graphql.schema import schema
from server.web.runtime import Services
from tests.graphql.helpers import PENDING_PAGE
from tests.graphql.test_queries import two_device_queue
from tests.support import Tenant

QUERY_AND_ME = "query QueueAndMe($first: Int!) { me { id } pendingUsers(first: $first) { totalCount edges { node { id } } } }"
TWO_OPERATIONS = "query A { me { id } } query B { account { id licenseLimit } }"
MUTATION = "mutation Review($on: Boolean) { updateAccountSettings(input: {manualReview: $on}) { account { manualReview } } }"

CASES: list[tuple[str, str, dict[str, Any] | None, str | None]] = [
    ("a page", PENDING_PAGE, {"first": 3}, None),
    ("the page and me", QUERY_AND_ME, {"first": 50}, None),
    ("a named operation of two", TWO_OPERATIONS, None, "B"),
    ("a mutation", MUTATION, {"on": False}, None),
    ("a resolver's error (BAD_USER_INPUT)", PENDING_PAGE, {"first": 0}, None),
    ("a variable that does not coerce", PENDING_PAGE, {"first": "many"}, None),
    ("a missing variable", PENDING_PAGE, {}, None),
]


async def _run(
    services: Services, token: str, document: str, variables: dict[str, Any] | None, operation: str | None
) -> tuple[Any, ...]:
    async with services.db.read() as session:
        found = await auth.authenticate(session, token)
        assert found is not None
        ctx = Context.create(services, session, *found)
        try:
            result = await schema.execute(
                document, variable_values=variables, context_value=ctx, operation_name=operation
            )
        finally:
            await ctx.close()
    errors = []
    for error in result.errors or ():
        shown = error.formatted
        if "requestId" in (shown.get("extensions") or {}):
            shown["extensions"]["requestId"] = "<this request's>"
        errors.append(shown)
    return type(result), result.data, errors, result.extensions, ctx.operation_type, ctx.operation_name


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    taken: list[bool] = []
    real = prepared.execute

    async def spying(*args: Any, **kwargs: Any) -> Any:
        answer = await real(*args, **kwargs)
        taken.append(answer is not None)
        return answer

    monkeypatch.setattr(prepared, "execute", spying)
    return taken


async def _pipeline_only(*_args: Any, **_kwargs: Any) -> None:
    return None


@pytest.mark.parametrize(("name", "document", "variables", "operation"), CASES, ids=[c[0] for c in CASES])
async def test_a_prepared_document_answers_as_strawberrys_pipeline(
    services: Services,
    tenant: Tenant,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    document: str,
    variables: dict[str, Any] | None,
    operation: str | None,
) -> None:
    await two_device_queue(services.db, tenant, licensed=2, pending=5)
    taken = _spy(monkeypatch)
    first = await _run(services, tenant.admin_token, document, variables, operation)
    again = await _run(services, tenant.admin_token, document, variables, operation)
    assert taken == [taken[0], True], "the second run takes the short path"
    with monkeypatch.context() as m:
        m.setattr(prepared, "execute", _pipeline_only)
        pipeline = await _run(services, tenant.admin_token, document, variables, operation)
    assert again == pipeline
    assert first == pipeline


async def test_an_unexpected_error_is_masked_and_logged_alike(
    services: Services, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await two_device_queue(services.db, tenant, licensed=1, pending=2)
    await _run(services, tenant.admin_token, PENDING_PAGE, {"first": 2}, None)  # parsed and validated

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the page broke")

    monkeypatch.setattr(lists, "pending_page", broken)
    taken = _spy(monkeypatch)
    short = await _run(services, tenant.admin_token, PENDING_PAGE, {"first": 2}, None)
    assert taken == [True]
    with monkeypatch.context() as m:
        m.setattr(prepared, "execute", _pipeline_only)
        pipeline = await _run(services, tenant.admin_token, PENDING_PAGE, {"first": 2}, None)
    assert short == pipeline
    assert short[2][0]["message"] == "Internal server error."
    assert short[2][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert (
        sum(
            "the page broke" in (r.exc_text or "") or "the page broke" in str(r.exc_info)
            for r in caplog.records
        )
        == 2
    )


async def test_what_the_short_path_does_not_take_is_left_to_the_pipeline(
    services: Services, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invalid documents, unknown operation names, operation types not allowed, first sights."""
    taken = _spy(monkeypatch)
    invalid = "{ pendingUsers(first: 1) { nope } }"
    for _ in range(2):
        result = await _run(services, tenant.admin_token, invalid, None, None)
        assert result[2][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    first_sight = TWO_OPERATIONS + f" # {uuid.uuid4()}"  # the caches are the process's
    await _run(services, tenant.admin_token, first_sight, None, "A")
    for _ in range(2):
        with pytest.raises(CannotGetOperationTypeError):
            await _run(services, tenant.admin_token, first_sight, None, "C")
    async with services.db.read() as session:
        found = await auth.authenticate(session, tenant.admin_token)
        assert found is not None
        ctx = Context.create(services, session, *found)
        try:
            with pytest.raises(InvalidOperationTypeError):
                await schema.execute(
                    MUTATION, context_value=ctx, allowed_operation_types=[OperationType.QUERY]
                )
        finally:
            await ctx.close()
    assert taken == [False, False, False, False, False, False]
