"""Turns a conversation into the messages of the model calls of a task (plan, then answer)."""

from __future__ import annotations

from collections.abc import Sequence

from openai.types.chat import ChatCompletionMessageParam

from common.contract import Turn

SYSTEM = (
    "You are a coding agent working inside a Slack thread. Several people may talk to you. "
    "Answer the latest request in the context of the whole conversation. "
    "Earlier work of yours that was interrupted by a new message is marked as interrupted: "
    "build on it where it still helps, but follow the newest instructions."
)

PLAN_INSTRUCTION = (
    "First write a short plan (at most five bullet points) for answering the latest request. "
    "Do not answer yet."
)

ANSWER_INSTRUCTION = "Follow your plan below and write the answer for the thread."

INTERRUPTED_PREFIX = "[interrupted: this earlier work was cut short by a new message]\n"


def conversation(turns: Sequence[Turn], instruction: str) -> list[ChatCompletionMessageParam]:
    """The conversation as chat messages; interrupted partial work is marked as such."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": f"{SYSTEM}\n\n{instruction}"}
    ]
    for turn in turns:
        if turn.kind == "user":
            who = f"<@{turn.user_id}>" if turn.user_id else "someone"
            messages.append({"role": "user", "content": f"{who}: {turn.text}"})
        elif turn.kind == "answer":
            messages.append({"role": "assistant", "content": turn.text})
        elif turn.kind == "partial":
            messages.append({"role": "assistant", "content": INTERRUPTED_PREFIX + turn.text})
        elif turn.kind == "dropped":
            messages.append({"role": "user", "content": turn.text})
        # "error" turns are for people reading the session, not for the model.
    return messages


def plan_messages(turns: Sequence[Turn]) -> list[ChatCompletionMessageParam]:
    return conversation(turns, PLAN_INSTRUCTION)


def answer_messages(turns: Sequence[Turn], plan: str) -> list[ChatCompletionMessageParam]:
    return conversation(turns, f"{ANSWER_INSTRUCTION}\n\nYour plan:\n{plan}")
