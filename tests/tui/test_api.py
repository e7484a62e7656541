"""The client's API object: one pooled HTTP connection, and nothing opened once it is closed."""

from __future__ import annotations

import pytest

from tests.tui.conftest import LiveServer
from tui_client.api import ConnectionLost, PlmApi


async def test_a_closed_api_opens_no_new_connection(live: LiveServer) -> None:
    """A worker that starts while the app shuts down must not leave a socket nobody closes."""
    api = PlmApi(live.graphql_url, live.tenant.admin_token)
    assert (await api.account()).license_limit == 3
    await api.close()
    with pytest.raises(ConnectionLost):
        await api.account()
    assert api._client is None and api._session is None
    await api.close()  # twice is fine
