"""A conversation's turns: Slack's order, and the bounds that keep a session's size fixed.

Pure helpers of the session machine (`restate_app/session.py`): every path that grows a
conversation goes through `bound_turns`; a run's transcript through `bound_work`.
"""

from __future__ import annotations

from common.contract import TaskReport, Turn, TurnKind


def ts_key(ts: str | None) -> tuple[int, int]:
    seconds, _, fraction = (ts or "0").partition(".")
    try:
        return int(seconds or 0), int(fraction or 0)
    except ValueError:
        return 0, 0


def insert_in_slack_order(turns: list[Turn], turn: Turn) -> None:
    """Add a user turn before the user turns of this exchange that Slack sent later.

    Slack does not promise to deliver events in order; the conversation follows message ts.
    The search stops at an answer or an earlier user turn: what was answered stays put.
    """
    at = len(turns)
    for index in range(len(turns) - 1, -1, -1):
        other = turns[index]
        if other.kind in ("answer", "dropped") or (
            other.kind == "user" and ts_key(other.ts) < ts_key(turn.ts)
        ):
            break
        if other.kind == "user":
            at = index
    turns.insert(at, turn)


def dropped_text(count: int) -> str:
    return f"[{count} earlier turns were dropped to keep this session's size bounded]"


def bound_turns(turns: list[Turn], max_turns: int, max_bytes: int) -> list[Turn]:
    """Drop the oldest turns beyond the limits, leaving one marker that counts them; returns
    the turns dropped now."""
    dropped = turns.pop(0).dropped if turns and turns[0].kind == "dropped" else 0
    size = sum(t.size() for t in turns)
    gone: list[Turn] = []
    while turns and (len(turns) + 1 > max_turns or size > max_bytes):
        gone.append(turns.pop(0))
        size -= gone[-1].size()
        dropped += 1
    if dropped:
        turns.insert(0, Turn(kind="dropped", text=dropped_text(dropped), dropped=dropped))
    return gone


def clip_text(text: str, max_bytes: int) -> str:
    """At most about `max_bytes` of `text`: its head and tail, with the cut said."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    half = max_bytes // 2
    head = data[:half].decode(errors="ignore")
    tail = data[-half:].decode(errors="ignore")
    return f"{head}\n[… {len(data) - 2 * half} bytes elided …]\n{tail}"


def bound_work(turn: Turn, max_bytes: int) -> Turn:
    """Keep a run's transcript within `max_bytes`: the oldest tool outputs are summarised
    first, so the latest results (what the next run most needs) stay whole."""
    work = [step.model_copy() for step in turn.work]
    index = 0
    while turn.model_copy(update={"work": work}).size() > max_bytes and index < len(work):
        step = work[index]
        if step.role == "tool" and len(step.text) > 200:
            lines = step.text.count("\n") + 1
            summary = f"[output of {step.name or 'tool'} elided ({lines} lines) to keep "
            work[index] = step.model_copy(update={"text": summary + "the session bounded]"})
        elif step.role == "assistant" and len(step.text) > 2000:
            work[index] = step.model_copy(update={"text": clip_text(step.text, 2000)})
        index += 1
    return turn.model_copy(update={"work": work})


def outcome_turn(report: TaskReport, max_bytes: int) -> Turn | None:
    """What a finished run adds to the conversation: its answer, what it did before it was
    cut off, or that it failed (None: a run cut before it did anything)."""
    if report.outcome == "failed":
        return Turn(kind="error", text="The run failed.", task_id=report.task_id)
    kind: TurnKind
    if report.outcome == "completed":
        kind = "answer"
    elif report.text.strip() or report.work:
        kind = "partial"
    else:
        return None
    turn = Turn(
        kind=kind,
        text=clip_text(report.text, max_bytes),
        task_id=report.task_id,
        stopped=kind == "partial" and report.outcome == "stopped",
    )
    return bound_work(turn.model_copy(update={"work": report.work}), max_bytes)


def insert_before(turns: list[Turn], turn: Turn, before_ts: str | None) -> None:
    """Add `turn` before the user turn `before_ts` (the reply that cut its run), else last."""
    at = next((i for i, t in enumerate(turns) if before_ts and t.ts == before_ts), None)
    turns.insert(len(turns) if at is None else at, turn)
