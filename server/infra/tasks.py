"""Stopping asyncio tasks on shutdown: let them finish, then cancel the late ones."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

log = logging.getLogger(__name__)


async def finish_or_cancel(tasks: Collection[asyncio.Task[Any]], grace: float, what: str) -> None:
    """Wait up to ``grace`` seconds for ``tasks``, cancel those still running, and wait for all.

    A task's failure is logged, not raised: shutdown goes on to stop everything else.
    """
    if not tasks:
        return
    _done, late = await asyncio.wait(tasks, timeout=grace)
    for task in late:
        log.warning("%s still running after %.0fs at shutdown; cancelling it", what, grace)
        task.cancel()
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, Exception):
            log.error("%s failed while stopping", what, exc_info=outcome)
