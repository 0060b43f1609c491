"""A run's text streamed with Slack's streaming methods (`SLACK_STREAMING`:
chat.startStream, appendStream, stopStream), and where a model step left its stream, journaled
with the step so that a replay finishes the same message."""

from __future__ import annotations

import time

import structlog
from pydantic import BaseModel

from common.contract import TaskRequest, parse_thread_key
from common.slack_limiter import Lane, SlackBusy, lane
from restate_app.model_io import Completion
from restate_app.slack_io import SlackPoster

log = structlog.get_logger(__name__)

STREAM_METHOD = "chat.appendStream"


class Streamed(BaseModel):
    """Where a model call's text was streamed (`SLACK_STREAMING`) when its step ended: the
    stream's message, how much of the text it holds, and whether a new call had begun.
    Journaled with the call, so that a replay (another process, after a crash) finishes the
    message the text went to instead of losing it."""

    ts: str | None = None
    sent: int = 0
    new_turn: bool = False


class ModelTurn(Completion):
    """A model step's journal entry: the completion, and where its text was streamed."""

    streamed: Streamed | None = None


class SlackStream:
    """The run's text streamed with Slack's streaming methods (`SLACK_STREAMING`): started at
    the first text, appended about once a second, stopped with the rest when the run is done."""

    def __init__(self, slack: SlackPoster, req: TaskRequest) -> None:
        self._slack, self._req = slack, req
        self.ts: str | None = None
        self.sent, self._last = 0, 0.0
        # A new model call began since the last push: its text starts a stream of its own.
        self.new_turn = False
        # The answer's stream is stopped: a retried "post answer" step leaves it as it is.
        self.stopped = False

    def resume(self, where: Streamed) -> None:
        self.ts, self.sent, self.new_turn = where.ts, where.sent, where.new_turn

    async def feed(self, text: str) -> None:
        now = time.monotonic()
        interval = self._slack.limiter.progress_interval(STREAM_METHOD)
        if now - self._last < interval or len(text) == self.sent:
            return
        self._last = now
        try:
            with lane(Lane.PROGRESS):
                await self._close_turn()
                await self._push(text)
        except SlackBusy:
            return  # no token to spare: the text goes with the next append
        except Exception as exc:  # live text is cosmetic; `finish` still delivers the answer
            log.info("stream_append_failed", error=str(exc))

    async def _push(self, text: str) -> None:
        req = self._req
        if self.ts is None:
            team = parse_thread_key(req.thread_key)[0]
            self.ts = await self._slack.start_stream(
                req.channel_id, req.thread_ts, team, req.trigger_user, text
            )
        elif len(text) > self.sent:
            await self._slack.append_stream(req.channel_id, self.ts, text[self.sent :])
        self.sent = len(text)

    async def _close_turn(self) -> None:
        """An earlier model call's text (a plan before tool calls) streamed here: close that
        stream as it stands; the new call's text is streamed on its own."""
        if self.new_turn and self.ts is not None:
            ts, self.ts, self.sent = self.ts, None, 0
            await self._slack.stop_stream(self._req.channel_id, ts)
        self.new_turn = False

    @property
    def holds_answer(self) -> bool:
        """Whether the last model call's text went to a stream (else the status message will
        hold the answer). Known from the journal as well as live: the same on a replay."""
        return self.ts is not None and not self.new_turn

    async def close(self) -> None:
        """A run that ends without an answer (it failed) leaves no stream open: the last one
        is stopped as it stands."""
        if self.stopped or self.ts is None:
            return
        await self._slack.stop_stream(self._req.channel_id, self.ts)
        self.stopped = True

    async def finish(self, text: str) -> None:
        """The answer's stream ends holding the whole text once: what it lacks goes with the
        stop. A stream started here could not be found again by a retry, so an answer that
        streamed nothing is left to the status message (an earlier call's stream is closed)."""
        if self.stopped:
            return
        if not self.holds_answer:
            await self._close_turn()
            return
        assert self.ts is not None
        await self._slack.stop_stream(self._req.channel_id, self.ts, text[self.sent :])
        self.sent, self.stopped = len(text), True
