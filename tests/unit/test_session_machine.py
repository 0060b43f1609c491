"""Properties of the session machine (`restate_app.session.decide`) over random interleavings
of messages (each policy), stops, resets, timers, steering inboxes, on-time, late, stale and
repeated reports, and requests to ship the thread's work, with the invariants checked after
every step."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from common.contract import (
    ChangeSummary,
    IncomingMessage,
    ShipReport,
    ShipRequest,
    TaskInbox,
    TaskProgress,
    TaskReport,
    Timer,
)
from common.session_state import Session
from restate_app.session import (
    CancelTask,
    Decision,
    DeliverSteering,
    Event,
    InboxOpened,
    Limits,
    PostNotice,
    ProgressReported,
    RunEnded,
    Schedule,
    Shipped,
    ShipRequested,
    StartShip,
    StartTask,
    StopRequested,
    TaskEnded,
    TaskStarted,
    TimerFired,
    UserMessage,
    decide,
)

KEY = "T0:C0:1700000000.000000"
PEOPLE = ["U0ALICE", "U0BOB"]
EXAMPLES = int(os.environ.get("SESSION_PROPERTY_EXAMPLES", "300" if os.environ.get("CI") else "80"))


@dataclass
class Task:
    id: str
    cancelled: bool = False
    reported: bool = False
    # The user messages of its request, and the steering messages delivered to it.
    requested: set[str] = field(default_factory=set)
    steered: list[str] = field(default_factory=list)


@dataclass
class World:
    """What Restate would do with the effects: name tasks, keep timers, count notices."""

    tasks: dict[str, Task] = field(default_factory=dict)
    timers: list[Timer] = field(default_factory=list)
    notices: dict[str, int] = field(default_factory=dict)
    runs_ended: dict[str, int] = field(default_factory=dict)
    # Ship jobs started, by number: True once reported.
    ships: dict[int, bool] = field(default_factory=dict)
    # Which task opened each inbox, and the inboxes already resolved.
    inboxes: dict[str, str] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)

    def live(self) -> list[Task]:
        return list(self.tasks.values())


class SessionMachine(RuleBasedStateMachine):
    """Drives `decide` the way `CodingAgent._handle` does and checks the protocol's rules."""

    def __init__(self) -> None:
        super().__init__()
        self.session = Session()
        self.world = World()
        self.now = 1_700_000_000.0
        self.seconds = 0
        self.delivered: list[str] = []
        self.policy = "interrupt"
        self.debounce = 0.0
        self.limits = Limits(max_turns=400, max_bytes=1_000_000, max_queued=400)
        self.started = False

    @rule(
        # `steer` twice: its deliveries need a run, an inbox and a reply in that order.
        policy=st.sampled_from(["interrupt", "queue", "steer", "steer"]),
        debounce=st.sampled_from([0.0, 0.0, 2.0]),
        small=st.booleans(),
    )
    @precondition(lambda self: not self.started)
    def configure(self, policy: str, debounce: float, small: bool) -> None:
        """One channel, one policy (as `CHANNEL_POLICIES` sets it); sometimes tight bounds."""
        self.policy, self.debounce, self.started = policy, debounce, True
        if small:
            self.limits = Limits(max_turns=8, max_bytes=2_000, max_queued=4, max_turn_bytes=600)

    # ------------------------------------------------------------------ driving decide
    def apply(self, event: Event) -> Decision:
        self.now += 0.5
        given = self.session.model_dump()
        d = decide(self.session, KEY, event, self.now, self.limits)
        # `decide` is pure: the session it was given is exactly as it was.
        assert self.session.model_dump() == given
        pending = list(d.effects)
        while pending:
            effect = pending.pop(0)
            follow = self.perform(effect)
            if follow is not None:
                more = decide(d.session, KEY, follow, self.now, self.limits)
                d.session = more.session
                pending.extend(more.effects)
        self.session = d.session
        return d

    def perform(self, effect: object) -> Event | None:
        world = self.world
        match effect:
            case StartTask(request):
                assert request.thread_key == KEY
                task = Task(id=f"inv_{len(world.tasks) + 1}")
                task.requested = {t.ts or "" for t in request.turns if t.kind == "user"}
                world.tasks[task.id] = task
                return TaskStarted(task.id)
            case DeliverSteering(inbox, turns):
                assert inbox not in world.resolved, "an awakeable resolved twice"
                world.resolved.add(inbox)
                task = world.tasks[world.inboxes[inbox]]
                for turn in turns:
                    # Exactly once per run: neither in its request nor delivered before.
                    assert turn.ts not in task.requested, "steering a run already has"
                    assert turn.ts not in task.steered, "steering delivered twice"
                    task.steered.append(turn.ts or "")
            case CancelTask(task_id):
                world.tasks[task_id].cancelled = True
            case Schedule(timer, delay):
                assert delay > timedelta(0)
                world.timers.append(timer)
            case PostNotice(notice):
                world.notices[notice.thread_key + notice.trigger_ts + str(id(notice))] = 1
                assert notice.kind in ("restarting", "stopped", "withdrawn")
            case RunEnded(run):
                world.runs_ended[run.task_id] = world.runs_ended.get(run.task_id, 0) + 1
            case StartShip(job):
                assert job.thread_key == KEY
                assert job.job not in world.ships, "a ship job started twice"
                assert not any(not done for done in world.ships.values()), "two ships at once"
                world.ships[job.job] = False
        return None

    def next_ts(self) -> str:
        self.seconds += 1
        return f"{1_700_000_000 + self.seconds}.000100"

    # ------------------------------------------------------------------ rules
    @rule(
        text=st.text(max_size=300),
        person=st.sampled_from(PEOPLE),
        mention=st.booleans(),
        bang=st.sampled_from([False, False, False, True]),
    )
    def message(self, text: str, person: str, mention: bool, bang: bool) -> None:
        ts = self.next_ts()
        text = f"!{text}" if bang else text
        msg = IncomingMessage(
            team_id="T0",
            channel_id="C0",
            thread_ts="1700000000.000000",
            ts=ts,
            user_id=person,
            text=text,
            mentions_bot=mention,
            policy=self.policy,  # type: ignore[arg-type]
            debounce_seconds=self.debounce,
            received_at=self.now,
        )
        running_before = self.session.running
        d = self.apply(UserMessage(msg))
        if d.note != "no_session":
            self.delivered.append(ts)
        if running_before is not None and self.policy == "interrupt":
            assert d.cancelled == running_before.task_id
        if running_before is not None and self.policy == "steer":
            steers = not mention and not text.lstrip().startswith("!")
            assert (d.note == "steered") == steers
            assert (d.cancelled is None) == steers

    @rule(text=st.text(max_size=100), person=st.sampled_from(PEOPLE))
    @precondition(lambda self: self.policy == "steer" and self.session.running is not None)
    def steering_reply(self, text: str, person: str) -> None:
        """A plain reply while a task runs, where the channel steers."""
        self.message(text.lstrip().lstrip("!"), person, mention=False, bang=False)

    @rule(data=st.data())
    @precondition(lambda self: bool(self.delivered))
    def redelivery(self, data: st.DataObject) -> None:
        """Slack's retry of a message already taken: nothing changes in the conversation."""
        ts = data.draw(st.sampled_from(self.delivered))
        before = [t.ts for t in (*self.session.turns, *self.session.queued)]
        msg = IncomingMessage(
            team_id="T0",
            channel_id="C0",
            thread_ts="1700000000.000000",
            ts=ts,
            user_id="U0ALICE",
            text="again",
            mentions_bot=True,
            policy=self.policy,  # type: ignore[arg-type]
        )
        self.apply(UserMessage(msg))
        assert [t.ts for t in (*self.session.turns, *self.session.queued)] == before

    @rule(index=st.integers(min_value=0, max_value=50))
    @precondition(lambda self: bool(self.world.timers))
    def timer_fires(self, index: int) -> None:
        timer = self.world.timers.pop(index % len(self.world.timers))
        self.apply(TimerFired(timer))

    @rule(person=st.sampled_from([*PEOPLE, "U0STRANGER"]), admin=st.booleans())
    def stop(self, person: str, admin: bool) -> None:
        running = self.session.running
        allowed = admin or person in self.session.participants()
        d = self.apply(StopRequested(person, admin))
        if running is not None and allowed:
            assert d.note == "stopped"
            assert self.world.tasks[running.task_id].cancelled
        if not allowed and self.session.started:
            assert d.note in ("not_allowed", "no_session")
            assert self.session.running == running

    @rule()
    def reset(self) -> None:
        self.apply(StopRequested("U0ADMIN", is_admin=True, reset=True))
        assert not self.session.turns
        assert not self.session.queued
        assert self.session.running is None
        self.delivered = []

    @rule(data=st.data(), outcome=st.sampled_from(["completed", "failed", "cancelled"]))
    @precondition(lambda self: any(not t.reported for t in self.world.tasks.values()))
    def task_reports(self, data: st.DataObject, outcome: str) -> None:
        """A live task reports once: a cancelled one as cancelled (or, racing the cancel, as
        completed); a running one as completed or failed."""
        live = [t for t in self.world.tasks.values() if not t.reported]
        task = data.draw(st.sampled_from(live))
        if task.cancelled and outcome == "failed":
            outcome = "cancelled"
        if not task.cancelled and outcome == "cancelled":
            outcome = "completed"
        work = data.draw(st.text(max_size=400))
        changes = ChangeSummary(files=["a.py"], added=1) if data.draw(st.booleans()) else None
        took = data.draw(st.integers(min_value=0, max_value=len(task.steered)))
        report = TaskReport(
            task_id=task.id,
            outcome=outcome,  # type: ignore[arg-type]
            text=work,
            changes=changes,
            steered=task.steered[:took],
        )
        task.reported = True
        running = self.session.running
        self.apply(TaskEnded(report))
        if running is not None and running.task_id != task.id:
            assert self.session.running is not None
            assert self.session.running.task_id == running.task_id, "a stale report cleared"
        if running is not None and running.task_id == task.id:
            left = {*running.steering, *running.delivered} - set(report.steered)
            bounded = any(t.kind == "dropped" for t in self.session.turns)
            if left and self.session.started and not bounded:
                # What the run did not take in starts the next run, as a reply after its end.
                assert self.session.running is not None
                assert left <= self.world.tasks[self.session.running.task_id].requested

    @rule(data=st.data(), inboxes=st.integers(min_value=0, max_value=3))
    @precondition(lambda self: self.session.running is not None)
    def the_run_opens_inboxes(self, data: st.DataObject, inboxes: int) -> None:
        """The running task opens inboxes and says which steering messages it took in."""
        running = self.session.running
        assert running is not None
        self.open_inboxes(data, self.world.tasks[running.task_id], inboxes)

    @rule(data=st.data())
    @precondition(lambda self: any(not t.reported for t in self.world.tasks.values()))
    def a_late_inbox(self, data: st.DataObject) -> None:
        """A task's inbox message that reaches the agent after it was cut or replaced."""
        task = data.draw(st.sampled_from([t for t in self.world.live() if not t.reported]))
        self.open_inboxes(data, task, 1)

    def open_inboxes(self, data: st.DataObject, task: Task, inboxes: int) -> None:
        names = [f"awk_{len(self.world.inboxes) + i}" for i in range(inboxes)]
        for name in names:
            self.world.inboxes[name] = task.id
        took = data.draw(st.integers(min_value=0, max_value=len(task.steered)))
        opened = TaskInbox(task_id=task.id, inboxes=names, taken=task.steered[:took])
        self.apply(InboxOpened(opened))

    @rule(data=st.data())
    @precondition(lambda self: any(t.cancelled and not t.reported for t in self.world.live()))
    def stand_in_report(self, data: st.DataObject) -> None:
        """`settle`'s report for a cancelled task, even before the task's own (which still
        comes): the restart goes on, and nothing the task did is lost."""
        live = [t for t in self.world.tasks.values() if t.cancelled and not t.reported]
        task = data.draw(st.sampled_from(live))
        report = TaskReport(
            task_id=task.id, outcome="cancelled", model_started=False, stand_in=True
        )
        self.apply(TaskEnded(report))
        assert self.session.cancelling is None or self.session.cancelling.task_id != task.id

    @rule(data=st.data())
    @precondition(lambda self: any(t.reported for t in self.world.tasks.values()))
    def repeated_report(self, data: st.DataObject) -> None:
        """A report for a task already settled (a stale or repeated one) changes nothing but
        the clock."""
        task = data.draw(st.sampled_from([t for t in self.world.tasks.values() if t.reported]))
        before = self.session.model_dump(exclude={"updated_at"})
        self.apply(TaskEnded(TaskReport(task_id=task.id, outcome="completed", text="late")))
        assert self.session.model_dump(exclude={"updated_at"}) == before

    @rule(data=st.data())
    @precondition(lambda self: bool(self.world.tasks))
    def progress(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from(list(self.world.tasks.values())))
        running = self.session.running
        self.apply(ProgressReported(TaskProgress(task_id=task.id, step="call model 2")))
        assert (self.session.running is None) == (running is None)

    @rule(person=st.sampled_from(PEOPLE), again=st.booleans())
    def ask_to_ship(self, person: str, again: bool) -> None:
        """ "open a PR" (or a redelivery of one): it starts only when no run works."""
        ts = "1700000000.000000" if again else self.next_ts()
        self.apply(ShipRequested(ShipRequest(user_id=person, ts=ts)))

    @rule(data=st.data(), outcome=st.sampled_from(["shipped", "denied", "failed"]))
    @precondition(lambda self: any(not done for done in self.world.ships.values()))
    def ship_reports(self, data: st.DataObject, outcome: str) -> None:
        job = data.draw(st.sampled_from([j for j, done in self.world.ships.items() if not done]))
        self.world.ships[job] = True
        branch = "agent/fix-0123abcd" if outcome == "shipped" else None
        report = ShipReport(job=job, outcome=outcome, branch=branch)  # type: ignore[arg-type]
        self.apply(Shipped(report))
        assert self.session.ship.running != job

    # ------------------------------------------------------------------ invariants
    @invariant()
    def a_ship_never_runs_beside_a_task_it_did_not_wait_for(self) -> None:
        """The ship under way is the only one, and one asked for waits while a run works."""
        ship = self.session.ship
        live = [job for job, done in self.world.ships.items() if not done]
        assert len(live) <= 1
        assert ship.running is None or live == [ship.running]
        if ship.wanted_by is not None and ship.running is None:
            s = self.session
            assert s.running or s.cancelling or s.pending_ts, "a wanted ship was not started"

    @invariant()
    def at_most_one_task_and_it_is_named(self) -> None:
        s = self.session
        if s.running is not None:
            assert s.running.task_id.startswith("inv_")
            assert s.cancelling is None or s.cancelling.task_id != s.running.task_id
        live = [t for t in self.world.tasks.values() if not t.reported and not t.cancelled]
        assert len(live) <= 1, "two tasks running uncancelled"
        if s.running is not None:
            assert [t.id for t in live] == [s.running.task_id]

    @invariant()
    def every_message_once_and_in_order(self) -> None:
        s = self.session
        users = [t for t in (*s.early, *s.turns, *s.queued) if t.kind == "user"]
        seen = [t.ts for t in users]
        assert len(seen) == len(set(seen)), "a message appears twice"
        dropped = sum(t.dropped for t in (*s.turns, *s.queued) if t.kind == "dropped")
        if not dropped:
            assert set(self.delivered) <= set(seen), "a message was lost"
        in_turns = [t.ts or "" for t in s.turns if t.kind == "user"]
        assert in_turns == sorted(in_turns), "the conversation is out of Slack order"

    @invariant()
    def within_bounds(self) -> None:
        s, limits = self.session, self.limits
        assert len(s.turns) <= limits.max_turns
        assert sum(t.size() for t in s.turns if t.kind != "dropped") <= limits.max_bytes
        assert len(s.queued) <= limits.max_queued
        assert len(s.runs) <= 50

    @invariant()
    def every_report_ends_its_run_once(self) -> None:
        assert all(count == 1 for count in self.world.runs_ended.values())

    def teardown(self) -> None:
        """Every started task is eventually settled: report them all, fire every timer."""
        for _ in range(100):
            live = [t for t in self.world.tasks.values() if not t.reported]
            ships = [job for job, done in self.world.ships.items() if not done]
            if not live and not self.world.timers and not ships:
                break
            if ships:
                self.world.ships[ships[0]] = True
                self.apply(Shipped(ShipReport(job=ships[0], outcome="denied")))
            elif live:
                task = live[0]
                task.reported = True
                outcome = "cancelled" if task.cancelled else "completed"
                self.apply(TaskEnded(TaskReport(task_id=task.id, outcome=outcome)))  # type: ignore[arg-type]
            else:
                self.apply(TimerFired(self.world.timers.pop(0)))
        s = self.session
        assert s.running is None
        assert s.cancelling is None
        assert not s.late
        assert not s.queued
        assert s.pending_ts is None
        assert s.ship.running is None
        assert s.ship.wanted_by is None
        super().teardown()


SessionMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)
TestSessionMachine = SessionMachine.TestCase
