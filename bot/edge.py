"""The first look at a request on the public Slack endpoint: signed, and well-formed.

Bolt verifies signatures too, but answers a signed yet malformed body with a 500 (which makes
Slack retry it forever); checking here turns it into a logged 400 that loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import parse_qs

import structlog
from slack_sdk.signature import SignatureVerifier

log = structlog.get_logger(__name__)


def _form(body: str) -> dict[str, list[str]] | None:
    try:
        return parse_qs(body, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None


def malformed(body: str, content_type: str) -> str | None:
    """Why `body` is not a Slack request Bolt can read, or None if it is fine."""
    if content_type.startswith("application/json"):
        try:
            parsed = json.loads(body)
        except ValueError:
            return "body is not JSON"
        return None if isinstance(parsed, dict) else "JSON body is not an object"
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = _form(body)
        if form is None:
            return "form body cannot be parsed"
        if form.get("ssl_check") == ["1"]:
            return None
        if "payload" in form:
            try:
                payload = json.loads(form["payload"][0])
            except ValueError:
                return "interactivity payload is not JSON"
            return None if isinstance(payload, dict) else "payload is not an object"
        return None if "command" in form else "form body is neither a command nor a payload"
    return f"unsupported content type {content_type or 'none'!r}"


def refuse(
    verifier: SignatureVerifier | None, body: str, headers: Mapping[str, str], content_type: str
) -> tuple[int, str] | None:
    """The status and reason to refuse a request with, or None to let Bolt handle it.

    Without a signing secret (Socket Mode) nothing arriving over HTTP can be trusted.
    """
    if verifier is None:
        return 404, "this bot takes Slack's requests over Socket Mode"
    if not verifier.is_valid_request(body, dict(headers)):
        return 401, "invalid or stale signature"
    reason = malformed(body, content_type)
    return (400, reason) if reason else None
