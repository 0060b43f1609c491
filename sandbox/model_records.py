"""Request records of the offline model, the answer each gets, and the OpenAI JSON shapes
built from them."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from sandbox.model_agent import next_reply
from sandbox.model_script import (
    ScriptItem,
    default_answer,
    group_chunks,
    pad_answer,
    prompt_tokens,
    split_chunks,
)

JSON = dict[str, Any]
Calls = list[tuple[str, JSON]]

# The demo agent's answers are long (a code block, test results): streamed in at most this many
# chunks they still take a few seconds at the default pace, not half a minute.
AGENT_MAX_CHUNKS = 40
# The text of a turn that goes on to tool calls (the plan, a note on the next step) in at most
# this many: a person reads it within a second or two, while the tools it announces run.
AGENT_NOTE_CHUNKS = 6

log = structlog.get_logger("sandbox.model_server")


@dataclass
class RequestRecord:
    """What one completion request asked and how its answer went."""

    id: str
    received_at: float
    messages: list[JSON]
    model: str
    stream: bool
    status: int = 200
    chunks_sent: int = 0
    chunk_times: list[float] = field(default_factory=list)
    first_chunk_at: float | None = None
    finished_at: float | None = None
    client_closed_at: float | None = None
    outcome: str = "pending"
    scripted: bool = False
    # Names of the function tools the request offered.
    tools: list[str] = field(default_factory=list)
    # What the answer was (all of it, also when the client left before it was sent): its
    # text and its tool calls in the shape of `message.tool_calls`, arguments as JSON text.
    answer_text: str | None = None
    tool_calls: list[JSON] = field(default_factory=list)
    finish_reason: str | None = None
    # Why the request was rejected with 400 (OpenAI's error message), if it was.
    error: str | None = None

    def finish(self, outcome: str, status: int | None = None) -> None:
        self.outcome = outcome
        self.status = self.status if status is None else status
        self.finished_at = time.time()
        log.info("model_request", id=self.id, outcome=outcome, chunks=self.chunks_sent)


@dataclass
class Answer:
    """What to answer: text (streamed as `chunks`) and tool calls (OpenAI's message shape)."""

    text: str
    chunks: list[str]
    tool_calls: list[JSON] = field(default_factory=list)

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.tool_calls else "stop"

    def first_delta(self) -> JSON:
        # OpenAI opens with `content: null` when the turn is only tool calls.
        content = None if self.tool_calls and not self.text else ""
        return {"role": "assistant", "content": content}

    def deltas(self, argument_pieces: int = 4) -> list[JSON]:
        """The deltas after the first, one per chunk: text, then each tool call's header
        (id, name, empty arguments) and its arguments in fragments."""
        out: list[JSON] = [{"content": piece} for piece in self.chunks]
        for index, call in enumerate(self.tool_calls):
            function = call["function"]
            header = call | {"function": {"name": function["name"], "arguments": ""}}
            out.append({"tool_calls": [{"index": index, **header}]})
            out.extend(
                {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                for fragment in split_evenly(function["arguments"], argument_pieces)
            )
        return out


def compose(record: RequestRecord, item: ScriptItem, min_chunks: int = 0) -> Answer:
    """The answer: the script's, else the demo agent's (tools offered), else the default."""
    if item.has_content():
        text, chunks, calls = scripted(item)
    elif record.tools:
        text, chunks, calls = agent_turn(record, min_chunks)
    else:
        text = pad_answer(default_answer(record.messages), min_chunks)
        chunks, calls = split_chunks(text), []
    seed = json.dumps(record.messages, sort_keys=True)
    tool_calls = [tool_call(seed, i, name, args) for i, (name, args) in enumerate(calls)]
    return Answer(text, chunks, tool_calls)


def scripted(item: ScriptItem) -> tuple[str, list[str], Calls]:
    text = item.text if item.text is not None else "".join(item.chunks or [])
    chunks = item.chunks if item.chunks is not None else split_chunks(text)
    calls = [(c.name, c.arguments) for c in item.tool_calls or []]
    return text, chunks if text or not calls else [], calls


def agent_turn(record: RequestRecord, min_chunks: int) -> tuple[str, list[str], Calls]:
    reply = next_reply(record.messages, record.tools)
    calls = [(c.name, c.arguments) for c in reply.tool_calls]
    if min_chunks:
        text = pad_answer(reply.text, min_chunks)
        return text, split_chunks(text), calls
    most = AGENT_NOTE_CHUNKS if calls else AGENT_MAX_CHUNKS
    chunks = group_chunks(split_chunks(reply.text), most) if reply.text else []
    return reply.text, chunks, calls


def tool_call(seed: str, index: int, name: str, arguments: JSON) -> JSON:
    """A tool call as OpenAI sends it; its id is derived from `seed`, so repeatable."""
    digest = hashlib.sha256(f"{seed}\n{index}".encode()).hexdigest()[:24]
    return {
        "id": f"call_{digest}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def split_evenly(text: str, pieces: int, least: int = 8) -> list[str]:
    """`text` cut into at most `pieces` consecutive fragments of at least `least` characters
    (the last may be shorter); always at least one fragment."""
    size = max(least, -(-len(text) // max(1, pieces)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def completion(record: RequestRecord, answer: Answer, completion_tokens: int) -> JSON:
    message: JSON = {
        "role": "assistant",
        "content": answer.text if answer.text or not answer.tool_calls else None,
        "refusal": None,
    }
    if answer.tool_calls:
        message["tool_calls"] = answer.tool_calls
    return {
        "id": record.id,
        "object": "chat.completion",
        "created": int(record.received_at),
        "model": record.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": usage_json(record, completion_tokens),
        "system_fingerprint": None,
    }


def usage_json(record: RequestRecord, completion_tokens: int) -> JSON:
    prompt = prompt_tokens(record.messages)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def chunk_json(record: RequestRecord, choices: list[JSON], usage: bool) -> JSON:
    out: JSON = {
        "id": record.id,
        "object": "chat.completion.chunk",
        "created": int(record.received_at),
        "model": record.model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if usage:
        out["usage"] = None
    return out


def delta_choice(delta: JSON, finish_reason: str | None = None) -> list[JSON]:
    return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
