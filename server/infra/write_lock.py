"""SQLite's one writer in this process, across event loops on different threads."""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class WriteLock:
    """SQLite's one writer in this process, shared by event loops on different threads.

    An asyncio lock, first come first served, that a coroutine on any loop awaits without
    blocking its loop: the ingest group commit writes from a thread of its own
    (:mod:`server.infra.group_commit`) while requests write from the main loop. A released
    lock is handed to the next waiter through its own loop (``call_soon_threadsafe``).
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    def locked(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._held:
                self._held = True
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except BaseException:
            with self._mutex:
                try:
                    self._waiters.remove((loop, waiter))
                    handed = False
                except ValueError:
                    handed = True
            # Handed over already: release it unless _grant will see the cancelled waiter.
            if handed and waiter.done() and not waiter.cancelled():
                self.release()
            raise

    def release(self) -> None:
        while True:
            with self._mutex:
                if not self._waiters:
                    self._held = False
                    return
                loop, waiter = self._waiters.popleft()
            try:
                loop.call_soon_threadsafe(self._grant, waiter)
                return
            except RuntimeError:  # that waiter's loop is closed: nobody will take it there
                continue

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.cancelled():  # its task gave up after it was handed the lock: pass it on
            self.release()
        else:
            waiter.set_result(None)
