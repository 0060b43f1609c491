"""What the offline model says: scripted answers for tests and a deterministic default.

Also the OpenAI-shaped pieces that do not depend on HTTP: error bodies, token counts and
splitting an answer into streamable chunks.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JSON = dict[str, Any]

LABEL = "(offline demo model)"
_MENTION = re.compile(r"<[@#!][^>]*>")
_CHUNK = re.compile(r"\s*\S+")


class ScriptItem(BaseModel):
    """One scripted reply, consumed by exactly one completion request."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    chunks: list[str] | None = None
    chunk_delay: float | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0)
    hang: float = Field(default=0.0, ge=0)
    close_after: int | None = Field(default=None, ge=0)


class ScriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responses: list[ScriptItem]


class PaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_delay: float = Field(ge=0)
    # Pads unscripted (default) answers to at least this many chunks, so that streams last
    # long enough to interrupt under load (the benchmarks use it); unchanged when omitted.
    min_chunks: int | None = Field(default=None, ge=0)


def content_text(message: JSON) -> str:
    """The text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def default_answer(messages: list[JSON]) -> str:
    """A deterministic, clearly labelled answer derived from the conversation."""
    user_turns = [m for m in messages if m.get("role") == "user"]
    last_text = _MENTION.sub("", content_text(user_turns[-1]) if user_turns else "")
    last = last_text.lstrip(" :").split()
    snippet = " ".join(last[:6]) + ("…" if len(last) > 6 else "")
    interrupted = any(
        "interrupted" in content_text(m).lower() for m in messages if m.get("role") == "assistant"
    )
    resume = (
        "An interrupted partial answer is in the conversation, so I continue from it."
        if interrupted
        else "Nothing was interrupted before this answer."
    )
    return (
        f"{LABEL} You asked: “{snippet or 'nothing'}”. This is user turn {len(user_turns)}. "
        f"{resume} Plan: first, read the relevant code; second, sketch a small change; "
        "third, write it and run the tests. No real model was called, so treat this "
        "as a placeholder answer."
    )


def pad_answer(text: str, min_chunks: int) -> str:
    """`text` followed by numbered filler words until it streams as at least `min_chunks`."""
    missing = min_chunks - len(split_chunks(text))
    if missing <= 0:
        return text
    return text + "".join(f" more{i}" for i in range(missing))


def split_chunks(text: str) -> list[str]:
    """Word-ish streaming chunks that join back to exactly `text`."""
    pieces = _CHUNK.findall(text)
    consumed = "".join(pieces)
    if len(consumed) < len(text):
        pieces.append(text[len(consumed) :])
    return pieces or [text]


def prompt_tokens(messages: list[JSON]) -> int:
    """A rough, deterministic stand-in for a tokenizer: words plus per-message overhead."""
    return sum(len(content_text(m).split()) + 4 for m in messages) + 3


_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests (sandbox). Please try again later.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(
    status: int, message: str | None = None, code: str | None = None, param: str | None = None
) -> JSON:
    """OpenAI's error JSON for an HTTP status."""
    kind, default_code, default_message = _ERRORS.get(
        status,
        ("server_error" if status >= 500 else "invalid_request_error", None, "Request failed."),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": kind,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }
