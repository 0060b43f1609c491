"""What the offline model says: scripted answers for tests and a deterministic default.

Also the OpenAI-shaped pieces that do not depend on HTTP: error bodies, token counts,
splitting an answer into streamable chunks, and OpenAI's checks of `tools` and of tool calls
in the conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JSON = dict[str, Any]

LABEL = "(offline demo model)"
_MENTION = re.compile(r"<[@#!][^>]*>")
_CHUNK = re.compile(r"\s*\S+")
_QUOTE_LIMIT = 400
# How the product marks a cut run's partial answer in the conversation.
_CUT_MARKERS = ("[interrupted", "[stopped")


class ScriptToolCall(BaseModel):
    """A scripted tool call; its id is generated when it is sent."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    arguments: JSON = Field(default_factory=dict)


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
    # With or without `text`/`chunks` (which then stream first), as OpenAI does.
    tool_calls: list[ScriptToolCall] | None = None
    # Answers only a request whose messages contain this text, so that a run another test
    # left behind cannot take a reply scripted for this one; None answers any request.
    when: str | None = Field(default=None, min_length=1)

    def answers(self, messages: object) -> bool:
        """Whether this item may answer a request with these `messages`."""
        return self.when is None or self.when in str(messages)

    def has_content(self) -> bool:
        """Whether this item says what to answer (else the default answer is used)."""
        return self.text is not None or self.chunks is not None or self.tool_calls is not None


class ScriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responses: list[ScriptItem]


class PaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_delay: float = Field(ge=0)
    # Pads unscripted answers (the default answer, the demo agent's text) to at least this many
    # chunks, so that streams last long enough to interrupt under load (the benchmarks use
    # it); unchanged when omitted.
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


def user_texts(messages: list[JSON]) -> list[str]:
    """The text of each user turn, without Slack mentions (and the colon after one)."""
    return [
        _MENTION.sub("", content_text(m)).strip().lstrip(":").strip()
        for m in messages
        if m.get("role") == "user"
    ]


def cut_short_as(messages: list[JSON]) -> str | None:
    """How the latest run cut short since the last finished answer ended, as the product marks
    it in the conversation: "interrupted" (a partial answer, or a tool result marked so in its
    own words at the start: a file that merely mentions interruptions is not one), "stopped"
    (a partial a person stopped); None when no run was cut short."""
    found = None
    for message in messages[_last_answer(messages) + 1 :]:
        role, first = message.get("role"), content_text(message).lstrip().lower()[:80]
        if role == "assistant" and first.startswith(_CUT_MARKERS):
            found = "stopped" if first.startswith("[stopped") else "interrupted"
        elif role == "tool" and first.startswith("[") and "interrupt" in first.partition("]")[0]:
            found = found or "interrupted"
    return found


def _last_answer(messages: list[JSON]) -> int:
    """The index of the last finished answer (an assistant turn without tool calls that is
    not a cut run's partial), -1 if none."""
    found = -1
    for index, message in enumerate(messages):
        text = content_text(message).strip()
        partial = text.lower().startswith(_CUT_MARKERS)
        if message.get("role") == "assistant" and text and not message.get("tool_calls"):
            found = found if partial else index
    return found


def brief(text: str, limit: int = _QUOTE_LIMIT) -> str:
    """`text` cut at a word boundary before `limit` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = head.rsplit(None, 1)[0] if len(head.split()) > 1 else head
    return cut.rstrip() + "…"


def quote(text: str, limit: int = _QUOTE_LIMIT) -> str:
    """`text` as a Markdown block quote, cut at a word boundary before `limit` characters."""
    cut = brief(text, limit)
    return "\n".join(f"> {line}" if line else ">" for line in (cut or "(empty)").splitlines())


def default_answer(messages: list[JSON]) -> str:
    """A deterministic, clearly labelled Markdown answer derived from the conversation: a
    bold heading, the request quoted, a list and a code block."""
    turns = user_texts(messages)
    request = turns[-1] if turns else ""
    cut = cut_short_as(messages)
    how = "interrupted before this answer" if cut == "interrupted" else "stopped before it finished"
    resume = (
        f"_A run of mine was {how}; what it did is in the conversation, so I take it into account._"
        if cut
        else ""
    )
    lines = [
        f"{LABEL} **Your request** (user turn {len(turns)}):",
        "",
        quote(request or "nothing"),
        "",
        *([resume, ""] if resume else []),
        "**How I would go about it:**",
        "1. Read the code the request is about.",
        "2. Sketch the smallest change that does it.",
        "3. Make the change and run the tests:",
        "",
        "```sh",
        "python3 -m unittest -v",
        "```",
        "",
        "_No real model was called, and no tools were offered: this is a placeholder answer._",
    ]
    return "\n".join(lines)


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


def group_chunks(pieces: list[str], most: int) -> list[str]:
    """`pieces` joined into at most `most` consecutive groups of about equal size."""
    if len(pieces) <= most:
        return pieces
    size = -(-len(pieces) // most)
    return ["".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]


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


@dataclass(frozen=True)
class Problem:
    """Why OpenAI would reject a request with 400, in the words of its error JSON."""

    message: str
    param: str | None = None
    code: str | None = None


_JSON_TYPES: list[tuple[type, str]] = [
    (bool, "a boolean"),
    (str, "a string"),
    (int, "an integer"),
    (float, "a number"),
    (list, "an array"),
    (dict, "an object"),
]


def _json_type(value: Any) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")


def _wrong_type(param: str, expected: str, value: Any) -> Problem:
    got = _json_type(value)
    message = f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    return Problem(message, param, "invalid_type")


def _missing(param: str) -> Problem:
    return Problem(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def tools_problem(tools: Any) -> Problem | None:
    """What is wrong with a request's `tools`, if anything; only function tools are served."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _wrong_type("tools", "an array", tools)
    if not tools:
        message = (
            "Invalid 'tools': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead."
        )
        return Problem(message, "tools", "empty_array")
    for index, tool in enumerate(tools):
        problem = _tool_problem(f"tools[{index}]", tool)
        if problem is not None:
            return problem
    return None


