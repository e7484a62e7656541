"""``plm demo`` end to end, in a pseudo-terminal: the demo server starts in the background,
the client in front shows the live queue, and ``q`` stops both."""

from __future__ import annotations

import os
import select
import sys
import time

import pytest

from tests.support import REPO

pty = pytest.importorskip("pty")


def _read(fd: int, until: float) -> bytes:
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
    return out


def _server_children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for the server child")
def test_plm_demo_runs_the_client_against_the_demo_server_and_q_stops_both() -> None:
    pid, fd = pty.fork()
    if pid == 0:  # the child: plm demo, in a terminal of its own
        os.chdir(REPO)
        os.environ.update(TERM="xterm-256color", COLUMNS="120", LINES="36")
        os.environ.pop("PLM_DATABASE_URL", None)
        os.execv(sys.executable, [sys.executable, "-m", "server.cli", "demo"])
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (b"live" in seen and b"Demo Corp" in seen):
            seen += _read(fd, time.monotonic() + 0.5)
        assert b"Demo Corp" in seen and b"live" in seen, seen[-2000:]
        servers = _server_children(pid)
        assert len(servers) == 1  # plm serve --demo, in the background
        os.write(fd, b"q")
        _read(fd, time.monotonic() + 15)
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
        assert not os.path.exists(f"/proc/{servers[0]}")  # stopped and reaped by plm demo
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
