"""The `steer` policy's rules, pure like the rest of the session machine (`session.py`).

A plain reply while a task runs does not cancel it: it joins the conversation as any reply
does, and waits in the running task's record until the task has an open inbox (an awakeable
it told the agent about); then every steering message not yet sent goes into that inbox at
once, and the inbox is used up. The run takes what arrived into its conversation before its
next model call and says which it took (`TaskInbox.taken`, and its report's `steered`); when
it ends, the steering messages it did not take in start the next run, as a reply after its end
would. A mention of the bot, or a reply starting with `!`, still interrupts; the model sees the
reply without the `!` (which replies steer: `common.contract.steers`, shared with the bot).
"""

from __future__ import annotations

from common.contract import INTERRUPT_MARK, IncomingMessage, TaskInbox, TaskReport, Turn
from common.session_state import RunningTask, Session
from restate_app.session_events import Decision, DeliverSteering, Limits
from restate_app.session_turns import bound
from restate_app.turns import insert_in_slack_order, ts_key

SNIPPET_CHARS = 60


def turn_text(msg: IncomingMessage) -> str:
    """The reply's text as the model sees it: under `steer`, without the `!` that made it
    interrupt."""
    text = msg.text.lstrip()
    if msg.policy == "steer" and text.startswith(INTERRUPT_MARK):
        return text.removeprefix(INTERRUPT_MARK).lstrip()
    return msg.text


def steer(d: Decision, turn: Turn, limits: Limits) -> None:
    """The reply joins the conversation and goes to the running task, not a new one."""
    s = d.session
    running = s.running
    assert running is not None
    assert turn.ts is not None
    insert_in_slack_order(s.turns, turn)
    bound(s, s.turns, limits.max_turns, limits.max_bytes)
    running.steering = sorted([*running.steering, turn.ts], key=ts_key)
    d.note = "steered"
    _deliver(d, s, running)


def inbox_opened(d: Decision, inbox: TaskInbox) -> None:
    """The running task opened inboxes, or took steering messages in (its timeline says so)."""
    s = d.session
    running = s.running
    if running is None or running.task_id != inbox.task_id:
        d.note = "stale_inbox"
        return
    taken = _turns(s, [ts for ts in running.delivered if ts in inbox.taken])
    running.delivered = [ts for ts in running.delivered if ts not in inbox.taken]
    if taken:
        running.step = steered_step(taken[-1])
        run = s.run(running.task_id)
        if run is not None:
            run.steps = [*run.steps, *(steered_step(t) for t in taken)][-100:]
    opened = [i for i in inbox.inboxes if i not in running.inboxes]
    running.inboxes = [*running.inboxes, *opened]
    _deliver(d, s, running)


def leftovers(s: Session, running: RunningTask, report: TaskReport) -> list[Turn]:
    """The steering messages of an ended run that it did not take in, in Slack order: they
    start the next run."""
    left = [ts for ts in (*running.delivered, *running.steering) if ts not in report.steered]
    return _turns(s, left)


def steered_step(turn: Turn) -> str:
    """The run timeline's line for a steering message the run took in."""
    text = " ".join(turn.text.split())
    snippet = text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "…"
    return f"↪ steered: {snippet}"


def _deliver(d: Decision, s: Session, running: RunningTask) -> None:
    """Everything not yet sent goes into the oldest open inbox, which is then used up."""
    if not running.steering or not running.inboxes:
        return
    inbox, *rest = running.inboxes
    # A message the session's bounds have dropped since is no longer in the conversation.
    turns = _turns(s, running.steering)
    if turns:
        d.effects.append(DeliverSteering(inbox, turns))
        running.inboxes = rest
    running.delivered = [*running.delivered, *running.steering]
    running.steering = []


def _turns(s: Session, stamps: list[str]) -> list[Turn]:
    """The conversation's messages with these ts, in Slack order."""
    wanted = set(stamps)
    return [t for t in s.turns if t.kind == "user" and t.ts in wanted]
