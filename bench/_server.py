"""``plm`` in a child process for the benches: the CLI, a server on a port, its CPU time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def plm(env: dict[str, str], *args: str) -> dict[str, str]:
    """Run a ``plm`` command that prints JSON (``account create``, ``admin create``)."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, str] = json.loads(out.stdout)
    return result


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``plm serve`` on ``port``, once ``/healthz`` answers.

    ``PLM_BENCH_PROFILE=FILE`` in the bench's environment runs the server under cProfile; it
    writes FILE when it stops.
    """
    profile = os.environ.get("PLM_BENCH_PROFILE")
    wrap = ["-m", "cProfile", "-o", profile] if profile else []
    proc = subprocess.Popen(
        [sys.executable, *wrap, "-m", "server.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
