"""``plm demo``: the ``--demo`` server in the background and the admin client in front.

The server runs as a child process (``plm serve --demo``) on a free port with its log in a
file, so the terminal belongs to the client; its first stdout line carries the admin token.
Quitting the client stops the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_line(stream: IO[str], timeout: float) -> str | None:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def _wait_healthy(base_url: str, proc: subprocess.Popen[Any], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    return False


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_demo(port: int | None = None, host: str = "127.0.0.1") -> int:
    """Start the demo server, run the client signed in to the demo account, stop both."""
    port = port or _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="plm-demo-"))
    env = dict(os.environ)
    # A throwaway database unless the newcomer chose one: the demo never touches ./plm.db.
    env.setdefault("PLM_DATABASE_URL", f"sqlite+aiosqlite:///{workdir / 'demo.db'}")
    log_path = workdir / "server.log"
    sys.stderr.write(f"Starting the demo server on {host}:{port} (log: {log_path})…\n")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--demo", "--host", host, "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = _first_line(proc.stdout, START_TIMEOUT)
            if not line:
                sys.stderr.write(f"plm demo: the server did not start; see {log_path}\n")
                return 1
            info = json.loads(line)
            if not _wait_healthy(f"http://{host}:{port}", proc, START_TIMEOUT):
                sys.stderr.write(f"plm demo: the server did not become healthy; see {log_path}\n")
                return 1
            from tui_client.app import AdminApp, log_to_textual

            log_to_textual()
            AdminApp(info["graphqlUrl"], info["adminToken"]).run()
        finally:
            _stop(proc)
            with contextlib.suppress(OSError):
                if proc.stdout is not None:
                    proc.stdout.close()
    sys.stderr.write(f"Demo stopped. The server's log is in {log_path}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="plm demo", description="the demo server and the admin client")
    parser.add_argument("--port", type=int, default=None, help="the server's port (default: a free one)")
    args = parser.parse_args(argv)
    return run_demo(port=args.port)


if __name__ == "__main__":
    sys.exit(main())
