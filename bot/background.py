"""Work a listener starts after Slack's ack, so the ack never waits for it, within bounds.

At most `max_running` jobs run at once (each may hold a connection for up to a minute); up
to `max_waiting` more wait, each at most `wait_seconds`, for a turn. Beyond that a job is
refused at once and logged: a Slack retry or the person's next click brings it again, and the
bot keeps answering Slack instead of piling up work it cannot finish.

Cosmetic jobs (the "received" reaction) have slots of their own: they wait for Slack's
tightest rate limits, and fifty mentions at once must not keep a person's status reply or
refusal waiting for a slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

from bot import metrics

log = structlog.get_logger(__name__)

MAX_RUNNING = 32
MAX_COSMETIC = 8
MAX_WAITING = 256
WAIT_SECONDS = 30.0
# How long shutdown lets running jobs finish before it cancels them.
CLOSE_GRACE_SECONDS = 5.0


class Background:
    """Runs coroutines as tasks, bounded, keeps them referenced until done, logs failures."""

    def __init__(
        self,
        max_running: int = MAX_RUNNING,
        max_waiting: int = MAX_WAITING,
        wait_seconds: float = WAIT_SECONDS,
        max_cosmetic: int = MAX_COSMETIC,
    ) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_running)
        self._cosmetic = asyncio.Semaphore(max_cosmetic)
        self._max_jobs = max_running + max_waiting
        self._wait_seconds = wait_seconds

    def spawn(self, coro: Coroutine[Any, Any, None], what: str, cosmetic: bool = False) -> bool:
        """Start `coro` after the ack; False (and a log) when too much work is queued.
        `cosmetic` work takes its own slots, never one a person's answer needs."""
        if len(self._tasks) >= self._max_jobs:
            coro.close()
            log.warning("background_full", what=what, jobs=len(self._tasks))
            metrics.background_dropped("full")
            return False
        slots = self._cosmetic if cosmetic else self._slots
        task = asyncio.create_task(self._run(coro, what, slots))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, what, coro))
        return True

    async def _run(
        self, coro: Coroutine[Any, Any, None], what: str, slots: asyncio.Semaphore
    ) -> None:
        try:
            async with asyncio.timeout(self._wait_seconds):
                await slots.acquire()
        except TimeoutError:
            log.warning("background_gave_up", what=what, waited_seconds=self._wait_seconds)
            metrics.background_dropped("waited")
            return
        try:
            await coro
        finally:
            slots.release()

    def _done(self, task: asyncio.Task[None], what: str, coro: Coroutine[Any, Any, None]) -> None:
        # A job that never got its turn (gave up, or cancelled at shutdown) is closed unrun.
        coro.close()
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background_work_failed", what=what, error=repr(task.exception()))

    async def close(self, grace_seconds: float = CLOSE_GRACE_SECONDS) -> None:
        """At shutdown: let running jobs finish for a moment, then cancel what is left."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.warning("background_cancelled_at_shutdown", jobs=len(pending))
