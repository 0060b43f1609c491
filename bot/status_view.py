"""What `/agent-status` (and "status" in a thread, and the shortcut) shows: Slack blocks."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from common.contract import parse_thread_key
from common.session_state import Session, SessionStatus
from common.slack_text import counted, escape, snippet

PAGE_SIZE = 10
# `/agent-status page N` goes this deep at most: each page is read from Restate on its own.
MAX_PAGE = 50
_PERMALINK = re.compile(
    r"/archives/(?P<channel>[A-Z0-9]+)/p(?P<ts>\d{10})(?P<frac>\d{6})(?:\?(?P<query>\S*))?"
)
_THREAD_TS = re.compile(r"(?:^|&)thread_ts=(\d{10}\.\d{6})")

STATE_ICONS = {
    "idle": ":white_circle:",
    "working": ":large_green_circle:",
    "cancelling": ":large_orange_circle:",
}

HELP = "\n".join(
    [
        "*`/agent-status`* shows what the coding agent is doing.",
        "• `/agent-status`: this channel's sessions, most recent first (in a DM: your sessions).",
        "• `/agent-status page 2`: the next ones.",
        "• `/agent-status <thread link>`: one session in detail (use *Copy link* on a message).",
        "• `/agent-status help`: this help.",
        "Inside a thread: reply `status` (only you see the answer; the agent is not interrupted),"
        " or use the *Agent status* shortcut on any message.",
        "Reply `stop` or `cancel` in a thread, or press *Stop*, to stop the agent without"
        " restarting. Any other reply while it works interrupts it and restarts with your reply.",
    ]
)


@dataclass(frozen=True)
class ThreadRef:
    channel_id: str
    thread_ts: str


def parse_permalink(text: str) -> ThreadRef | None:
    """The thread a Slack permalink points at (its root, for a link to a reply)."""
    match = _PERMALINK.search(text.strip().strip("<>").split("|")[0])
    if match is None:
        return None
    thread = _THREAD_TS.search(match.group("query") or "")
    ts = thread.group(1) if thread else f"{match.group('ts')}.{match.group('frac')}"
    return ThreadRef(match.group("channel"), ts)


def _ago(then: float | None, now: float) -> str:
    if then is None:
        return "never"
    seconds = max(0, int(now - then))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago" if seconds < 86400 else f"{seconds // 86400}d ago"


def _duration(since: float | None, now: float) -> str:
    return _ago(since, now).removesuffix(" ago") if since else "-"


def detail_text(status: SessionStatus, link: str | None = None, now: float | None = None) -> str:
    """One session in detail."""
    now = time.time() if now is None else now
    if status.tasks_started == 0 and status.turns == 0:
        return "There is no agent session in this thread yet. Mention the agent to start one."
    _, channel, _ = parse_thread_key(status.thread_key)
    head = f"{STATE_ICONS.get(status.state, '')} *Session* in <#{channel}>: *{status.state}*"
    if link:
        head += f" (<{link}|thread>)"
    lines = [head]
    if status.state == "working":
        lines.append(
            f"Running step: *{escape(status.running_step or 'starting')}*, for "
            f"{_duration(status.running_since, now)}, "
            f"{counted(status.running_tokens, 'token')} so far"
        )
    lines.append(
        f"Turns: {status.turns} · tasks: {status.tasks_started} · interrupted: "
        f"{status.interruptions} · stopped: {status.stops}"
        + (f" · queued replies: {status.queued}" if status.queued else "")
    )
    lines.append(f"Last task: {status.last_outcome or 'none finished yet'}")
    lines.append(tokens_line(status))
    lines.append(setup_line(status))
    lines += run_lines(status)
    if status.started_by:
        lines.append(
            f"Started by <@{status.started_by}>, last activity {_ago(status.updated_at, now)}"
        )
    return "\n".join(lines)


def tokens_line(status: SessionStatus) -> str:
    """The model tokens of the latest run and of the whole thread, against its budget."""
    run = status.last_run
    approx = "~" if run is not None and run.tokens_estimated else ""
    latest = f"{approx}{run.tokens:,} in the latest run · " if run is not None else ""
    budget = f" (budget {status.token_budget:,})" if status.token_budget else ""
    return f"Tokens: {latest}{status.tokens:,} in this thread{budget}"


def setup_line(status: SessionStatus) -> str:
    """The repository and the model the session works with: the ones its first mention picked
    (`repo=NAME`, `model=NAME`), else the defaults (the repository by the last part of its
    path: its URL may carry a token)."""
    repo = status.repo
    if repo is None and status.workspace is not None:
        repo = re.split(r"[/:]", status.workspace.repo.rstrip("/"))[-1].removesuffix(".git")
    shown_repo = f"`{escape(repo.replace('`', ''))}`" if repo else "the default"
    shown_model = f"`{escape(status.model.replace('`', ''))}`" if status.model else "the default"
    return f"Repository: {shown_repo} · model: {shown_model}"


MAX_TOOL_LINES = 8


def run_lines(status: SessionStatus) -> list[str]:
    """The latest run's tool steps (what, how long, how it ended) and what it changed."""
    run = status.last_run
    if run is None:
        return []
    lines = []
    for tool in run.tools[-MAX_TOOL_LINES:]:
        mark = ":scissors:" if tool.killed else ":white_check_mark:" if tool.ok else ":x:"
        code = f", exit {tool.exit_code}" if tool.exit_code not in (None, 0) else ""
        lines.append(f"{mark} {escape(tool.summary)} ({tool.seconds:.1f} s{code})")
    if len(run.tools) > MAX_TOOL_LINES:
        lines.insert(0, f"… {len(run.tools) - MAX_TOOL_LINES} earlier tool steps")
    if lines:
        lines.insert(0, "*Latest run's tool steps:*")
    changes = run.changes
    if changes is not None and changes.files:
        shown = ", ".join(f"`{escape(name)}`" for name in changes.files[:5])
        lines.append(f"*Changes:* +{changes.added} -{changes.removed} in {shown}")
    return lines


def _session_line(session: Session, link: str | None, now: float) -> str:
    # The message as Slack sent it, quoted inside this line's own link: no token of its own.
    first = snippet(next((t.text for t in session.turns if t.kind == "user"), ""), 60)
    title = f"<{link}|{escape(first) or 'thread'}>" if link else escape(first or session.thread_ts)
    doing = f", {escape(session.running.step)}" if session.running else ""
    return (
        f"{STATE_ICONS.get(session.state, '')} {title}: *{session.state}*{doing} · "
        f"{counted(len(session.turns), 'turn')} · "
        f"{counted(session.interruptions, 'interruption')} · "
        f"{counted(session.tokens, 'token')} · {_ago(session.updated_at, now)}"
    )


def list_text(
    sessions: list[Session], links: dict[str, str], page: int, more: bool, in_dm: bool
) -> str:
    """A page of a channel's sessions, most recent first (a thread without a link: plain)."""
    now = time.time()
    where = "your DM with the agent" if in_dm else "this channel"
    if not sessions and page > 1:
        return f"There is no page {page}: the sessions in {where} end before it."
    if not sessions:
        return f"No agent sessions in {where} yet. Mention the agent to start one."
    lines = [f"*Agent sessions in {where}* (page {page}, most recent first)"]
    lines += [_session_line(s, links.get(s.thread_ts), now) for s in sessions]
    if more:
        lines.append(f"More: `/agent-status page {page + 1}`")
    return "\n".join(lines)


def blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]
