"""Slack's published Web API rate limits, and the token bucket both sides count them with.

Slack limits each Web API method per app per workspace by tier (Tier 1: 1+ per minute,
Tier 2: 20+, Tier 3: 50+, Tier 4: 100+, each with some tolerance for bursts), and
`chat.postMessage` specially: about one message per second per channel, short bursts allowed,
under a workspace-wide cap it does not publish. Past a limit Slack answers HTTP 429 with a
`Retry-After` header in seconds.

The tiers below are the ones each method's reference page gives. The burst sizes and the
workspace-wide `chat.postMessage` cap are not published: the values here are this project's
assumptions, the same for the product's limiter and the sandbox that enforces them.
"""

from __future__ import annotations

from dataclasses import dataclass

POST_MESSAGE = "chat.postMessage"

TIER_PER_MINUTE = {1: 1.0, 2: 20.0, 3: 50.0, 4: 100.0}
# Bursts Slack tolerates on top of the steady rate (an assumption: a sixth of a minute's worth).
TIER_BURST = {1: 1.0, 2: 4.0, 3: 8.0, 4: 16.0}

METHOD_TIERS: dict[str, int] = {
    "api.test": 4,
    "auth.test": 4,
    "chat.update": 3,
    "chat.delete": 3,
    "chat.postEphemeral": 4,
    "chat.getPermalink": 4,
    "chat.startStream": 2,
    "chat.appendStream": 4,
    "chat.stopStream": 2,
    "reactions.add": 3,
    "reactions.remove": 2,
    "conversations.replies": 3,
    "conversations.history": 3,
    "conversations.info": 3,
    "conversations.list": 2,
    "users.info": 4,
    "assistant.threads.setStatus": 3,
    "agents.sessions.setStatus": 3,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.info": 4,
    "views.open": 4,
    "views.publish": 4,
    "views.update": 4,
}
# Methods not in the table are counted as Tier 3, the common one for writes.
DEFAULT_TIER = 3


@dataclass(frozen=True)
class Rate:
    """A steady rate (calls per minute) and the burst allowed on top of it."""

    per_minute: float
    burst: float

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    def scaled(self, share: float) -> Rate:
        """This rate's share (for one of several processes using one app token)."""
        return Rate(self.per_minute * share, max(1.0, self.burst * share))


# chat.postMessage: one per second per channel with a short burst, and a workspace-wide cap.
POST_PER_CHANNEL = Rate(60.0, 3.0)
POST_PER_WORKSPACE = Rate(600.0, 30.0)


def tier_of(method: str) -> int | None:
    """The method's tier; None for `chat.postMessage`, whose limits are special."""
    if method == POST_MESSAGE:
        return None
    return METHOD_TIERS.get(method, DEFAULT_TIER)


def method_rate(method: str) -> Rate:
    """The workspace-wide rate of a method (for `chat.postMessage`, its workspace cap)."""
    tier = tier_of(method)
    if tier is None:
        return POST_PER_WORKSPACE
    return Rate(TIER_PER_MINUTE[tier], TIER_BURST[tier])


class TokenBucket:
    """`burst` calls at once, then `per_second` steadily; time is given, never read."""

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate
        self.tokens = rate.burst
        self.updated = now

    def refill(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.rate.burst, self.tokens + elapsed * self.rate.per_second)
        self.updated = max(self.updated, now)
        return self.tokens

    def take(self, now: float, keep: float = 0.0) -> bool:
        """Take a token if one is there with `keep` more left over."""
        if self.refill(now) < 1.0 + keep:
            return False
        self.tokens -= 1.0
        return True

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0 if one is)."""
        missing = 1.0 - self.refill(now)
        return max(0.0, missing / self.rate.per_second) if missing > 0 else 0.0