def _tool_problem(param: str, tool: Any) -> Problem | None:
    if not isinstance(tool, dict):
        return _wrong_type(param, "an object", tool)
    if tool.get("type") != "function":
        message = f"Invalid value: '{tool.get('type')}'. Supported values are: 'function'."
        return Problem(message, f"{param}.type", "invalid_value")
    function = tool.get("function")
    if function is None:
        return _missing(f"{param}.function")
    if not isinstance(function, dict):
        return _wrong_type(f"{param}.function", "an object", function)
    name = function.get("name")
    if name is None:
        return _missing(f"{param}.function.name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", name):
        message = (
            f"Invalid '{param}.function.name': string does not match pattern. "
            "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
        )
        return Problem(message, f"{param}.function.name", "invalid_value")
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        return _wrong_type(f"{param}.function.parameters", "an object", parameters)
    return None


def tool_names(tools: Any) -> list[str]:
    """The names of the (already checked) function tools of a request."""
    return [t["function"]["name"] for t in tools] if isinstance(tools, list) else []


def tool_call_problem(messages: list[JSON]) -> Problem | None:
    """OpenAI's rule: an assistant message's `tool_calls` are answered, each by a `tool`
    message, right after it; a `tool` message answers a call of the message before it."""
    asked: list[str] = []  # ids of the last assistant message with tool calls
    unanswered: list[str] = []
    asked_at = -1
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            problem = _tool_message_problem(index, message, asked)
            if problem is not None:
                return problem
            unanswered = [i for i in unanswered if i != message["tool_call_id"]]
            continue
        if unanswered:
            return _unanswered(asked_at, unanswered)
        asked = []
        if message["role"] == "assistant" and message.get("tool_calls"):
            asked, problem = _asked_ids(index, message["tool_calls"])
            if problem is not None:
                return problem
            unanswered, asked_at = list(asked), index
    return _unanswered(asked_at, unanswered) if unanswered else None


def _tool_message_problem(index: int, message: JSON, asked: list[str]) -> Problem | None:
    if not asked:
        text = (
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
            "message with 'tool_calls'."
        )
        return Problem(text, f"messages.[{index}].role")
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str):
        return _missing(f"messages.[{index}].tool_call_id")
    if call_id not in asked:
        text = (
            f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' "
            "of previous message."
        )
        return Problem(text, f"messages.[{index}].tool_call_id")
    return None


def _asked_ids(index: int, calls: Any) -> tuple[list[str], Problem | None]:
    param = f"messages.[{index}].tool_calls"
    if not isinstance(calls, list):
        return [], _wrong_type(param, "an array", calls)
    ids: list[str] = []
    for number, call in enumerate(calls):
        where = f"{param}.[{number}]"
        if not isinstance(call, dict):
            return [], _wrong_type(where, "an object", call)
        function = call.get("function")
        for key, value in (("id", call.get("id")), ("function", function)):
            if value is None:
                return [], _missing(f"{where}.{key}")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return [], _missing(f"{where}.function.name")
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            return [], _wrong_type(f"{where}.function.arguments", "a string", arguments)
        ids.append(str(call["id"]))
    return ids, None


def _unanswered(index: int, ids: list[str]) -> Problem:
    text = (
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids)
    )
    return Problem(text, f"messages.[{index}].role")
