"""Bounds on what the tools hand back: text cut to its head and tail with an exact count of
what was left out, and a byte buffer that keeps a command's output bounded however much it
prints.

Every tool result lands in Restate's journal and in the next model request, so nothing
unbounded may leave this package.
"""

from __future__ import annotations

NO_OUTPUT = "(no output)"


def elided_marker(count: int, unit: str = "characters") -> str:
    return f"\n[… {count} {unit} elided …]\n"


def clip(text: str, max_chars: int) -> str:
    """`text` when it fits in `max_chars`, else its head and tail around a marker that says
    exactly how many characters were left out; the result never exceeds `max_chars`."""
    if len(text) <= max_chars:
        return text
    # The marker can only get shorter than this estimate (it counts at most len(text)).
    budget = max_chars - len(elided_marker(len(text)))
    if budget <= 0:
        return text[:max_chars]
    head_end = _line_end_before(text, budget - budget // 2)
    tail_start = _line_start_after(text, len(text) - budget // 2)
    return text[:head_end] + elided_marker(tail_start - head_end) + text[tail_start:]


def clip_output(text: str, max_chars: int) -> str:
    """Like `clip`, for what a command or search printed: an empty output says so."""
    return clip(text, max_chars) if text.strip() else NO_OUTPUT


def clip_lines(lines: list[str], max_lines: int, noun: str = "lines") -> list[str]:
    """The first `max_lines` lines, and a last line saying how many more there were."""
    if len(lines) <= max_lines:
        return lines
    return [*lines[:max_lines], f"… and {len(lines) - max_lines} more {noun}"]


def _line_end_before(text: str, end: int) -> int:
    """Cut the head after a whole line when one ends in the last quarter of it."""
    newline = text.rfind("\n", end - end // 4, end)
    return newline + 1 if newline >= 0 else end


def _line_start_after(text: str, start: int) -> int:
    """Start the tail at a whole line when one starts in the first quarter of it."""
    newline = text.find("\n", start, start + (len(text) - start) // 4)
    return newline + 1 if newline >= 0 else start


class OutputBuffer:
    """Keeps the first and last `max_bytes / 2` bytes of a stream and counts the rest, so a
    command printing gigabytes costs neither memory nor journal space."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        head_room = self.max_bytes // 2 - len(self._head)
        if head_room > 0:
            self._head += chunk[:head_room]
            chunk = chunk[head_room:]
        if not chunk:
            return
        keep = self.max_bytes - self.max_bytes // 2
        self._tail += chunk[-keep:]
        if len(self._tail) > keep:
            del self._tail[: len(self._tail) - keep]

    @property
    def elided(self) -> int:
        return self.total - len(self._head) - len(self._tail)

    def text(self) -> str:
        """What was kept, decoded; a marker in the middle counts the bytes left out."""
        if self.elided == 0:
            return bytes(self._head + self._tail).decode("utf-8", errors="replace")
        head = self._head.decode("utf-8", errors="replace")
        tail = self._tail.decode("utf-8", errors="replace")
        return head + elided_marker(self.elided, "bytes") + tail
