"""A run's budgets: which limit it has reached before its next model call, what the request to
go on says, how Continue raises the limits, and the lines that show what a run spent. Pure.

Three limits, each 0 when off: model calls per run (`AGENT_MAX_STEPS`), tokens per run
(`RUN_MAX_TOKENS`), and tokens per thread (`SESSION_MAX_TOKENS`, plus what Continue added in
earlier runs). A reached limit pauses the run with a Continue button (`restate_app/
approvals.py`, kind `budget`); Continue adds one more of each reached limit's own budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from common.contract import RunBudget
from common.slack_text import escape

Limit = Literal["steps", "tokens", "session"]


@dataclass(frozen=True)
class Spent:
    """What the run has spent so far: model calls made and tokens used."""

    steps: int
    tokens: int
    estimated: bool = False


def reached(budget: RunBudget, spent: Spent) -> list[Limit]:
    """The limits `spent` has reached (none: the next model call may go)."""
    found: list[Limit] = []
    if budget.steps and spent.steps >= budget.steps:
        found.append("steps")
    if budget.tokens and spent.tokens >= budget.tokens:
        found.append("tokens")
    if budget.session_tokens and budget.session_spent + spent.tokens >= budget.session_tokens:
        found.append("session")
    return found


def raised(budget: RunBudget, limits: list[Limit], base: RunBudget) -> RunBudget:
    """`budget` after Continue: each reached limit grows by one of its budget in `base`."""
    update: dict[str, int] = {}
    if "steps" in limits:
        update["steps"] = budget.steps + base.steps
    if "tokens" in limits:
        update["tokens"] = budget.tokens + base.tokens
    if "session" in limits:
        update["session_tokens"] = budget.session_tokens + session_step(base)
    return budget.model_copy(update=update)


def session_step(base: RunBudget) -> int:
    """What one Continue adds to the thread's budget: its budget before any (the setting)."""
    return base.session_tokens - base.session_added


def pause_text(budget: RunBudget, spent: Spent, limits: list[Limit], base: RunBudget) -> str:
    """The request to go on: what was spent, the limits reached, what Continue adds."""
    used = f"This run has used {tokens(spent)} in {plural(spent.steps, 'step')}"
    caps = []
    more = []
    if "steps" in limits:
        caps.append(f"limit {plural(budget.steps, 'step')}")
        more.append(plural(base.steps, "step"))
    if "tokens" in limits:
        caps.append(f"limit {budget.tokens:,} tokens")
        more.append(f"{base.tokens:,}" if len(limits) == 1 else f"{base.tokens:,} tokens")
    text = f"{used} ({', '.join(caps)})." if caps else f"{used}."
    if "session" in limits:
        thread = budget.session_spent + spent.tokens
        text += (
            f" This thread has used {thread:,} tokens (budget {budget.session_tokens:,} tokens)."
        )
        step = session_step(base)
        more.append(f"{step:,} for this thread" if len(limits) > 1 else f"{step:,}")
    return f"{text} Continue for another {' and '.join(more)}?"


def stop_text(spent: Spent, how: str, last_words: str, tool_calls: int) -> str:
    """The answer of a run stopped at its budget, in Slack mrkdwn: it ends as completed, its
    work kept. `how` is ours (it may name a person); `last_words` are the model's, escaped."""
    did = f"{plural(tool_calls, 'tool call')} so far" if tool_calls else "no tool calls yet"
    text = (
        f":octagonal_sign: I stopped at the budget ({how}): this run used {tokens(spent)} in "
        f"{plural(spent.steps, 'step')}, with {did}. What I did stays in the workspace and in "
        "this thread: reply here to go on."
    )
    said = last_words.strip()
    if said:
        if len(said) > 600:
            said = said[:600].rstrip() + "…"
        quoted = "\n".join(f">{escape(line)}" for line in said.splitlines())
        text += f"\n\nWhere I was:\n{quoted}"
    return text


def usage_line(spent: Spent) -> str:
    """`_12,345 tokens · 7 steps_` for the end of an answer."""
    return f"_{tokens(spent)} · {plural(spent.steps, 'step')}_"


def tokens(spent: Spent) -> str:
    return f"{'~' if spent.estimated else ''}{spent.tokens:,} tokens"


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"
