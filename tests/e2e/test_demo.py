"""The README's first command: ``plm serve --demo`` serves a demo account whose queue moves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import REPO, batch_body, free_port, sqlite_url

USAGE = "{ account { name licenseLimit licensesUsed pendingCount } users(first: 1) { totalCount } }"


def test_plm_serve_demo_prints_a_working_token_and_the_fleet_reports(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLM_")}
    env.update(PLM_DATABASE_URL=sqlite_url(tmp_path / "demo.db"), PLM_LOG_LEVEL="warning")
    # The log goes to a file: an unread pipe could fill and block the server.
    log_path = tmp_path / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--demo", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        base = f"http://127.0.0.1:{port}"
        assert info["graphqlUrl"] == f"{base}/graphql"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the demo server did not become healthy"
            time.sleep(0.05)
        # Ingestion answers (an unknown key is refused, not ignored).
        assert httpx.post(f"{base}/ingest", json=batch_body("PC", "x"), timeout=10).status_code == 401
        headers = {"Authorization": f"Bearer {info['adminToken']}"}

        def usage() -> dict[str, object]:
            r = httpx.post(f"{base}/graphql", json={"query": USAGE}, headers=headers, timeout=10)
            assert r.status_code == 200, r.text
            data: dict[str, object] = r.json()["data"]
            return data

        first = usage()
        assert first["account"]["licenseLimit"] == 40 and first["account"]["name"] == "Demo Corp"  # type: ignore[index]
        # The simulated fleet keeps reporting: people keep appearing.
        deadline = time.monotonic() + 60
        while usage()["users"]["totalCount"] <= first["users"]["totalCount"]:  # type: ignore[index,operator]
            assert time.monotonic() < deadline, "the demo fleet added nobody in a minute"
            time.sleep(0.5)
        assert usage()["account"]["licensesUsed"] > 0  # type: ignore[index,operator]
    finally:
        # SIGTERM mid-report must stop the server promptly (it once waited out two busy
        # timeouts on a write lock left behind by the cancelled fleet).
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                f"plm serve --demo ignored SIGTERM for 15 s:\n{log_path.read_text()[-4000:]}"
            ) from None
        finally:
            log.close()
            if proc.stdout is not None:
                proc.stdout.close()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()[-4000:]
