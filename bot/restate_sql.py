"""A small client of Restate's admin SQL API (`POST /query`), and safe SQL literals.

Restate's query endpoint takes no bound parameters, so every value placed in a query goes
through `literal` (strings) or is an int the caller built; user text never reaches SQL raw.
"""

from __future__ import annotations

from typing import Any

import aiohttp


class RestateError(RuntimeError):
    """Restate did not answer a query or a call; the detail is for the log, not the page."""


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def like_contains(text: str) -> str:
    """A LIKE pattern (with `ESCAPE '\\'`) matching `text` anywhere, wildcards in it escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return literal(f"%{escaped}%")


class RestateSql:
    """Runs queries against the admin API with one shared HTTP session and a bounded time."""

    def __init__(self, http: aiohttp.ClientSession, admin_url: str, timeout: float = 10.0) -> None:
        self._http = http
        self._admin = admin_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    @property
    def admin_url(self) -> str:
        return self._admin

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """The rows of `sql`, as JSON objects (NULL columns are left out by Restate)."""
        try:
            async with self._http.post(
                f"{self._admin}/query",
                json={"query": sql},
                headers={"Accept": "application/json"},
                timeout=self._timeout,
            ) as resp:
                body = await resp.json(content_type=None)
                if resp.status != 200:
                    raise RestateError(f"query answered {resp.status}: {str(body)[:300]}")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RestateError(f"admin API unreachable: {exc!r}") from exc
        return [dict(row) for row in body.get("rows", [])]

    async def one(self, sql: str) -> dict[str, Any]:
        """The first row of `sql`, or an empty dict."""
        rows = await self.query(sql)
        return rows[0] if rows else {}

    async def get_json(self, path: str) -> Any:
        """A GET on the admin API (e.g. `/deployments`)."""
        try:
            async with self._http.get(f"{self._admin}{path}", timeout=self._timeout) as resp:
                if resp.status != 200:
                    raise RestateError(f"{path} answered {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise RestateError(f"admin API unreachable: {exc!r}") from exc
