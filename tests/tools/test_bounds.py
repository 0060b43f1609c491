"""Bounds: head and tail with an exact count of what was left out."""

from __future__ import annotations

import re

from restate_app.tools.bounds import NO_OUTPUT, OutputBuffer, clip, clip_lines, clip_output


def elided(text: str) -> int:
    match = re.search(r"\[… (\d+) (?:characters|bytes) elided …\]", text)
    assert match is not None, text
    return int(match.group(1))


def test_short_text_is_returned_whole() -> None:
    assert clip("hello", 10) == "hello"


def test_long_text_keeps_head_and_tail_and_counts_exactly_what_was_left_out() -> None:
    text = "".join(f"line {i}\n" for i in range(1000))
    clipped = clip(text, 500)
    assert len(clipped) <= 500
    assert clipped.startswith("line 0\n")
    assert clipped.endswith("line 999\n")
    marker = re.search(r"\n\[… \d+ characters elided …\]\n", clipped)
    assert marker is not None
    kept = len(clipped) - len(marker.group(0))
    assert elided(clipped) == len(text) - kept


def test_text_without_newlines_is_cut_exactly_too() -> None:
    text = "x" * 10_000
    clipped = clip(text, 200)
    assert len(clipped) <= 200
    assert elided(clipped) == 10_000 - clipped.count("x")


def test_empty_output_says_so() -> None:
    assert clip_output("", 100) == NO_OUTPUT
    assert clip_output("  \n", 100) == NO_OUTPUT
    assert clip_output("ok\n", 100) == "ok\n"


def test_clip_lines_says_how_many_more() -> None:
    assert clip_lines(["a", "b", "c"], 2) == ["a", "b", "… and 1 more lines"]
    assert clip_lines(["a"], 2) == ["a"]


def test_output_buffer_keeps_head_and_tail_within_its_bound_and_counts_the_rest() -> None:
    buffer = OutputBuffer(100)
    for i in range(1000):
        buffer.feed(f"{i:04d}\n".encode())
    text = buffer.text()
    assert buffer.total == 5000
    assert text.startswith("0000\n")
    assert text.endswith("0999\n")
    assert elided(text) == 5000 - 100


def test_output_buffer_under_its_bound_is_exact() -> None:
    buffer = OutputBuffer(100)
    buffer.feed(b"hello ")
    buffer.feed(b"world")
    assert buffer.text() == "hello world"
    assert buffer.elided == 0
