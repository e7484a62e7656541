"""Every contract operation over HTTP against a running ``plm serve`` (a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support import REPO, batch_body, server_process, sqlite_url

QUERIES = """
query Everything($id: ID!) {
  me { id email name role notifyOnPending }
  account { id name licenseLimit licensesUsed licensesAvailable pendingCount manualReview retentionDays }
  pendingUsers(first: 10, orderBy: NAME_ASC) { totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id displayName agents { id user { id } } pending { reason retainedEventCount dataExpiresAt } } } }
  users(first: 10, status: LICENSED) { totalCount edges { node { id status licensedAt } } }
  user(id: $id) { id displayName }
  agents(first: 10, search: "pc") { totalCount edges { node { id deviceName } } }
  activityReport(from: "2026-01-01", to: "2026-12-31") { from to rows { activeSeconds topApps { app } } }
  queueMetrics(days: 30) { pendingCount resolvedCount resolvedByAction { action count } }
  auditLog(first: 5) { totalCount edges { node { action actor { id } detail } } }
}
"""


def plm(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_every_operation_against_plm_serve(tmp_path: Path) -> None:
    env = {"PLM_DATABASE_URL": sqlite_url(tmp_path / "serve.db"), "PATH": "/usr/bin:/bin"}
    with server_process(env) as server:
        full_env = server.env
        account = plm(full_env, "account", "create", "--name", "E2E", "--licenses", "2")
        admin = plm(
            full_env, "admin", "create", "--account", account["id"], "--email", "a@e2e.example", "--name", "A"
        )
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(5):
                response = client.post(
                    "/ingest",
                    json=batch_body(f"PC{i}", f"u{i}", events=2),
                    headers={"Authorization": f"Bearer {account['ingestKey']}"},
                )
                assert response.status_code == 202
            headers = {"Authorization": f"Bearer {admin['token']}"}

            def gql(query: str, **variables: Any) -> dict[str, Any]:
                response = client.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                assert "errors" not in body, body
                return body["data"]

            data = gql(QUERIES, id="1")
            assert data["account"]["pendingCount"] == 3 and data["user"]["id"] == "1"
            pending = [e["node"]["id"] for e in data["pendingUsers"]["edges"]]
            agent_of_user_2 = next(
                e["node"]["id"] for e in data["agents"]["edges"] if e["node"]["deviceName"] == "PC1"
            )

            mutations = [
                (
                    "updateAccountSettings",
                    "mutation { updateAccountSettings(input: {licenseLimit: 3, manualReview: false}) { account { licenseLimit } errors { code } } }",
                    {},
                ),
                (
                    "approvePendingUsers",
                    "mutation($ids: [ID!]!) { approvePendingUsers(input: {userIds: $ids}) { approved { id } errors { code } } }",
                    {"ids": [pending[0]]},
                ),
                (
                    "assignPendingUser",
                    'mutation($p: ID!) { assignPendingUser(input: {pendingUserId: $p, targetUserId: "1"}) { user { id } errors { code } } }',
                    {"p": pending[1]},
                ),
                (
                    "mergePendingUser",
                    "mutation($p: ID!, $a: ID!) { mergePendingUser(input: {pendingUserId: $p, targetAgentId: $a}) { agent { id } errors { code } } }",
                    {"p": pending[2], "a": agent_of_user_2},
                ),
                (
                    "removeUsers",
                    'mutation { removeUsers(input: {userIds: ["1"], doNotTrack: true}) { removedUserIds errors { code } } }',
                    {},
                ),
                (
                    "updateNotificationSettings",
                    "mutation { updateNotificationSettings(input: {notifyOnPending: false}) { me { notifyOnPending } errors { code } } }",
                    {},
                ),
            ]
            for name, query, variables in mutations:
                assert gql(query, **variables)[name]["errors"] == [], name
            after = gql(QUERIES, id="1")
            assert after["account"]["pendingCount"] == 0 and after["user"] is None
            assert after["queueMetrics"]["resolvedCount"] == 3
            assert client.get("/graphql", headers={"Accept": "text/html"}).status_code == 200
