"""Bookkeeping for the sandbox workspace: injected faults, recorded calls, 429s answered, live
change feed."""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JSON = dict[str, Any]


class Fault(BaseModel):
    """One injected fault for a Web API method, consumed `count` times (FIFO per method)."""

    model_config = ConfigDict(extra="forbid")

    method: str = Field(min_length=1)
    count: int = Field(default=1, ge=1)
    status: int | None = Field(default=None, ge=400, le=599)
    error: str | None = None
    retry_after: float | None = Field(default=None, ge=0)
    delay: float = Field(default=0.0, ge=0)


class FaultQueue:
    """Pending faults, kept per Web API method in the order they were added."""

    def __init__(self) -> None:
        self._by_method: dict[str, deque[Fault]] = {}

    def add(self, fault: Fault) -> None:
        self._by_method.setdefault(fault.method, deque()).append(fault)

    def take(self, method: str) -> Fault | None:
        """Consume one use of the oldest fault queued for `method`."""
        queue = self._by_method.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.count <= 1:
            queue.popleft()
        else:
            queue[0] = fault.model_copy(update={"count": fault.count - 1})
        return fault.model_copy(update={"count": 1})

    def clear(self) -> None:
        self._by_method.clear()

    def pending(self) -> list[JSON]:
        return [f.model_dump() for queue in self._by_method.values() for f in queue]


class EventHub:
    """Fan-out of workspace changes to Server-Sent Events subscribers (the page)."""

    def __init__(self, max_backlog: int = 1000) -> None:
        self._queues: set[asyncio.Queue[JSON | None]] = set()
        self._max_backlog = max_backlog
        self.closed = False
        # Called with each event's kind: what else must follow every change (the state file).
        self.listeners: list[Callable[[str], None]] = []

    def subscribe(self) -> asyncio.Queue[JSON | None]:
        queue: asyncio.Queue[JSON | None] = asyncio.Queue(self._max_backlog)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[JSON | None]) -> None:
        self._queues.discard(queue)

    def publish(self, kind: str, data: JSON) -> None:
        event = {"type": kind, **data}
        for listener in self.listeners:
            listener(kind)
        for queue in list(self._queues):
            if queue.full():
                # A stalled page must not grow memory forever; it can reload.
                self._queues.discard(queue)
                continue
            queue.put_nowait(event)

    def close(self) -> None:
        """Tell every subscriber to finish (used at shutdown so streams end promptly)."""
        self.closed = True
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)


class RateLimitCounts:
    """The 429s answered for Slack's rate limits, per method, and how many of them refused a
    call made while an earlier 429's `Retry-After` was still running (a client not waiting)."""

    def __init__(self) -> None:
        self.by_method: Counter[str] = Counter()
        self.during_retry_after = 0

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    def count(self, method: str, during_retry_after: bool) -> None:
        self.by_method[method] += 1
        if during_retry_after:
            self.during_retry_after += 1

    def clear(self) -> None:
        self.by_method.clear()
        self.during_retry_after = 0

    def as_json(self) -> JSON:
        return {
            "rate_limited": self.total,
            "by_method": dict(self.by_method),
            "during_retry_after": self.during_retry_after,
        }


class Records:
    """What happened, for tests: every Web API call, delivery attempt, response_url post and
    rate-limited call."""

    def __init__(self) -> None:
        self.calls: list[JSON] = []
        self.rate_limited = RateLimitCounts()
        self.deliveries: list[JSON] = []
        self.responses: list[JSON] = []
        self.ephemerals: list[JSON] = []
        # response_url id -> what it answers (channel, user, message) for replace/delete.
        self.response_targets: dict[str, JSON] = {}

    def clear(self) -> None:
        self.response_targets.clear()
        self.calls.clear()
        self.rate_limited.clear()
        self.deliveries.clear()
        self.responses.clear()
        self.ephemerals.clear()
