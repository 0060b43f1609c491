"""Forwards user messages to their session in Restate with one-way, idempotent sends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from pydantic import BaseModel

from bot.restate_sql import RestateError, RestateSql, literal
from common.contract import (
    AGENT_MESSAGE,
    AGENT_SERVICE,
    AGENT_SHIP,
    AGENT_STOP,
    IncomingMessage,
    ShipRequest,
    StopAck,
    StopRequest,
    message_idempotency_key,
    thread_key,
)
from common.session_state import SESSION_STATE_KEY, Session, SessionStatus

log = structlog.get_logger(__name__)

# Slack wants an answer within 3 s: reads give up well before that.
READ_TIMEOUT = aiohttp.ClientTimeout(total=2.0)
# A stop waits for the old task's bounded cleanup.
STOP_TIMEOUT = aiohttp.ClientTimeout(total=60.0)
_SLACK_ID = re.compile(r"[A-Z0-9]{1,32}")
# What one channel listing may ask Restate for: a page of rows, not too deep into the list.
MAX_ROWS = 25
MAX_OFFSET = 1_000


class ForwardError(RuntimeError):
    """The ingress did not take the message; Slack's retry will bring it again."""


@dataclass(frozen=True)
class SessionsPage:
    """Some of a channel's sessions, and how many the channel has in all."""

    sessions: list[Session]
    total: int


class RestateForwarder:
    """The bot's way into Restate: one-way sends for work, quick shared reads for status.

    `session` carries the quick requests Slack's ack waits for (sends, reads, each within
    2 s); `calls_session` the calls that wait up to a minute (stop). Serving Slack, give them
    separate sessions: calls that wait then never hold the connections a send needs.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ingress_url: str,
        admin_url: str | None = None,
        calls_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._session = session
        self._calls = calls_session or session
        self._ingress = ingress_url.rstrip("/")
        self._sql = RestateSql(session, admin_url or "", timeout=READ_TIMEOUT.total or 2.0)

    async def ingress_ready(self) -> bool:
        """Whether the Restate ingress answers its health endpoint (the bot's readiness)."""
        try:
            async with self._session.get(
                f"{self._ingress}/restate/health", timeout=READ_TIMEOUT
            ) as resp:
                return resp.status < 300
        except (aiohttp.ClientError, TimeoutError):
            return False

    def _url(self, key: str, handler: str, send: bool = False) -> str:
        suffix = "/send" if send else ""
        return f"{self._ingress}/{AGENT_SERVICE}/{quote(key, safe='')}/{handler}{suffix}"

    async def _post(
        self,
        url: str,
        body: str | None,
        headers: dict[str, str] | None = None,
        limit: aiohttp.ClientTimeout = READ_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
    ) -> dict[str, Any]:
        try:
            async with (session or self._session).post(
                url,
                data=body,
                headers={
                    **({"Content-Type": "application/json"} if body is not None else {}),
                    **(headers or {}),
                },
                timeout=limit,
                # Restate refuses a content type on handlers that take no input.
                skip_auto_headers=["Content-Type"] if body is None else None,
            ) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 300:
                    raise ForwardError(f"ingress answered {resp.status}: {str(data)[:300]}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ForwardError(f"ingress unreachable: {exc!r}") from exc
        return dict(data) if isinstance(data, dict) else {}

    async def status(self, key: str) -> SessionStatus:
        """The session's status from its shared handler: never waits behind a running task."""
        return SessionStatus.model_validate(await self._post(self._url(key, "status"), None))

    async def stop(self, key: str, request: StopRequest, idempotency_key: str) -> StopAck:
        """Stop the session's task and wait for the answer (the task's cleanup tells the thread).

        Called off the ack path: it waits for the old task's bounded cleanup.
        """
        return StopAck.model_validate(await self.call(key, AGENT_STOP, request, idempotency_key))

    async def ship(self, key: str, request: ShipRequest, idempotency_key: str) -> None:
        """Ask the session to ship its work (one-way: the thread hears how it went)."""
        headers = {"Idempotency-Key": idempotency_key}
        await self._post(self._url(key, AGENT_SHIP, send=True), request.model_dump_json(), headers)

    async def call(
        self, key: str, handler: str, request: BaseModel, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Call one of the session's handlers and wait for its answer (stop, reset)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self._post(
            self._url(key, handler),
            request.model_dump_json(),
            headers,
            limit=STOP_TIMEOUT,
            session=self._calls,
        )

    async def channel_sessions(
        self, team_id: str, channel_id: str, limit: int, offset: int = 0
    ) -> SessionsPage:
        """`limit` of the channel's sessions after the first `offset`, most recently active
        first: Restate sorts and counts, and sends only the rows asked for."""
        # Restate's SQL endpoint takes no parameters: only plain Slack ids reach the query.
        if not (_SLACK_ID.fullmatch(team_id) and _SLACK_ID.fullmatch(channel_id)):
            raise ValueError("not a Slack team or channel id")
        if not (1 <= limit <= MAX_ROWS and 0 <= offset <= MAX_OFFSET):
            raise ValueError(f"a listing reads 1 to {MAX_ROWS} rows from 0 to {MAX_OFFSET} in")
        prefix = f"{team_id}:{channel_id}:"
        query = (
            "SELECT service_key, value_utf8, COUNT(*) OVER () AS total FROM state "  # noqa: S608
            f"WHERE service_name = {literal(AGENT_SERVICE)} AND key = {literal(SESSION_STATE_KEY)} "
            f"AND service_key LIKE {literal(prefix + '%')} "
            "ORDER BY json_get_float(value_utf8, 'updated_at') DESC "
            f"LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        try:
            rows = await self._sql.query(query)
        except RestateError as exc:
            raise ForwardError(str(exc)) from exc
        sessions = []
        for row in rows:
            try:
                sessions.append(Session.model_validate_json(row.get("value_utf8") or "{}"))
            except ValueError:
                log.warning("unreadable_session_state", key=row.get("service_key"))
        return SessionsPage(sessions, int(rows[0].get("total") or 0) if rows else 0)

    async def forward(self, msg: IncomingMessage) -> str:
        """Enqueue the message durably; returns the invocation id."""
        key = thread_key(msg.team_id, msg.channel_id, msg.thread_ts)
        headers = {"Idempotency-Key": message_idempotency_key(msg.channel_id, msg.ts)}
        body = await self._post(
            self._url(key, AGENT_MESSAGE, send=True), msg.model_dump_json(), headers
        )
        invocation = str(body.get("invocationId", ""))
        log.info(
            "message_forwarded",
            thread=key,
            invocation=invocation,
            status=body.get("status"),
        )
        return invocation
