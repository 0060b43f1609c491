"""The `steer` policy's rules in the session machine, one scenario each: a plain reply while a
task runs goes to that task (through the inboxes it opens) instead of cancelling it."""

from __future__ import annotations

from pydantic import SecretStr

from bot.rules import ChannelPolicy, Rules, parse_policies
from common.contract import TaskInbox, TaskReport, ToolCall, Turn, WorkStep
from common.settings import BotSettings
from restate_app.prompts import conversation
from restate_app.session import (
    CancelTask,
    DeliverSteering,
    InboxOpened,
    StartTask,
    StopRequested,
    TaskEnded,
)
from tests.unit.test_session_rules import Thread


def _steering_thread() -> Thread:
    t = Thread()
    t.say("100.000001", "fix the bug", mentions_bot=True, policy="steer")
    return t


def _open(t: Thread, *inboxes: str, task: str = "inv_1", taken: tuple[str, ...] = ()) -> None:
    t(InboxOpened(TaskInbox(task_id=task, inboxes=list(inboxes), taken=list(taken))))


def _delivered(t: Thread) -> list[tuple[str, list[str]]]:
    return [
        (e.inbox, [turn.text for turn in e.turns])
        for e in t.effects
        if isinstance(e, DeliverSteering)
    ]


def _started(t: Thread) -> StartTask:
    (start,) = t.of(StartTask)
    assert isinstance(start, StartTask)
    return start


def test_only_runs_of_a_steer_thread_open_inboxes() -> None:
    """Elsewhere a run sends its agent nothing more than before."""
    steered, plain = Thread(), Thread()
    steered.say("100.000001", "fix the bug", mentions_bot=True, policy="steer")
    plain.say("100.000001", "fix the bug", mentions_bot=True)
    assert _started(steered).request.steering
    assert not _started(plain).request.steering


def test_a_steering_reply_joins_the_conversation_and_waits_for_the_runs_inbox() -> None:
    t = _steering_thread()
    d = t.say("100.000002", "use zoneinfo", policy="steer")
    assert d.note == "steered"
    assert d.cancelled is None
    assert t.effects == [], "no cancel, no new run, no notice: nothing to deliver to yet"
    assert [turn.text for turn in t.session.turns] == ["fix the bug", "use zoneinfo"]
    assert t.session.running is not None
    assert t.session.running.task_id == "inv_1"
    assert t.session.interruptions == 0
    _open(t, "awk_1", "awk_2")
    assert _delivered(t) == [("awk_1", ["use zoneinfo"])]
    assert t.session.running.inboxes == ["awk_2"]


def test_a_steering_reply_goes_at_once_into_an_open_inbox_one_inbox_per_delivery() -> None:
    t = _steering_thread()
    _open(t, "awk_1", "awk_2")
    assert _delivered(t) == []
    t.say("100.000002", "use zoneinfo", policy="steer")
    assert _delivered(t) == [("awk_1", ["use zoneinfo"])]
    t.say("100.000003", "and keep the old API", policy="steer")
    assert _delivered(t) == [("awk_2", ["and keep the old API"])]
    t.say("100.000004", "also the docs", policy="steer")
    assert _delivered(t) == [], "every inbox is used: the reply waits for the next one"
    _open(t, "awk_3")
    assert _delivered(t) == [("awk_3", ["also the docs"])]


def test_steering_replies_waiting_together_go_in_one_delivery_in_slack_order() -> None:
    t = _steering_thread()
    t.say("100.000003", "second", policy="steer")
    t.say("100.000002", "first", policy="steer")
    _open(t, "awk_1")
    assert _delivered(t) == [("awk_1", ["first", "second"])]
    assert [turn.text for turn in t.session.turns] == ["fix the bug", "first", "second"]


def test_a_run_that_took_its_steering_in_ends_without_a_new_run() -> None:
    t = _steering_thread()
    _open(t, "awk_1")
    t.say("100.000002", "use zoneinfo", policy="steer")
    _open(t, "awk_2", taken=("100.000002",))
    assert t.session.running is not None
    assert t.session.running.delivered == []
    assert t.session.runs[-1].steps[-1] == "↪ steered: use zoneinfo"
    steered = WorkStep(role="user", text="use zoneinfo", user_id="U1", ts="100.000002")
    report = TaskReport(
        task_id="inv_1",
        outcome="completed",
        text="done with zoneinfo",
        work=[steered],
        steered=["100.000002"],
    )
    t(TaskEnded(report))
    assert not t.of(StartTask)
    assert t.session.running is None
    assert [turn.kind for turn in t.session.turns] == ["user", "user", "answer"]


