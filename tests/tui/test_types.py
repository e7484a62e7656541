"""Answers parsed into typed values (``tui_client.types``), and their labels: no server, no app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tui_client import format as fmt
from tui_client.actions import AdminAction
from tui_client.parsing import parse, parse_page
from tui_client.screens.help import KEYS
from tui_client.types import (
    Account,
    AgentRef,
    ErrorCode,
    PendingReason,
    QueueAction,
    QueueEvent,
    QueueMetrics,
    Suggestion,
    SuggestionKind,
    User,
    UserError,
    UserStatus,
)

ACCOUNT = {
    "id": "1",
    "name": "Acme",
    "licenseLimit": 3,
    "licensesUsed": 3,
    "licensesAvailable": 0,
    "pendingCount": 1,
    "manualReview": True,
    "retentionDays": 30,
}


def user_json(**changes: Any) -> dict[str, Any]:
    user = {
        "id": "5",
        "displayName": "Ada",
        "status": "PENDING",
        "firstSeenAt": "2026-11-26T09:00:00+00:00",
        "lastSeenAt": "2026-11-26T09:05:00+00:00",
        "licensedAt": None,
        "agents": [{"id": "7", "deviceName": "LAPTOP-7", "domain": "ACME", "logonName": "ada"}],
        "pending": {
            "reason": "MANUAL_REVIEW",
            "enteredAt": "2026-11-26T09:00:00+00:00",
            "retainedEventCount": 2,
            "retainedActiveSeconds": 600,
            "oldestRetainedAt": None,
            "dataExpiresAt": "2026-12-26T09:00:00+00:00",
        },
        "suggestions": [],
    }
    return {**user, **changes}


def test_a_user_is_parsed_by_its_annotations() -> None:
    user = parse(User, user_json())
    assert user.display_name == "Ada" and user.status is UserStatus.PENDING
    assert user.last_seen_at == datetime(2026, 11, 26, 9, 5, tzinfo=UTC)
    assert user.licensed_at is None and user.suggestions == ()
    assert user.agents == (AgentRef(id="7", device_name="LAPTOP-7", domain="ACME", logon_name="ada"),)
    assert user.agents[0].logon == "ACME\\ada"
    assert user.pending is not None and user.pending.reason is PendingReason.MANUAL_REVIEW
    assert user.pending.oldest_retained_at is None


def test_fields_with_a_default_may_be_absent_and_unknown_fields_are_ignored() -> None:
    answer = user_json(extra="ignored")
    for key in ("licensedAt", "pending", "suggestions"):
        del answer[key]
    user = parse(User, answer)
    assert (user.licensed_at, user.pending, user.suggestions) == (None, None, ())
    with pytest.raises(KeyError):
        parse(User, {k: v for k, v in user_json().items() if k != "displayName"})


def test_an_enum_value_the_client_does_not_know_is_kept_and_shown_as_it_is() -> None:
    """docs/api.md: enum values are added freely; clients ignore what they do not know."""
    user = parse(
        User, user_json(status="ARCHIVED", pending={**user_json()["pending"], "reason": "AUDIT_HOLD"})
    )
    assert user.status == "ARCHIVED" and user.status is not UserStatus.PENDING
    assert user.pending is not None
    assert isinstance(user.pending.reason, PendingReason) and fmt.reason(user.pending.reason) == "AUDIT_HOLD"
    assert fmt.status(user.status) == "pending"  # as before: anything not licensed
    assert fmt.action(QueueAction("PARKED")) == "PARKED"


def test_suggestions_name_their_target() -> None:
    assign = parse(
        Suggestion,
        {
            "kind": "ASSIGN",
            "score": 0.98,
            "reasons": ["same name"],
            "user": {"id": "3", "displayName": "Ada Lovelace"},
            "agent": None,
        },
    )
    assert (assign.kind, assign.target_id, assign.target, assign.target_name) == (
        SuggestionKind.ASSIGN,
        "3",
        "Ada Lovelace",
        "Ada Lovelace",
    )
    merge = parse(
        Suggestion,
        {
            "kind": "MERGE",
            "score": 0.9,
            "reasons": ["same login"],
            "user": None,
            "agent": {
                "id": "8",
                "deviceName": "PC-2",
                "domain": "PC-2",
                "logonName": "at",
                "user": {"id": "4", "displayName": "Alan"},
            },
        },
    )
    assert (merge.target_id, merge.target, merge.target_name) == ("8", "Alan (PC-2\\at on PC-2)", "Alan")
    assert AdminAction.resolving(merge.kind) is AdminAction.MERGE
    assert AdminAction.resolving(assign.kind) is AdminAction.ASSIGN
    assert AdminAction.resolving(SuggestionKind("SPLIT")) is AdminAction.ASSIGN  # as before: not a merge


def test_a_page_an_event_metrics_and_errors() -> None:
    conn = {
        "totalCount": 9,
        "pageInfo": {"hasNextPage": True, "endCursor": "c"},
        "edges": [{"node": user_json()}],
    }
    page = parse_page(conn, User)
    assert (len(page.items), page.total_count, page.has_next_page, page.end_cursor) == (1, 9, True, "c")
    event = parse(
        QueueEvent,
        {
            "action": "ASSIGNED",
            "userId": "6",
            "user": None,
            "account": ACCOUNT,
            "actor": {"id": "1", "name": "Ann"},
            "at": "2026-11-26T09:06:00+00:00",
            "target": user_json(),
        },
    )
    assert event.action is QueueAction.ASSIGNED and event.actor_name == "Ann"
    assert event.account == parse(Account, ACCOUNT) and event.target is not None and event.user is None
    metrics = parse(
        QueueMetrics,
        {
            "days": 30,
            "pendingCount": 1,
            "oldestPendingSince": None,
            "resolvedCount": 3,
            "averageResolutionSeconds": 60.0,
            "medianResolutionSeconds": None,
            "resolvedByAction": [{"action": "APPROVED", "count": 2}, {"action": "REMOVED", "count": 1}],
        },
    )
    assert (metrics.resolved(QueueAction.APPROVED), metrics.resolved(QueueAction.MERGED)) == (2, 0)
    error = parse(UserError, {"code": "LICENSE_LIMIT_EXCEEDED", "message": "no", "field": None})
    assert error.code is ErrorCode.LICENSE_LIMIT_EXCEEDED and error.code == "LICENSE_LIMIT_EXCEEDED"


def test_one_label_per_reason_everywhere() -> None:
    assert fmt.REASONS == {
        PendingReason.OVER_LIMIT: "over limit",
        PendingReason.MANUAL_REVIEW: "manual review",
        PendingReason.RELEASED: "released",
    }
    assert set(fmt.REASONS) == set(PendingReason) and set(fmt.ACTIONS) == set(QueueAction)
    pending_keys = dict(next(lines for section, lines in KEYS if section == "Pending licenses"))
    assert pending_keys["f"] == "Cycle the reason filter: all · over limit · manual review · released"


def test_admin_actions_name_the_keys_a_viewer_cannot_use() -> None:
    from tui_client.app import AdminApp
    from tui_client.screens.audit import AuditView
    from tui_client.screens.pending import PendingView
    from tui_client.screens.reclaim import ReclaimView

    for action in AdminAction:
        owner = {
            AdminAction.TOGGLE_REVIEW: AdminApp,
            AdminAction.SET_LIMIT: AdminApp,
            AdminAction.UNDO: AdminApp,
            AdminAction.UNDO_ENTRIES: AuditView,
            AdminAction.RELEASE: ReclaimView,
            AdminAction.SWAP: ReclaimView,
        }.get(action, PendingView)
        assert callable(getattr(owner, f"action_{action}")), action
    assert AdminAction.named("approve") is AdminAction.APPROVE and AdminAction.named("suggestions") is None
