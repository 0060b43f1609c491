"""Maps failures of Slack and the model onto Restate's retry semantics.

Transient failures (429, 5xx, timeouts, dropped connections) become retryable, honouring
`Retry-After`; everything a retry cannot fix becomes a `TerminalError`.
"""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import openai
from restate.exceptions import RetryableError, TerminalError
from slack_sdk.errors import SlackApiError

# A model call refused by this process's limit on open streams (`restate_app/model_slots.py`):
# the prefix of its `TerminalError`, which survives the journal, and what the thread is told.
MODEL_BUSY = "model: busy"
MODEL_BUSY_TEXT = (
    ":warning: Sorry, the model is busy right now. Reply in this thread in a minute to try again."
)

# Slack error codes that a retry cannot fix; anything else that is not `ok` is retried.
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "message_not_found",
        "cant_update_message",
        "invalid_blocks",
        "restricted_action",
    }
)


def retry_after(headers: object) -> timedelta | None:
    """Parse a `Retry-After` header given in seconds."""
    value = getattr(headers, "get", lambda _k: None)("Retry-After")
    try:
        return timedelta(seconds=max(0.0, float(value))) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify_slack_error(exc: Exception, method: str) -> Exception:
    """Turn an exception raised by the Slack client into what a `ctx.run` step should raise."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = str(exc.response.get("error", "unknown_error"))
        if status == 429 or code == "ratelimited":
            return RetryableError(
                f"{method}: rate limited",
                status_code=429,
                retry_after=retry_after(exc.response.headers),
            )
        if status >= 500 or code in {"internal_error", "fatal_error", "service_unavailable"}:
            return RetryableError(f"{method}: slack answered {status} {code}", status_code=503)
        if code in PERMANENT_SLACK_ERRORS or status < 500:
            return TerminalError(f"{method}: {code}", status_code=502)
    if isinstance(exc, aiohttp.ClientError | TimeoutError):
        return RetryableError(f"{method}: {type(exc).__name__}", status_code=503)
    return exc


def classify_model_error(exc: Exception) -> Exception:
    """Turn an exception raised by the OpenAI client into what a `ctx.run` step should raise."""
    if isinstance(exc, openai.RateLimitError):
        return RetryableError(
            "model: rate limited", status_code=429, retry_after=retry_after(exc.response.headers)
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code in {408, 409}:
            return RetryableError(f"model: status {exc.status_code}", status_code=503)
        return TerminalError(f"model: status {exc.status_code}", status_code=502)
    if isinstance(exc, openai.APIConnectionError | TimeoutError):
        return RetryableError(f"model: {type(exc).__name__}", status_code=503)
    return exc


def model_busy(waited_seconds: float) -> TerminalError:
    """The error of a model call that found no free slot in time: terminal, as waiting longer
    is what it just did; the run turns it into `MODEL_BUSY_TEXT` (`user_text`)."""
    return TerminalError(f"{MODEL_BUSY}: no free slot within {waited_seconds:g} s", 503)


def user_text(err: TerminalError) -> str | None:
    """The sentence the thread gets for a failed run's error, when there is one more precise
    than the generic failure notice."""
    if err.message.startswith(MODEL_BUSY):
        return MODEL_BUSY_TEXT
    return None
