"""What a request for approval looks like in Slack: the exact action in a code block, who may
answer, Approve and Deny buttons; then, in place, how it ended, without the buttons. Pure."""

from __future__ import annotations

import re
from typing import Any, Literal

from common.contract import (
    APPROVE_ACTION_ID,
    DENY_ACTION_ID,
    Answer,
    ApprovalKind,
    ApprovalRef,
    PendingApproval,
)
from common.slack_text import escape, snippet
from restate_app.slack_io import section

# The action shown; a longer one is cut (its head and a count), and says so.
MAX_SHOWN_CHARS = 2_500
WHO_MAY_ANSWER = "Only the people in this thread (or an admin) can answer this."
HEADINGS: dict[ApprovalKind, str] = {
    "command": "The agent wants to run this command:",
    "push": "The agent wants to push:",
    "pull_request": "The agent wants to open a pull request:",
    "budget": "The run has reached its budget:",
}
# The buttons' labels by kind (Approve, Deny): a budget's request asks to go on or stop.
LABELS: dict[ApprovalKind, tuple[str, str]] = {"budget": ("Continue", "Stop here")}
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def bounded(what: str) -> str:
    """The action as shown (and journaled): whole, or its head and how much is left out."""
    if len(what) <= MAX_SHOWN_CHARS:
        return what
    return f"{what[:MAX_SHOWN_CHARS]}\n… ({len(what) - MAX_SHOWN_CHARS} more characters)"


def duration(seconds: float) -> str:
    """`1 h`, `90 min`, `45 s`: how long a request waits, for people."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def who(answer: Answer) -> str:
    """The person who answered, as a mention Slack shows (never a token made of input)."""
    user = answer.by_user or ""
    return f"<@{user}>" if _SLACK_USER.fullmatch(user) else "someone"


def request_text(shown: PendingApproval) -> str:
    """The message's plain text (notifications, screen readers)."""
    return f"Approval needed: {escape(snippet(shown.what, 120))}"


def request_blocks(shown: PendingApproval, ref: ApprovalRef) -> list[dict[str, Any]]:
    network = " Approving runs this one command with network access." if shown.network else ""
    why = f"\n_Why: {escape(shown.why)}._" if shown.why else ""
    no = "stopping here" if shown.kind == "budget" else "no"
    notes = (
        f"{WHO_MAY_ANSWER}{network} No answer within {duration(shown.timeout_seconds)} "
        f"counts as {no}."
    )
    value = ref.value()
    approve, deny = LABELS.get(shown.kind, ("Approve", "Deny"))
    return [
        section(f":raised_hand: *Approval needed.* {_action(shown)}{why}"),
        _context(notes),
        {
            "type": "actions",
            "block_id": "approval",
            "elements": [
                _button(approve, APPROVE_ACTION_ID, "primary", value),
                _button(deny, DENY_ACTION_ID, "danger", value),
            ],
        },
    ]


def answer_line(shown: PendingApproval, answer: Answer) -> str:
    if shown.kind == "budget":
        return _budget_line(shown, answer)
    match answer.outcome:
        case "approved":
            network = " (network on for this command)" if shown.network else ""
            return f":white_check_mark: Approved by {who(answer)}{network}."
        case "denied":
            return f":no_entry_sign: Denied by {who(answer)}."
        case "timed_out":
            return f":hourglass: No answer within {duration(shown.timeout_seconds)}: not done."
    return ":warning: Not asked: not done."


def _budget_line(shown: PendingApproval, answer: Answer) -> str:
    match answer.outcome:
        case "approved":
            return f":arrow_forward: Continued by {who(answer)}."
        case "denied":
            return f":octagonal_sign: Stopped here by {who(answer)}."
        case "timed_out":
            return f":hourglass: No answer within {duration(shown.timeout_seconds)}: stopped here."
    return ":warning: Not asked: stopped here."


def withdrawn_line(how: Literal["stopped", "interrupted"]) -> str:
    return f":heavy_minus_sign: No longer needed: the run was {how}."


def ended_message(shown: PendingApproval, line: str) -> tuple[str, list[dict[str, Any]]]:
    """The request as it ended (`line` says how), without its buttons: text and blocks."""
    text = f"{line} {escape(snippet(shown.what, 120))}"
    return text, [section(_action(shown)), _context(line)]


def _action(shown: PendingApproval) -> str:
    # A budget's request is a sentence of the agent's own, not an action to check verbatim.
    what = escape(shown.what) if shown.kind == "budget" else code_block(shown.what)
    return f"{HEADINGS[shown.kind]}\n{what}"


def code_block(text: str) -> str:
    """`text` in a Slack code block, shown as it is: escaped, and no ``` inside to end it."""
    body = escape(text).replace("```", "`\u200b`\u200b`")
    return f"```{body}```"


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _button(label: str, action_id: str, style: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "style": style,
        "value": value,
    }
