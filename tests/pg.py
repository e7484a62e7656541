"""A throwaway PostgreSQL server for the test session, when its binaries are installed.

``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user.
Each test gets a fresh database cloned from a migrated template (``CREATE DATABASE …
TEMPLATE``), which takes milliseconds. Durability settings are off: these tests are about
behaviour, and the crash-safety tests run on SQLite files.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from server.infra.db import Database
from tests.support import free_port


def binaries() -> Path | None:
    """The directory holding ``initdb`` and ``postgres``, or ``None``."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).parent if found and Path(found).with_name("postgres").exists() else None


class PostgresServer:
    def __init__(self, durable: bool = False) -> None:
        bindir = binaries()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.dir = Path(tempfile.mkdtemp(prefix="plm-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.dir, self.user)
        data = self.dir / "data"
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )
        self.log = open(self.dir / "server.log", "wb")  # noqa: SIM115
        # Benchmarks want PostgreSQL's real durability, to compare with SQLite's synchronous=FULL.
        fast = (
            []
            if durable
            else ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        )
        self._argv = [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-k",
            str(self.dir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=400",
            *fast,
        ]
        self.proc = self._spawn()
        self._ids = itertools.count()
        asyncio.run(self._wait_ready())
        self.template = "plm_template"
        asyncio.run(self._make_template())

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._argv, stdout=self.log, stderr=subprocess.STDOUT, user=self.user)

    # Faults, for outage tests: the server stops, restarts, or freezes (as a paused VM).

    def halt(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected), keeping its data."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)

    def start(self) -> None:
        """Start the halted server again on the same port and data; returns once it accepts."""
        self.proc = self._spawn()
        asyncio.run(self._wait_ready())

    def _processes(self) -> list[int]:
        """The postmaster and its children (each backend is in a session of its own)."""
        pids = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    pids.append(int(stat.parent.name))
        return pids

    def pause(self) -> None:
        """Freeze every process of the server: connections stay open, nothing answers."""
        for pid in self._processes():  # the postmaster first: no new backend after it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(self.dsn())
            except (OSError, asyncpg.PostgresError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.dir / "server.log").read_text()) from None
                await asyncio.sleep(0.05)
            else:
                await conn.close()
                return

    async def execute(self, sql: str) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _make_template(self) -> None:
        await self.execute(f"CREATE DATABASE {self.template}")
        db = Database(self.url(self.template))
        await db.migrate()
        await db.dispose()

    def create_database(self) -> str:
        """A fresh, migrated database; returns its SQLAlchemy URL."""
        name = f"t{os.getpid()}_{next(self._ids)}"
        asyncio.run(self.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}"))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        asyncio.run(self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.resume()  # a paused server cannot stop
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
