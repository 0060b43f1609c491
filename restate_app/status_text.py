"""What a run's status message says: what the agent is doing now (planning, thinking, the tool
step it runs, what it waits for), the plan it stated, its latest text and its tool steps, as
Slack mrkdwn. Pure: `StatusView` (`restate_app/task_slack.py`) decides when Slack sees it.
"""

from __future__ import annotations

from common.slack_text import escape
from restate_app.mrkdwn import to_mrkdwn
from restate_app.slack_io import MAX_MESSAGE_CHARS

PLANNING = "Planning…"
THINKING = "Thinking…"
MAX_ACTIVITY_LINES = 6
# The plan stays shown under its own bound; the latest text gets the room left.
MAX_PLAN_CHARS = 1200
_RUNNING, _WAITING = "▸ ", "⏸ "
_WAITING_SUFFIX = ": waiting for approval"


def about_line(repo: str | None, name: str | None, model: str) -> str:
    """The status message's last line: the repository and the model the run works with."""
    parts = [f"repo {_code(repo)}"] if repo else []
    if model:
        parts.append(f"model {_code(name)} ({_code(model)})" if name else f"model {_code(model)}")
    return f"_{' · '.join(parts)}_" if parts else ""


def _code(text: str | None) -> str:
    plain = (text or "").replace("`", "'")
    return f"`{escape(plain)}`"


class StatusText:
    """The state a status message shows; every change counts up `version`."""

    def __init__(self) -> None:
        self.about = ""
        self.version = 0
        # The text of the model call streaming now; the first text a call that went on to
        # tools wrote (the plan), and the latest one after it.
        self.text = ""
        self.plan = ""
        self.note = ""
        self.calls = 0
        self.lines: dict[str, str] = {}

    def _changed(self) -> None:
        self.version += 1

    # ------------------------------------------------------------------ what happens
    def new_turn(self) -> None:
        """A model call starts; the text of the one before (it asked for tools) stays shown."""
        if self.text.strip():
            if self.plan:
                self.note = self.text
            else:
                self.plan = self.text
        self.text = ""
        self.calls += 1
        self._changed()

    def show_text(self, text: str) -> None:
        self.text = text
        self._changed()

    def tool_started(self, call_id: str, line: str) -> None:
        self._set(call_id, _RUNNING + escape(line))

    def tool_ticked(self, call_id: str, line: str, seconds: int) -> None:
        """A long tool step's elapsed time: ``Running `x` (12 s)``."""
        self._set(call_id, f"{_RUNNING}{escape(line)} ({seconds} s)")

    def tool_ended(self, call_id: str, failed: bool, exit_note: str = "") -> None:
        line = self._bare(call_id)
        self._set(call_id, f"{'✗' if failed else '✓'} {line}{exit_note}")

    def waiting(self, call_id: str, line: str) -> None:
        self._set(call_id, f"{_WAITING}{escape(line)}{_WAITING_SUFFIX}")

    def refused(self, call_id: str, why: str) -> None:
        self._set(call_id, f"✗ {self._bare(call_id)} ({why})")

    def note_line(self, key: str, line: str) -> None:
        """A line of its own among the activity: a steering message the run took in."""
        self._set(key, escape(line))

    def _bare(self, key: str) -> str:
        line = self.lines.get(key, "")
        line = line.removeprefix(_RUNNING).removeprefix(_WAITING)
        return line.removesuffix(_WAITING_SUFFIX)

    def _set(self, key: str, line: str) -> None:
        self.lines[key] = line
        self.lines = dict(list(self.lines.items())[-MAX_ACTIVITY_LINES:])
        self._changed()

    # ------------------------------------------------------------------ what it says
    def now(self) -> str:
        """One line: the step running now (the latest started), else the model's phase."""
        for line in reversed(self.lines.values()):
            if line.startswith(_RUNNING):
                return line.removeprefix(_RUNNING)
            if line.startswith(_WAITING):
                return line.removeprefix(_WAITING)
        return PLANNING if self.calls <= 1 else THINKING

    def render(self) -> str:
        head = f":hourglass_flowing_sand: {self.now()}"
        plan = to_mrkdwn(self.plan.strip())[:MAX_PLAN_CHARS]
        latest = self.text if self.text.strip() else self.note
        room = MAX_MESSAGE_CHARS - 800 - len(plan)
        text = to_mrkdwn(latest.strip())[-room:] if room > 0 else ""
        activity = "\n".join(self.lines.values())
        body = "\n\n".join(part for part in (head, plan, text, activity) if part)
        return "\n".join(part for part in (body, self.about) if part)
