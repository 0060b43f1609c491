"""Request records of the offline model and the OpenAI JSON shapes built from them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from sandbox.model_script import prompt_tokens

JSON = dict[str, Any]

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

    def finish(self, outcome: str, status: int | None = None) -> None:
        self.outcome = outcome
        self.status = self.status if status is None else status
        self.finished_at = time.time()
        log.info("model_request", id=self.id, outcome=outcome, chunks=self.chunks_sent)


def completion(record: RequestRecord, text: str, completion_tokens: int) -> JSON:
    return {
        "id": record.id,
        "object": "chat.completion",
        "created": int(record.received_at),
        "model": record.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
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
