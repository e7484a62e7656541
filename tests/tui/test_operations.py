"""Every GraphQL document the client sends is valid against the server's schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate

from tui_client import operations

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO.parent / "shared" / "contract" / "contract.graphql"


def _schema_source() -> Path:
    # schema.graphql is exported from the server's code; the shared contract stands in until
    # it exists (the exported schema must contain the contract unchanged).
    exported = REPO / "schema.graphql"
    return exported if exported.exists() else CONTRACT


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(_schema_source().read_text())


def test_the_client_validates_against_the_exported_schema_once_it_exists() -> None:
    assert (REPO / "schema.graphql").exists() or CONTRACT.exists()


@pytest.mark.parametrize("name", sorted(operations.ALL))
def test_operation_is_valid(schema: GraphQLSchema, name: str) -> None:
    document = parse(operations.ALL[name])
    errors = validate(schema, document)
    assert not errors, [e.message for e in errors]
    names = [d.name.value for d in document.definitions if getattr(d, "operation", None) and d.name]
    assert names == [name], "one named operation per document, named as in ALL"


def test_every_document_constant_is_listed() -> None:
    documents = {
        value
        for key, value in vars(operations).items()
        if key.isupper()
        and isinstance(value, str)
        and key not in ("ACCOUNT_FIELDS", "USER_FIELDS", "SEAT_PLAN_FIELDS")
    }
    assert documents == set(operations.ALL.values())
