"""What a run shows in its Slack thread: the status message with what the agent is doing now,
the answer, and the notices of cancelled runs.

Progress is cosmetic: it is paced and skipped when Slack is busy, never retried, and never
fails the run. Notices and answers are durable steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from datetime import timedelta
from typing import Any

import restate
import structlog
from restate.exceptions import TerminalError

from common.contract import ChangeSummary, Notice, TaskRequest
from common.slack_text import escape, snippet
from restate_app.approval_view import answer_line, ended_message, withdrawn_line
from restate_app.deps import Deps
from restate_app.model_io import Completion
from restate_app.mrkdwn import to_mrkdwn
from restate_app.slack_io import MAX_MESSAGE_CHARS, SlackPoster
from restate_app.slack_stream import ModelTurn, SlackStream, Streamed
from restate_app.status_text import StatusText
from restate_app.tools.registry import ToolResult

log = structlog.get_logger(__name__)

CANCELLED_TEXT = ":leftwards_arrow_with_hook: Cancelled, restarting with the new message…"
STOPPED_TEXT = ":octagonal_sign: Stopped{by}. Reply in this thread to start again."
FAILED_TEXT = (
    ":warning: Sorry, I could not finish this one: a service I depend on is not answering, "
    "or the repository could not be prepared. Reply in this thread to try again."
)
DONE_TEXT = ":white_check_mark: Answered below."
# How a cut run's partial text is marked in its notice when a reply cut it (a stop says who).
INTERRUPTED_LABEL = "interrupted by a new message"
# Progress updates: the status message's, or the streamed answer's (`SLACK_STREAMING`).
PROGRESS_METHOD = "chat.update"
TICK_SECONDS = 5.0
# How soon after the last update one follows when a step starts or a wait for approval begins.
SOON_SECONDS = 1.0
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
# Partial text worth quoting has a word in it: not only an ellipsis or markup.
_WORD = re.compile(r"\w")


def change_line(changes: ChangeSummary | None) -> str:
    """`*Changes:* 2 files, +10 -3: `a.py`, `b.py`` for the end of an answer."""
    if changes is None or not changes.files:
        return ""
    names = ", ".join(f"`{escape(name)}`" for name in changes.files[:8])
    more = f" and {len(changes.files) - 8} more" if len(changes.files) > 8 else ""
    count = f"{len(changes.files)} file{'s' if len(changes.files) != 1 else ''}"
    return f"*Changes:* {count}, +{changes.added} -{changes.removed}: {names}{more}"


def known(names: dict[str, str]) -> str:
    """`known: `a`, `b`` for a message about a name that is not configured."""
    return "known: " + (", ".join(_code(name) for name in sorted(names)) or "none")


def _code(text: str | None) -> str:
    plain = (text or "").replace("`", "'")
    return f"`{escape(plain)}`"


class StatusView:
    """The status message of one run: what the agent is doing now, the plan it stated, the
    model's latest text and the tool activity (`restate_app/status_text.py`), above a line
    naming the repository and the model; or, with Slack's streaming methods, the text streamed.

    Updates are coalesced: at most one is pending, it shows the state as it is when it goes,
    and it goes no sooner than the method's progress interval after the last (a step starting
    or a wait for approval: a second after it), through the limiter's progress lane."""

    def __init__(self, slack: SlackPoster, req: TaskRequest, streaming: bool = False) -> None:
        self._slack, self._req = slack, req
        self.state = StatusText()
        self.status_ts: str | None = None
        self._last = 0.0
        self._shown = -1
        self._due = 0.0
        self._update: asyncio.Task[None] | None = None
        self._pushing = False
        self._closed = False
        self._ticks: dict[str, float] = {}
        # Not made by the status step: a replay, which skips that step, streams too.
        self._stream = SlackStream(slack, req) if streaming else None
        # The task posting the status message, and whether that post has gone out.
        self.posting: asyncio.Task[Any] | None = None
        self.sending = asyncio.Event()
        self.posted = asyncio.Event()

    @property
    def about(self) -> str:
        return self.state.about

    @about.setter
    def about(self, line: str) -> None:
        self.state.about = line

    async def post_status(self) -> str:
        req = self._req
        self.posting = asyncio.current_task()
        try:
            version, text = self.state.version, self.render()
            ts = await self._slack.post_status(
                req.channel_id, req.thread_ts, text, req.thread_key, on_send=self.sending
            )
            self.status_ts, self._shown, self._last = ts, version, time.monotonic()
        finally:
            # Posted or given up: nobody waits for it any longer.
            self.posted.set()
        self._changed()  # what happened while the post was on its way
        return ts

    async def posted_ts(self, grace: float) -> str | None:
        """The status message's ts, for a run being cancelled. A post still waiting for its
        turn is called off (nothing was posted); one on its way is waited for a little, so
        the notice can rewrite it rather than leave "Planning…" behind."""
        if self.status_ts is not None or self.posting is None or self.posted.is_set():
            return self.status_ts
        if not self.sending.is_set():
            self.posting.cancel()
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.posted.wait(), grace)
        return self.status_ts

    async def react(self, deps: Deps, outcome: str | None) -> None:
        """The trigger's reaction, working (`outcome` None) then how the run ended, and the
        thread's agent session: processing while the run works, active once it has ended."""
        req, reactions = self._req, deps.reactions
        await self._slack.session_status(
            req.channel_id,
            req.thread_ts,
            "processing" if outcome is None else "active",
            title=snippet(req.turns[0].text, 80) if req.turns else "",
            by=req.trigger_user,
        )
        if outcome is None:
            if not reactions.working:
                return
            add, remove = reactions.working, reactions.received
        else:
            add, remove = reactions.for_outcome(outcome), reactions.in_progress
        await self._slack.react(req.channel_id, req.trigger_ts, add=add, remove=remove)

    # ------------------------------------------------------------------ what happens
    def new_turn(self) -> None:
        """A model call starts: its text follows the last one's (and, streamed, gets a
        message of its own)."""
        self.state.new_turn()
        if self._stream is not None:
            self._stream.new_turn = True
        self._changed()

    async def show_text(self, text: str) -> None:
        first = not self.state.text
        self.state.show_text(text)
        if self._stream is not None:
            if self.status_ts is not None:  # the stream reads below the status message
                await self._stream.feed(text)
            return
        self._changed(soon=first)  # a call's first words (a plan beginning) show early

    def streamed(self, completion: Completion) -> ModelTurn:
        """A model call's result as its step journals it: with where its text went."""
        stream, where = self._stream, None
        if stream is not None:
            where = Streamed(ts=stream.ts, sent=stream.sent, new_turn=stream.new_turn)
        return ModelTurn(**completion.model_dump(), streamed=where)

    def streams_answer(self) -> bool:
        """Whether the answer is the streamed text (`SLACK_STREAMING`, and it streamed)."""
        return self._stream is not None and self._stream.holds_answer

    def resume(self, turn: ModelTurn) -> None:
        """After a model step, live or replayed: the view holds its text, and its stream is
        where the step left it (a replay streamed nothing in this process)."""
        self.state.show_text(turn.text)
        if self._stream is not None and turn.streamed is not None:
            self._stream.resume(turn.streamed)

    def tool_started(self, call_id: str, line: str) -> asyncio.Task[None]:
        self._ticks[call_id] = time.monotonic()
        self.state.tool_started(call_id, line)
        self._changed(soon=True)
        return asyncio.ensure_future(self._tick(call_id, line))

    def note(self, key: str, line: str) -> None:
        """A line of its own among the activity: a steering message the run took in."""
        self.state.note_line(key, line)
        self._changed()

    def tool_ended(self, call_id: str, result: ToolResult) -> None:
        failed = result.is_error or (result.exit_code not in (None, 0))
        exit_note = f" (exit {result.exit_code})" if result.exit_code not in (None, 0) else ""
        self.state.tool_ended(call_id, failed, exit_note)
        self._changed()

    async def waiting(self, call_id: str, line: str) -> None:
        """A call waits for a person's approval: say so now (inside the step asking)."""
        self.state.waiting(call_id, line)
        self._changed(soon=True)

    def refused(self, call_id: str, why: str) -> None:
        """A call nobody approved; shown with the next update."""
        self.state.refused(call_id, why)
        self._changed()

    async def _tick(self, call_id: str, line: str) -> None:
        """Keep the elapsed time of a long tool call current: ``Running `x` (12 s)``."""
        while True:
            await asyncio.sleep(TICK_SECONDS)
            seconds = int(time.monotonic() - self._ticks[call_id])
            self.state.tool_ticked(call_id, line, seconds)
            self._changed()

    def render(self) -> str:
        return self.state.render()

    # ------------------------------------------------------------------ showing it
    def _changed(self, soon: bool = False) -> None:
        """Have the status message show the latest state: one update pending at most."""
        if self._closed or self.status_ts is None or self.state.version == self._shown:
            return
        now = time.monotonic()
        interval = self._slack.limiter.progress_interval(PROGRESS_METHOD)
        due = self._last + (min(interval, SOON_SECONDS) if soon else interval)
        pending = self._update is not None and not self._update.done()
        if pending and (self._pushing or due >= self._due):
            return  # the pending update goes in time, and shows what is there by then
        if pending:
            assert self._update is not None
            self._update.cancel()
        self._due = due
        self._update = asyncio.ensure_future(self._show(max(0.0, due - now)))

    async def _show(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if self._closed or self.status_ts is None:
            return
        req, version = self._req, self.state.version
        self._pushing = True
        try:
            shown = await self._slack.show_progress(
                req.channel_id, self.status_ts, self.render(), req.thread_key, markdown=False
            )
        finally:
            self._pushing = False
        self._last = time.monotonic()
        if shown:
            self._shown = version
        # Skipped (no token to spare), or changed while it went: the next one follows.
        self._update = None
        self._changed()

    def close(self) -> None:
        """No more updates: the run is over (or cut: its notice takes the message over). An
        update on its way is left to finish; `quiet` waits for it."""
        self._closed = True
        if self._update is not None and not self._pushing:
            self._update.cancel()

    async def quiet(self) -> None:
        """Close, and wait for an update on its way, so nothing lands after what follows."""
        self.close()
        update = self._update
        if update is not None and not update.done():
            await asyncio.wait([update])

    async def finish(
        self,
        status_ts: str | None,
        text: str,
        outcome: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> None:
        """The status message becomes `text` (or `text` is posted), with `blocks` if given."""
        req = self._req
        await self.quiet()
        if self._stream is not None and outcome == "completed":
            await self._stream.finish(self.state.text)
        elif self._stream is not None:
            await self._stream.close()
        if status_ts is not None:
            await self._slack.update(req.channel_id, status_ts, text, blocks)
        else:
            await self._slack.post(req.channel_id, req.thread_ts, text, blocks)


# ----------------------------------------------------------------------------- notices


async def post_notice(ctx: restate.Context, deps: Deps, note: Notice) -> None:
    """The notice of a cancelled run: its status message says what happened in place (so it
    reads above the new run's messages) and its trigger's reaction says how it ended.

    Its own invocation, off the restart path: it may wait for a busy channel as long as it
    takes, and a repeat rewrites the same text."""
    options: restate.RunOptions[Any] = restate.RunOptions(
        max_attempts=deps.slack_max_attempts,
        initial_retry_interval=timedelta(seconds=1),
        max_retry_interval=timedelta(seconds=30),
    )
    try:
        await ctx.run_typed(f"post {note.kind} notice", _notice, options, deps, note)
    except TerminalError as err:
        log.warning("notice_failed", kind=note.kind, error=err.message)


async def _notice(deps: Deps, note: Notice) -> None:
    slack, reactions = deps.slack, deps.reactions
    outcome = "stopped" if note.kind == "stopped" else "cancelled"
    if note.approval is not None:
        # First: a request still showing its buttons must not look answerable a moment longer.
        await _close_approval(slack, note)
    if note.kind == "withdrawn":
        # Cancelled before its first model call (a burst of replies): leave no trace.
        if note.status_ts is not None:
            await slack.delete(note.channel_id, note.status_ts)
        await slack.react(note.channel_id, note.trigger_ts, remove=reactions.in_progress)
        return
    if note.kind == "stopped":
        by = f" by <@{note.by_user}>" if _SLACK_USER.fullmatch(note.by_user or "") else ""
        head, cut_by = STOPPED_TEXT.format(by=by), f"stopped{by}"
    else:
        head, cut_by = CANCELLED_TEXT, INTERRUPTED_LABEL
    text = notice_text(head, note.partial, note.killed, cut_by)
    if note.status_ts is not None:
        await slack.update(note.channel_id, note.status_ts, text)
    else:
        await slack.post(note.channel_id, note.thread_ts, text)
    if note.kind == "stopped":
        # After the notice: a background call may wait its turn behind a busy workspace's.
        await slack.session_status(note.channel_id, note.thread_ts, "active")
    await slack.react(
        note.channel_id,
        note.trigger_ts,
        add=reactions.for_outcome(outcome),
        remove=reactions.in_progress,
    )


async def _close_approval(slack: SlackPoster, note: Notice) -> None:
    """The cut run's request for approval, without its buttons: how it ended, if it was
    answered before the cut; else that it is no longer needed."""
    shown = note.approval
    assert shown is not None
    if shown.answer is not None:
        line = answer_line(shown, shown.answer)
    else:
        line = withdrawn_line("stopped" if note.kind == "stopped" else "interrupted")
    text, blocks = ended_message(shown, line)
    await slack.update(note.channel_id, shown.ts, text, blocks)


def notice_text(
    head: str, partial: str, killed: list[str] | None = None, cut_by: str = INTERRUPTED_LABEL
) -> str:
    """The notice, with what the cancellation killed and what the run was writing when it
    was cut off, marked with how it was cut (`cut_by`: "interrupted by a new message",
    "stopped by <@U…>"). A run cut before it wrote a word quotes nothing."""
    head = "\n".join([head, *(f"• {escape(line)}" for line in (killed or [])[:5])])
    if not _WORD.search(partial):
        return head
    shown = to_mrkdwn(partial.strip())[: MAX_MESSAGE_CHARS - len(head) - 80]
    # One level of quote is all Slack has: the text's own quote markers go.
    quoted = "\n".join(f">{line.removeprefix('> ')}" for line in shown.splitlines())
    return f"{head}\n{quoted}\n_({cut_by})_"
