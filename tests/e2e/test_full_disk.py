"""A full disk under SQLite: writes fail, so the server says 503 and is not ready (docs/api.md).

``/healthz`` used to read the database and answer 200 while every write failed. Now it is
liveness only, and ``/readyz`` commits a write. A real ``plm serve`` keeps its SQLite file
on a small tmpfs that the test fills and empties again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.infra.db import Database
from tests.support import ServerProcess, Tenant, batch_body, make_tenant, sqlite_url

LIMIT = "mutation { updateAccountSettings(input: {licenseLimit: 9}) { errors { code } } }"


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 3 MiB filesystem of the test's own (needs root, as CI has)."""
    where = Path(tempfile.mkdtemp(prefix="plm-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a small filesystem here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)
        where.rmdir()


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


def test_a_full_disk_is_a_503_and_not_ready_until_space_returns(small_disk: Path) -> None:
    url = sqlite_url(small_disk / "plm.db")

    async def tenant() -> Tenant:
        db = Database(url)
        await db.migrate()
        try:
            return await make_tenant(db)
        finally:
            await db.dispose()

    t = asyncio.run(tenant())
    proc = ServerProcess({"PLM_DATABASE_URL": url}).start()
    key = {"Authorization": f"Bearer {t.ingest_key}"}
    admin = {"Authorization": f"Bearer {t.admin_token}"}
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as http:
            assert http.post("/ingest", json=batch_body("PC-1", "u1"), headers=key).status_code == 202
            assert http.get("/readyz").status_code == 200

            filler = fill(small_disk)
            big = batch_body("PC-2", "u2", batch_id="while-full", events=500)
            response = http.post("/ingest", json=big, headers=key)
            assert response.status_code == 503 and response.headers["Retry-After"], response.text
            response = http.post("/graphql", json={"query": LIMIT}, headers=admin)
            assert response.status_code == 503 and response.headers["Retry-After"], response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            deadline = time.monotonic() + 10  # past the 1 s for which a readiness result is reused
            while (ready := http.get("/readyz")).status_code == 200:
                assert time.monotonic() < deadline, "still ready on a full disk"
                time.sleep(0.1)
            assert ready.status_code == 503 and ready.headers["Retry-After"]
            assert http.get("/healthz").status_code == 200

            filler.unlink()
            deadline = time.monotonic() + 10
            while http.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready again once the disk has room"
                time.sleep(0.1)
            # The agent retries the same batch; it is stored once.
            response = http.post("/ingest", json=big, headers=key)
            assert response.status_code == 202 and response.json()["duplicate"] is False, response.text
            response = http.post("/graphql", json={"query": LIMIT}, headers=admin)
            assert (
                response.status_code == 200
                and response.json()["data"]["updateAccountSettings"]["errors"] == []
            )
    finally:
        proc.stop()
    output = proc.output()
    assert "Traceback" not in output, output[-4000:]
    assert not re.search(r'HTTP/1.1" 500', output), output[-4000:]
