"""The conversation a session keeps, as `decide` changes it: a copy it may change, the
redeliveries it recognises, the bounds that remember what they dropped, the queue merged in.
"""

from __future__ import annotations

from common.contract import Turn
from common.session_state import Session
from restate_app.session_events import Limits
from restate_app.turns import bound_turns, dropped_text, insert_in_slack_order, ts_key


def working_copy(session: Session) -> Session:
    """A copy of `session` that `decide` may change: its lists, and the records it edits in
    place, are new; turns are shared, as they are never edited in place (a changed turn is a
    new one). A deep copy of a long conversation costs milliseconds on the restart path."""
    return session.model_copy(
        update={
            "turns": list(session.turns),
            "queued": list(session.queued),
            "early": list(session.early),
            "running": session.running.model_copy() if session.running else None,
            "cancelling": session.cancelling.model_copy() if session.cancelling else None,
            "late": [c.model_copy() for c in session.late],
            "runs": [r.model_copy() for r in session.runs],
            "ship": session.ship.model_copy(),
        }
    )


def seen(s: Session, ts: str) -> bool:
    """A message already in the session (a redelivery that Restate's idempotency missed), or
    one as old as those its bounds have dropped."""
    if s.dropped_through is not None and ts_key(ts) <= ts_key(s.dropped_through):
        return True
    return any(t.ts == ts and t.kind == "user" for t in (*s.turns, *s.queued, *s.early))


def bound(s: Session, turns: list[Turn], max_turns: int, max_bytes: int) -> None:
    """Bound `turns`, remembering how far the dropped messages went (for `seen`)."""
    for turn in bound_turns(turns, max_turns, max_bytes):
        newer = s.dropped_through is None or ts_key(turn.ts) > ts_key(s.dropped_through)
        if turn.kind == "user" and turn.ts and newer:
            s.dropped_through = turn.ts


def merge_queue(s: Session, limits: Limits) -> None:
    for turn in s.queued:
        if turn.kind == "dropped" and s.turns and s.turns[0].kind == "dropped":
            dropped = s.turns[0].dropped + turn.dropped
            s.turns[0] = s.turns[0].model_copy(
                update={"dropped": dropped, "text": dropped_text(dropped)}
            )
        elif turn.kind == "dropped":
            s.turns.insert(0, turn)
        else:
            insert_in_slack_order(s.turns, turn)
    s.queued = []
    bound(s, s.turns, limits.max_turns, limits.max_bytes)
