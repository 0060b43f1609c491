"""A per-process bound on open model streams, with a bounded wait for a free slot.

Every open stream spends money; with open allowlists anyone can start many runs at once. A call
waits for a slot at most `queue_seconds`, then is refused (`SlotsBusy`); a call cancelled while
it waits (an interruption) leaves the queue at once, and a slot is held only while its stream
is open, so a cancelled stream frees its slot as it closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

# (event, in_use, waiting), event one of "waiting", "acquired", "released", "left", "refused".
Observe = Callable[[str, int, int], None]


class SlotsBusy(Exception):
    """No slot came free within the bounded wait."""

    def __init__(self, waited_seconds: float) -> None:
        super().__init__(f"no model slot came free within {waited_seconds:g} s")
        self.waited_seconds = waited_seconds


class ModelSlots:
    """At most `limit` holders at once (0: no limit); the others wait, FIFO, up to
    `queue_seconds` (0: refused at once when none is free)."""

    def __init__(self, limit: int, queue_seconds: float, observe: Observe | None = None) -> None:
        if limit < 0 or queue_seconds < 0:
            raise ValueError("limit and queue_seconds must not be negative")
        self.limit = limit
        self.queue_seconds = queue_seconds
        # asyncio's semaphore is FIFO and, in the holder's own task, gives a slot handed to a
        # waiter cancelled in the same instant back to the next one: no slot ever leaks.
        self._free = asyncio.Semaphore(limit) if limit else None
        self._observe = observe
        self.in_use = 0
        self.waiting = 0

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold a slot for the body; raises `SlotsBusy` when none came free in time, and
        `CancelledError` at once when the caller is cancelled while waiting."""
        await self._acquire()
        self.in_use += 1
        self._notify("acquired")
        try:
            yield
        finally:
            self.in_use -= 1
            if self._free is not None:
                self._free.release()
            self._notify("released")

    async def _acquire(self) -> None:
        free = self._free
        if free is None:
            return
        if not free.locked():
            await free.acquire()  # returns at once: a slot is free and nobody waits before us
            return
        timed_out = self.queue_seconds == 0
        if not timed_out:
            timed_out = await self._wait(free)
        if timed_out:
            self._notify("refused")
            raise SlotsBusy(self.queue_seconds)

    async def _wait(self, free: asyncio.Semaphore) -> bool:
        """Wait in line for a slot; True when the bound passed first."""
        self.waiting += 1
        self._notify("waiting")
        try:
            async with asyncio.timeout(self.queue_seconds):
                await free.acquire()
        except TimeoutError:
            self.waiting -= 1
            return True
        except BaseException:  # cancelled (an interruption): out of the line at once
            self.waiting -= 1
            self._notify("left")
            raise
        self.waiting -= 1
        return False

    def _notify(self, event: str) -> None:
        if self._observe is not None:
            self._observe(event, self.in_use, self.waiting)
