"""A minimal keep-alive HTTP/1.1 load client over asyncio streams.

httpx costs the client about as much CPU per request as the server spends; on a 2-core
machine that would measure the client. Requests here are pre-encoded bytes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def encode_post(path: str, body: dict[str, Any] | bytes, headers: dict[str, str]) -> bytes:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + payload


def encode_get(path: str, headers: dict[str, str] | None = None) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: bench\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return head.encode() + b"\r\n"


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)

    def add(self, status: int, latency: float, body: bytes, keep_body: bool) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if keep_body:
            self.bodies.append(body)

    def pct(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
        else:
            body = await self.reader.readexactly(length)
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def run_load(
    host: str, port: int, requests: Any, *, clients: int, seconds: float, keep_bodies: bool = False
) -> tuple[Stats, float]:
    """``requests(i)`` gives the i-th request's bytes; ``clients`` loops for ``seconds``."""
    stats = Stats()
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = Conn(host, port)
        try:
            while time.perf_counter() < deadline:
                raw = requests(next(counter))
                if raw is None:
                    return
                t = time.perf_counter()
                status, body = await conn.request(raw)
                stats.add(status, time.perf_counter() - t, body, keep_bodies)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return stats, time.perf_counter() - start


def stamp_commits(app: Any, stamps: str, line: Callable[[Any, float], str]) -> None:
    """Append ``line(event, time.time())`` to the file ``stamps`` for each queue event ``app``
    commits, when it commits (before delivery): the start of a commit-to-receipt latency."""
    broadcaster = app.state.services.db.broadcaster
    out = open(stamps, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    deliver = broadcaster.committed

    def committed(events: list[Any]) -> None:
        now = time.time()
        for e in events:
            out.write(line(e, now))
        deliver(events)

    broadcaster.committed = committed
