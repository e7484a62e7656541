"""schema.graphql is exported from the code, and keeps the workspace's contract where there is one.

The released API is guarded by the project itself (tests/contract/test_released_api.py).
The contract check here is an extra: it needs the workspace the project was developed in,
with its shared contract and checker beside the repository, and is skipped anywhere else
(a fresh clone, a user's machine).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from server.graphql.schema import SCHEMA_FILE, sdl
from tests.support import REPO

WORKSPACE = REPO.parent / "shared"
CONTRACT = WORKSPACE / "contract" / "contract.graphql"
CHECK = WORKSPACE / "tools" / "check_contract.py"


def test_schema_graphql_is_fresh() -> None:
    assert SCHEMA_FILE.read_text() == sdl(), "schema.graphql is stale: run `plm export-schema`"


def test_schema_graphql_keeps_the_contract() -> None:
    missing = [p for p in (CONTRACT, CHECK) if not p.exists()]
    if missing:
        pytest.skip(
            "no workspace contract beside this repository "
            f"({', '.join(str(p) for p in missing)} not found); "
            "the released API is checked by tests/contract/test_released_api.py"
        )
    done = subprocess.run(
        [sys.executable, str(CHECK), "schema.graphql", str(CONTRACT)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
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


# Enums whose values mean something a client cannot guess from the name: each is explained.
EXPLAINED_ENUMS = ("PendingReason", "AutoApproveMode", "SuggestionKind", "WebhookFormat", "DeliveryStatus")


@pytest.mark.parametrize("name", EXPLAINED_ENUMS)
def test_every_value_of_a_behavioural_enum_is_described(name: str) -> None:
    from graphql import GraphQLEnumType, build_schema

    enum = build_schema(sdl()).type_map[name]
    assert isinstance(enum, GraphQLEnumType)
    undescribed = [value for value, v in enum.values.items() if not (v.description or "").strip()]
    assert not undescribed, f"{name} values without a description: {undescribed}"
