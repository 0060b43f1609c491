"""Renders benchmark results as Markdown tables, with the machine, the settings and targets.

When the output file already has an analysis section (after `ANALYSIS_MARK`), it is kept: the
numbers are regenerated, the written explanation of them is not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.ack import AckResult
from bench.busy import BusyResult
from bench.interrupts import InterruptResults
from bench.scale import ScaleResult
from bench.stats import Summary
from bench.timeline import Outcome
from bench.tools import ToolResults
from common.slack_text import counted

ANALYSIS_MARK = "<!-- analysis: kept when the tables are regenerated -->"


@dataclass(frozen=True)
class Results:
    machine: dict[str, str]
    settings: dict[str, str]
    interrupts: InterruptResults | None
    acks: list[AckResult]
    scale: ScaleResult | None
    tools: ToolResults | None = None
    busy: list[BusyResult] | None = None


def _f(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _pick(outcomes: list[Outcome], field: Callable[[Outcome], float | None]) -> Summary:
    return Summary.of([v for v in map(field, outcomes) if v is not None])


def _closed(o: Outcome) -> float | None:
    return o.closed_ms


def _notice(o: Outcome) -> float | None:
    return o.notice_ms


def _new(o: Outcome) -> float | None:
    return o.new_request_ms


def _wasted(o: Outcome) -> float | None:
    return None if o.wasted_chunks is None else float(o.wasted_chunks)


def _row(what: str, s: Summary, target: str = "", digits: int = 1) -> list[str]:
    cells = [_f(s.p50, digits), _f(s.p95, digits), _f(s.p99, digits), _f(s.max, digits)]
    return [what, str(s.n), *cells, target]


LAT_HEADER = ["measure", "n", "p50", "p95", "p99", "max", "target"]


def interrupt_section(r: InterruptResults) -> list[str]:
    prod = {name: _pick(r.product, f) for name, f in (("c", _closed), ("n", _new))}
    floor = {name: _pick(r.floor, f) for name, f in (("c", _closed), ("n", _new))}
    rows = [
        _row("product: reply at bot → old stream closed (ms)", prod["c"], "p50 ≤ 25, p99 ≤ 100"),
        _row("product: reply at bot → notice posted (ms)", _pick(r.product, _notice)),
        _row("product: reply at bot → new model request (ms)", prod["n"], "p50 ≤ 60"),
        _row("floor: ingress call → old stream closed (ms)", floor["c"]),
        _row("floor: ingress call → new model request (ms)", floor["n"]),
        _row("naive asyncio: cancel → old stream closed (ms)", _pick(r.naive, _closed)),
        _row("naive asyncio: cancel → new model request (ms)", _pick(r.naive, _new)),
        _row("product ÷ floor: stream closed (x)", prod["c"].ratio(floor["c"]), "≤ 2", 2),
        _row("product ÷ floor: new model request (x)", prod["n"].ratio(floor["n"]), "p50 ≤ 1.5", 2),
    ]
    wasted = [
        _row("product", _pick(r.product, _wasted), "≤ 1", 0),
        _row("floor", _pick(r.floor, _wasted), "", 0),
        _row("naive asyncio", _pick(r.naive, _wasted), "", 0),
    ]
    return [
        "## Interruption latency (one channel, limits enforced, one interruption at a time)",
        "",
        *_table(LAT_HEADER, rows),
        "",
        "## Wasted chunks: sent by the model after the reply reached the bot (per interruption)",
        "",
        *_table(LAT_HEADER, wasted),
    ]


def ack_section(acks: list[AckResult]) -> list[str]:
    header = ["events/s", "events", "messages", "ack p50", "p95", "p99", "max"]
    header += ["not acked (2xx within 3 s)"]
    header += ["tasks per message", "lost", "duplicated", "drain (s)"]
    rows = [
        [
            str(a.rate),
            str(a.events),
            str(a.messages),
            *(_f(v) for v in (a.ack_ms.p50, a.ack_ms.p95, a.ack_ms.p99, a.ack_ms.max)),
            str(a.non_2xx),
            f"{a.min_tasks}..{a.max_tasks}" if a.min_tasks != a.max_tasks else str(a.min_tasks),
            str(a.lost),
            str(a.duplicated),
            _f(a.drain_s),
        ]
        for a in acks
    ]
    return [
        "## Ack latency and throughput (event → HTTP 200 from the bot, ms; target p99 ≤ 50 "
        "at 200/s, 1 task per message, 0 lost)",
        "",
        "Each message is a new mention (twin `app_mention` + `message` events, every tenth "
        "also a Slack retry). An event not acked with a 2xx within 3 s is redelivered as Slack "
        "does (after 1, 5, 10 s); *lost* counts messages with no task after that.",
        "",
        *_table(header, rows),
    ]


def scale_section(s: ScaleResult) -> list[str]:
    rows = [
        _row("reply at bot → old stream closed (ms)", _pick(s.outcomes, _closed)),
        _row("reply at bot → notice posted (ms)", _pick(s.outcomes, _notice)),
        _row("reply at bot → new model request (ms)", _pick(s.outcomes, _new), "p99 ≤ 250"),
        _row("reply ack (ms)", s.ack_ms),
        _row("wasted chunks", _pick(s.outcomes, _wasted), "≤ 1", 0),
        _row("Restate state per session (bytes)", s.state_bytes, "", 0),
    ]
    no_stream = sum(1 for o in s.outcomes if o.closed_ms is None)
    usage = [[u.name, _f(u.cpu_cores, 2), _f(u.peak_rss_mib, 0)] for u in s.usage]
    return [
        f"## Scale: {s.sessions} sessions streaming ({s.streaming} confirmed open), a tenth "
        f"interrupted every second for {s.seconds:.0f} s",
        "",
        f"{counted(s.interruptions, 'interruption')}; {no_stream} hit a run that had no open "
        "stream yet "
        f"(their close time is not counted); non-2xx acks: {s.non_2xx}.",
        "",
        *_table(LAT_HEADER, rows),
        "",
        f"Process cost over the {s.window_s:.0f} s window (cores: 1.0 = one core busy):",
        "",
        *_table(["process", "CPU (cores)", "peak RSS (MiB)"], usage),
    ]


def tools_section(t: ToolResults) -> list[str]:
    overhead = Summary(
        n=t.step_ms.n,
        p50=t.step_ms.p50 - t.sandboxed_ms.p50,
        p95=t.step_ms.p95 - t.sandboxed_ms.p95,
        p99=t.step_ms.p99 - t.sandboxed_ms.p99,
        max=t.step_ms.max - t.sandboxed_ms.max,
    )
    rows = [
        _row("reply sent to the bot → running command's process gone (ms)", t.kill_ms),
        _row("tool call as a durable step, per call (ms)", t.step_ms),
        _row("same sandboxed command run directly (ms)", t.sandboxed_ms),
        _row("bare `true` subprocess, no sandbox (ms)", t.bare_ms),
        _row("durable step overhead: step - direct (ms)", overhead),
    ]
    return [
        "## Tools: a reply kills the running command; what a durable tool step costs",
        "",
        "A tool step includes handing the work tree to the command's uid, bubblewrap, and "
        "recording the workspace's patch after a command that may change files.",
        "",
        *_table(LAT_HEADER, rows),
    ]


def busy_section(cases: list[BusyResult]) -> list[str]:
    lines = [
        "## One busy channel under Slack's limits (the sandbox answers 429 past them)",
        "",
        "Every session in one channel; replies open-loop. Targets: new model request p50 "
        "≤ 60 ms, every restart of the all-at-once case within 2 s, no call inside a "
        "`Retry-After` window, one notice per interrupted run, one final answer per completed "
        "run, no status message left showing work.",
        "",
    ]
    for case in cases:
        rows = [
            _row("reply at bot → old stream closed (ms)", _pick(case.outcomes, _closed)),
            _row("reply at bot → notice visible (ms)", _pick(case.outcomes, _notice)),
            _row("reply at bot → new model request (ms)", _pick(case.outcomes, _new), "≤ 60"),
        ]
        shown = case.shown
        counts = [
            ["429s Slack answered", str(case.rate_limited)],
            ["calls made inside a Retry-After window", f"{case.during_retry_after} (target 0)"],
            ["progress updates skipped by the limiter", str(case.skipped)],
            ["replies / runs they cut", f"{case.replies} / {shown.interrupted}"],
            ["notices in the threads / runs cut", f"{shown.notices} / {shown.interrupted}"],
            [
                "threads with one final answer per completed run",
                f"{shown.answers_right} / {shown.threads}",
            ],
            ["threads with a notice below their answer", str(shown.notice_below_answer)],
            ["status messages left showing work at the end", f"{shown.left_working} (target 0)"],
            ["last reply → nothing running, threads settled (s)", _f(case.settle_s)],
        ]
        lines += [f"### {case.label}", "", *_table(LAT_HEADER, rows), ""]
        lines += [*_table(["count", "value"], counts), ""]
    return lines


def render(results: Results) -> str:
    machine = [f"- **{k}**: {v}" for k, v in results.machine.items()]
    settings = [f"- {k}: {v}" for k, v in results.settings.items()]
    lines = ["# Benchmarks", "", "Generated by `make bench` (`python -m bench`).", ""]
    lines += ["## Machine", "", *machine, "", "## Settings", "", *settings, ""]
    if results.interrupts is not None:
        lines += [*interrupt_section(results.interrupts), ""]
    if results.busy:
        lines += busy_section(results.busy)
    if results.tools is not None:
        lines += [*tools_section(results.tools), ""]
    if results.acks:
        lines += [*ack_section(results.acks), ""]
    if results.scale is not None:
        lines += [*scale_section(results.scale), ""]
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    """Write the report, keeping an existing analysis section."""
    kept = ""
    if path.exists():
        old = path.read_text()
        if ANALYSIS_MARK in old:
            kept = old[old.index(ANALYSIS_MARK) :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + ("\n" + kept if kept else ""))
