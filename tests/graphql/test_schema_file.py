"""schema.graphql is exported from the code and keeps the public contract."""

from __future__ import annotations

import subprocess
import sys

from server.graphql.schema import SCHEMA_FILE, sdl
from tests.support import REPO

CHECK = REPO.parent / "shared" / "tools" / "check_contract.py"


def test_schema_graphql_is_fresh() -> None:
    assert SCHEMA_FILE.read_text() == sdl(), "schema.graphql is stale: run `plm export-schema`"


def test_schema_graphql_keeps_the_contract() -> None:
    done = subprocess.run(
        [sys.executable, str(CHECK), "schema.graphql"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_export_schema_command_writes_the_sdl(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "schema.graphql"
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "export-schema", "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_text() == sdl()
