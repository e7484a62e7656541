"""The tree stays clean: ruff (lint and format) on everything, mypy (strict on ``server/`` and
``tui_client/``) as configured in pyproject."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy", "server", "tui_client", "bench"]],
    ids=["ruff", "ruff-format", "mypy"],
)
def test_the_linters_pass(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