def test_a_steering_reply_the_run_ended_before_taking_starts_the_next_run() -> None:
    t = _steering_thread()
    _open(t, "awk_1")
    t.say("100.000002", "use zoneinfo", policy="steer")
    assert _delivered(t) == [("awk_1", ["use zoneinfo"])]
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="completed", text="done")))
    start = _started(t)
    # The answer came before the reply for the model that wrote it: so it does here too.
    assert [turn.text for turn in start.request.turns] == ["fix the bug", "done", "use zoneinfo"]
    assert start.request.trigger_ts == "100.000002"
    assert t.session.running is not None
    assert t.session.running.task_id == "inv_2"


def test_a_steering_reply_never_delivered_starts_the_next_run_too() -> None:
    t = _steering_thread()
    t.say("100.000002", "use zoneinfo", policy="steer")
    t.say("100.000003", "and the docs", policy="steer")
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="completed", text="done")))
    start = _started(t)
    texts = [turn.text for turn in start.request.turns]
    assert texts == ["fix the bug", "done", "use zoneinfo", "and the docs"]
    assert start.request.trigger_ts == "100.000003"


def test_a_mention_still_interrupts_and_pending_steering_goes_with_the_replacement_once() -> None:
    t = _steering_thread()
    t.say("100.000002", "use zoneinfo", policy="steer")
    d = t.say("100.000003", "no, start over", policy="steer", mentions_bot=True)
    assert d.cancelled == "inv_1"
    assert t.of(CancelTask) == [CancelTask("inv_1")]
    start = _started(t)
    texts = [turn.text for turn in start.request.turns]
    assert texts == ["fix the bug", "use zoneinfo", "no, start over"]
    # The replacement already has the steering reply: its inbox gets nothing.
    _open(t, "awk_9", task="inv_2")
    assert _delivered(t) == []


def test_a_reply_starting_with_a_bang_interrupts_and_the_model_sees_it_without() -> None:
    t = _steering_thread()
    d = t.say("100.000002", "!  start over with pytest", policy="steer")
    assert d.cancelled == "inv_1"
    start = _started(t)
    assert start.request.turns[-1].text == "start over with pytest"


def test_under_steer_a_reply_with_no_running_task_starts_a_run() -> None:
    t = _steering_thread()
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="completed", text="done")))
    t.say("100.000002", "now the docs", policy="steer")
    assert _started(t).request.trigger_ts == "100.000002"


def test_a_redelivered_steering_reply_is_ignored() -> None:
    t = _steering_thread()
    _open(t, "awk_1", "awk_2")
    t.say("100.000002", "use zoneinfo", policy="steer")
    d = t.say("100.000002", "use zoneinfo", policy="steer")
    assert d.note == "duplicate"
    assert _delivered(t) == []
    assert [turn.text for turn in t.session.turns] == ["fix the bug", "use zoneinfo"]


def test_a_stopped_runs_steering_starts_nothing() -> None:
    t = _steering_thread()
    t.say("100.000002", "use zoneinfo", policy="steer")
    t(StopRequested("U1"))
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="cancelled")))
    assert not t.of(StartTask)
    assert "use zoneinfo" in [turn.text for turn in t.session.turns]


def test_an_inbox_of_a_run_that_no_longer_runs_is_ignored() -> None:
    t = _steering_thread()
    t(TaskEnded(TaskReport(task_id="inv_1", outcome="completed", text="done")))
    _open(t, "awk_1")
    assert t.session.running is None
    assert _delivered(t) == []


def test_a_steering_reply_a_run_took_in_shows_once_where_it_was_taken() -> None:
    """Later runs see it inside the run's work, after the tool call it waited for."""
    call = ToolCall(id="call_1", name="list_files")
    work = [
        WorkStep(role="assistant", text="looking", tool_calls=[call]),
        WorkStep(role="tool", text="a.py", tool_call_id="call_1", name="list_files"),
        WorkStep(role="user", text="use zoneinfo", user_id="U1", ts="100.000002"),
        WorkStep(role="assistant", text="switching"),
    ]
    turns = [
        Turn(kind="user", text="fix the bug", user_id="U1", ts="100.000001"),
        Turn(kind="user", text="use zoneinfo", user_id="U1", ts="100.000002"),
        Turn(kind="answer", text="done", work=work, task_id="inv_1"),
    ]
    messages = [(m["role"], str(m.get("content"))) for m in conversation(turns)][1:]
    assert messages == [
        ("user", "<@U1>: fix the bug"),
        ("assistant", "looking"),
        ("tool", "a.py"),
        ("user", "<@U1>: use zoneinfo"),
        ("assistant", "switching"),
        ("assistant", "done"),
    ]


def test_steer_is_a_policy_per_channel_and_as_the_default() -> None:
    assert parse_policies("C1=steer,C2=queue")["C1"] == ChannelPolicy("steer")
    assert parse_policies("C1=steer/2")["C1"] == ChannelPolicy("steer", 2.0)
    settings = BotSettings(
        _env_file=None,
        slack_bot_token=SecretStr("xoxb-test"),
        default_policy="steer",
    )
    assert Rules.from_settings(settings).policy("C9").policy == "steer"
