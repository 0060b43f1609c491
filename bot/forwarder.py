"""Forwards user messages to their session in Restate with one-way, idempotent sends."""

from __future__ import annotations

from urllib.parse import quote

import aiohttp
import structlog

from common.contract import (
    AGENT_MESSAGE,
    AGENT_SERVICE,
    IncomingMessage,
    message_idempotency_key,
    thread_key,
)

log = structlog.get_logger(__name__)


class ForwardError(RuntimeError):
    """The ingress did not take the message; Slack's retry will bring it again."""


class RestateForwarder:
    """Sends `CodingAgent/{key}/message` through the ingress, never waiting for the agent."""

    def __init__(self, session: aiohttp.ClientSession, ingress_url: str) -> None:
        self._session = session
        self._ingress = ingress_url.rstrip("/")

    async def forward(self, msg: IncomingMessage) -> str:
        """Enqueue the message durably; returns the invocation id."""
        key = thread_key(msg.team_id, msg.channel_id, msg.thread_ts)
        url = f"{self._ingress}/{AGENT_SERVICE}/{quote(key, safe='')}/{AGENT_MESSAGE}/send"
        headers = {
            "Idempotency-Key": message_idempotency_key(msg.channel_id, msg.ts),
            "Content-Type": "application/json",
        }
        try:
            async with self._session.post(url, data=msg.model_dump_json(), headers=headers) as resp:
                body = await resp.json(content_type=None)
                if resp.status >= 300:
                    raise ForwardError(f"ingress answered {resp.status}: {str(body)[:300]}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ForwardError(f"ingress unreachable: {exc!r}") from exc
        invocation = str(body.get("invocationId", ""))
        log.info(
            "message_forwarded",
            thread=key,
            invocation=invocation,
            status=body.get("status"),
        )
        return invocation
