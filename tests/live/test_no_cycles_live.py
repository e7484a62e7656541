"""A live event's rendering leaves no reference cycle: its context, loaders and rows go when
it is sent (see tests/graphql/test_no_cycles.py for why that matters)."""

from __future__ import annotations

from server.infra.db import Database
from tests.graphql.test_no_cycles import cyclic_garbage
from tests.live.helpers import LiveServer, Subscriber
from tests.support import FakeClock, make_tenant


async def test_live_events_leave_their_objects_to_reference_counting(
    server: LiveServer, db: Database, clock: FakeClock
) -> None:
    tenant = await make_tenant(db, licenses=1)
    async with Subscriber(server, tenant.admin_token, tenant.account_id) as sub:
        await server.ingest(tenant.ingest_key, "PC-ANN", "ann")
        for name in ("bob", "cy"):  # once first: parsing and validating leave one-time cycles
            clock.advance(minutes=1)
            await server.ingest(tenant.ingest_key, f"PC-{name.upper()}", name)
            await sub.next()
        with cyclic_garbage() as found:
            for name in ("dee", "eve", "fay"):
                clock.advance(minutes=1)
                await server.ingest(tenant.ingest_key, f"PC-{name.upper()}", name)
                assert (await sub.next())["action"] == "ENTERED"
    assert not found, found
