"""types.base.builder: the per-row constructors set exactly what calling the class sets."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import strawberry

from server.domain import models
from server.domain.reads import rows
from server.graphql.types.base import builder
from server.graphql.types.users import AgentType, PendingInfoType, UserEdge, UserType

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _user() -> rows.UserRow:
    return rows.UserRow(
        7, 1, "Ada", models.UserStatus.PENDING, NOW, NOW, None, models.PendingReason.OVER_LIMIT, NOW
    )


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (
            UserType,
            {
                "id": "7",
                "display_name": "Ada",
                "status": models.UserStatus.PENDING,
                "first_seen_at": NOW,
                "last_seen_at": NOW,
                "licensed_at": None,
                "row": _user(),
            },
        ),
        (
            AgentType,
            {
                "id": "3",
                "device_name": "PC-1",
                "domain": "ACME",
                "logon_name": "ada",
                "first_seen_at": NOW,
                "last_seen_at": NOW,
                "user_id": 7,
            },
        ),
        (
            PendingInfoType,
            {
                "reason": models.PendingReason.OVER_LIMIT,
                "entered_at": NOW,
                "retained_event_count": 4,
                "retained_active_seconds": 60,
                "oldest_retained_at": NOW,
                "data_expires_at": None,
                "due_at": None,
            },
        ),
    ],
)
def test_a_builder_sets_what_the_class_sets_defaults_included(cls: type, fields: dict[str, object]) -> None:
    built, called = builder(cls)(**fields), cls(**fields)
    assert type(built) is cls
    assert vars(built) == vars(called)
    assert built == called  # the dataclass's equality, over every field


def test_an_edge_built_holds_its_node() -> None:
    node = UserType.of(_user())
    edge = builder(UserEdge)(cursor="c1", node=node)
    assert vars(edge) == vars(UserEdge(cursor="c1", node=node))


def test_the_rows_types_come_from_their_builders() -> None:
    """UserType.of gives what calling the class gives."""
    user = _user()
    view = UserType.of(user)
    assert vars(view) == vars(
        UserType(
            id=strawberry.ID("7"),
            display_name="Ada",
            status=user.status,
            first_seen_at=NOW,
            last_seen_at=NOW,
            licensed_at=None,
            row=user,
        )
    )


def test_a_type_a_builder_cannot_copy_is_refused() -> None:
    @strawberry.type
    class Derived:
        a: int
        b: int = 0

        def __post_init__(self) -> None:
            self.b = self.a * 2

    @strawberry.type
    class Listed:
        items: list[int] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="__post_init__"):
        builder(Derived)
    with pytest.raises(TypeError, match="default factory"):
        builder(Listed)
