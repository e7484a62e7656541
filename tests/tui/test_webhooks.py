"""The Webhooks tab against a real server and a real receiver: add (secret shown once), test,
rotate, edit, delete; a VIEWER only looks. Outcomes are checked through the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import build_schema, parse, validate
from standardwebhooks import Webhook as Verifier
from textual.widgets import DataTable, Input

from server.domain.models import QueueAction
from server.infra.db import Database
from server.infra.settings import Settings
from server.web.app import create_app
from tests.support import REPO, FakeClock, make_tenant, serve_app
from tests.tui.conftest import LiveServer, RecordingApp, eventually, wait_until
from tests.webhooks.conftest import LOCAL, Receiver, receiver  # noqa: F401  (the fixture)
from tui_client import webhooks_api
from tui_client.screens.webhook_dialogs import SecretScreen, WebhookForm
from tui_client.screens.webhooks import WebhooksView

SIZE = (120, 36)
HOOKS = "{ webhooks { id url actions enabled deliveries { totalCount edges { node { status } } } } }"


@pytest.mark.parametrize("name", sorted(webhooks_api.ALL))
def test_the_webhook_documents_are_valid_against_the_schema(name: str) -> None:
    schema = build_schema((REPO / "schema.graphql").read_text())
    document = parse(webhooks_api.ALL[name])
    assert not validate(schema, document)
    assert [d.name.value for d in document.definitions if getattr(d, "operation", None) and d.name] == [name]


@pytest.fixture
async def live_hooks(db: Database, db_url: str, clock: FakeClock) -> AsyncIterator[LiveServer]:
    """A server that may call the loopback receiver (http, private addresses allowed)."""
    tenant = await make_tenant(db, licenses=3)
    app = create_app(Settings(database_url=db_url, **LOCAL), db=db, clock=clock)
    async with serve_app(app) as base, httpx.AsyncClient(base_url=base, timeout=10) as http:
        yield LiveServer(base, tenant, clock, http, db)


def told(app: RecordingApp, text: str) -> bool:
    return any(text in f"{title} {message}" for _, title, message in app.notices)


async def hooks(live: LiveServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await live.gql(HOOKS))["webhooks"]
    return found


async def test_an_admin_adds_tests_rotates_edits_and_deletes_a_webhook(
    live_hooks: LiveServer,
    receiver: Receiver,  # noqa: F811
) -> None:
    live = live_hooks
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        view = app.query_one(WebhooksView)
        await wait_until(pilot, lambda: not view.stale and "0 webhooks" in _info(view), "the empty list")

        # Add: the form, then the secret, shown once
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, WebhookForm), "the form")
        app.screen.query_one("#url", Input).value = receiver.url("tui")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretScreen), "the secret")
        secret_screen = app.screen
        assert isinstance(secret_screen, SecretScreen)
        secret = secret_screen.secret
        assert secret.startswith("whsec_") and secret_screen.query_one("#secret", Input).value == secret
        await pilot.press("c")
        assert app.clipboard == secret
        await pilot.press("escape")
        (hook,) = await hooks(live)
        assert hook["url"] == receiver.url("tui") and len(hook["actions"]) == len(QueueAction)
        table = view.query_one("#webhooks-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the new row")

        # Test: the receiver gets a signed pending_queue.test, and the tab shows it delivered
        await pilot.press("s")
        (hit,) = await receiver.wait_for(1, "tui")
        assert Verifier(secret).verify(hit.body, hit.headers)["type"] == "pending_queue.test"
        deliveries = view.query_one("#deliveries-table", DataTable)
        await wait_until(
            pilot,
            lambda: deliveries.row_count == 1 and "delivered" in str(deliveries.get_row_at(0)[3]),
            "the delivered test",
        )

        # Rotate: confirmed, and the new secret is shown
        await pilot.press("r", "y")
        await wait_until(pilot, lambda: isinstance(app.screen, SecretScreen), "the rotated secret")
        assert isinstance(app.screen, SecretScreen) and app.screen.secret not in ("", secret)
        await pilot.press("escape")

        # Edit: disable it
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, WebhookForm), "the edit form")
        await pilot.click("#enabled")
        await pilot.click("#save")

        async def disabled() -> bool:
            return (await hooks(live))[0]["enabled"] is False

        await eventually(pilot, disabled, "the webhook disabled")
        await wait_until(pilot, lambda: "disabled" in str(table.get_row_at(0)[4]), "the disabled state")

        # Delete, confirmed
        await pilot.press("x", "y")

        async def gone() -> bool:
            return await hooks(live) == []

        await eventually(pilot, gone, "the webhook deleted")
        await wait_until(pilot, lambda: table.row_count == 0, "the row gone")
        assert not any(severity == "error" for severity, _, _ in app.notices), app.notices


async def test_a_refused_url_is_a_notification_and_a_viewer_only_looks(
    live_hooks: LiveServer,
    receiver: Receiver,  # noqa: F811
) -> None:
    live = live_hooks
    app = live.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5", "a")
        await wait_until(pilot, lambda: isinstance(app.screen, WebhookForm), "the form")
        app.screen.query_one("#url", Input).value = "ftp://example.com/x"
        await pilot.press("enter")
        await wait_until(pilot, lambda: told(app, "the URL must start with https://"), "the refusal")
        assert await hooks(live) == []

    await live.gql(
        "mutation($u: String!) { createWebhook(input: {url: $u}) { errors { code } } }", u=receiver.url("v")
    )
    viewer = live.app(viewer=True)
    async with viewer.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        view = viewer.query_one(WebhooksView)
        table = view.query_one("#webhooks-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, "the webhook listed")
        await pilot.press("a")
        await wait_until(pilot, lambda: told(viewer, "can read webhooks but not manage them"), "the refusal")
        assert not isinstance(viewer.screen, WebhookForm)


def _info(view: WebhooksView) -> str:
    return str(view.query_one("#webhooks-info").render())
