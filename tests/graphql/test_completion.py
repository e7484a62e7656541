"""Records completed as a Strawberry type (``completes_as``) have what its plans read."""

from __future__ import annotations

import dataclasses

from strawberry.types.base import get_object_definition

import server.graphql.schema  # noqa: F401  # every type module, so every registration
from server.domain.reads import loads
from server.graphql.completion import completed_as
from server.graphql.types.users import PendingInfoType


def test_every_record_completed_as_a_type_has_its_fields() -> None:
    registered = completed_as()
    assert registered[PendingInfoType] == (loads.PendingInfo,)  # the queue page's
    for strawberry_type, records in registered.items():
        definition = get_object_definition(strawberry_type, strict=True)
        read = {f.python_name for f in definition.fields if f.base_resolver is None}
        assert read, strawberry_type
        for record in records:
            names = {f.name for f in dataclasses.fields(record)}
            assert read <= names, (strawberry_type, record, read - names)
