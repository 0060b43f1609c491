"""`python -m bench`: start the whole stack on loopback, measure, print and write the tables.

python -m bench --interruptions 200 --scale-sessions 500 --scale-seconds 60
python -m bench --quick              # tiny counts, a smoke run
python -m bench --profile DIR        # product processes under pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench import ack, busy, interrupts, launch, machine, report, scale, tools
from bench.clients import Control, SlackEvents, bench_channels
from bench.launch import BenchStack

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("--interruptions", type=int, default=200, help="per kind (product, floor, naive)")
    add("--per-block", type=int, default=20, help="interruptions per kind and turn")
    add("--chunk-delay", type=float, default=0.05, help="model pace, seconds per chunk")
    add("--ack-rates", default="50,200,500", help="events per second, comma-separated")
    add("--ack-seconds", type=float, default=5.0, help="duration of each rate")
    add("--scale-sessions", type=int, default=500, help="0 skips the scale run")
    add("--scale-seconds", type=int, default=60)
    add("--scale-chunk-delay", type=float, default=0.5, help="model pace during the scale run")
    add("--sessions", type=int, default=4, help="sessions interrupted round robin per block")
    add("--channels", type=int, default=250, help="sandbox channels the sessions spread over")
    add("--busy", default="5,20", help="sessions streaming in one busy channel, per case")
    add("--busy-replies", type=int, default=40, help="replies per busy-channel case")
    add("--busy-rate", type=float, default=1.0, help="replies per second in the busy channel")
    add("--all-at-once", type=int, default=50, help="threads in one channel interrupted at once")
    add("--kills", type=int, default=20, help="replies that kill a running command")
    add("--step-runs", type=int, default=5, help=f"runs of {tools.CALLS} tool calls each")
    add("--quick", action="store_true", help="tiny counts (seconds, not minutes)")
    add("--profile", type=Path, default=None, help="write pyinstrument reports here")
    add("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    add("--json", type=Path, default=None, help="also write the raw results as JSON")
    add("--workdir", type=Path, default=None, help="keep logs and Restate data here")
    args = parser.parse_args(argv)
    if args.quick:
        args.interruptions, args.per_block, args.ack_seconds = 6, 3, 1.0
        args.scale_sessions, args.scale_seconds = min(args.scale_sessions, 20), 3
        args.kills, args.step_runs = 3, 1
        args.busy, args.busy_replies, args.all_at_once = "2", 4, 5
    return args


def channels_of(args: argparse.Namespace) -> list[str]:
    return [channel for channel, _ in bench_channels(args.channels)]


def settings_of(args: argparse.Namespace) -> dict[str, str]:
    return {
        "interruptions per kind": f"{args.interruptions}, in blocks of {args.per_block} over "
        f"{args.sessions} streaming sessions (one interruption in flight at a time)",
        "channels": f"interruption series in one channel; ack and scale runs over "
        f"{args.channels} channels; the sandbox enforces Slack's published rate limits",
        "busy channel": f"{args.busy} sessions, {args.busy_replies} replies at "
        f"{args.busy_rate:g}/s; {args.all_at_once} threads interrupted at once",
        "model pace (interruption runs)": f"one chunk every {args.chunk_delay * 1e3:.0f} ms",
        "ack rates": f"{args.ack_rates} events/s, {args.ack_seconds:g} s each",
        "scale": f"{args.scale_sessions} sessions, {args.scale_seconds} s, "
        f"one chunk every {args.scale_chunk_delay * 1e3:.0f} ms per stream",
        "tools": f"{args.kills} replies killing `sleep 600` in the sandbox; {args.step_runs} "
        f"runs of {tools.CALLS} sandboxed `true` tool calls",
        "profiler": "pyinstrument (numbers not representative)" if args.profile else "off",
    }


async def measure(stack: BenchStack, args: argparse.Namespace) -> report.Results:
    limits = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=limits) as session:
        events = SlackEvents(session, stack.urls, stack.secret)
        control = Control(session, stack.urls)
        await control.echo_to(stack.urls["bot_events"])
        await control.pace(args.chunk_delay)
        channels = channels_of(args)
        drivers = interrupts.Drivers(
            events, control, stack.urls["model"], args.chunk_delay, channels[:1]
        )
        inter = await interrupts.run(drivers, args.interruptions, args.per_block, args.sessions)
        crowd = busy.Crowd(
            events, control, session, stack.urls["restate_app"] + "/metrics", args.chunk_delay
        )
        crowded = []
        for n, sessions in enumerate(int(x) for x in args.busy.split(",") if x.strip()):
            crowded.append(
                await busy.run(crowd, channels[1 + n], sessions, args.busy_replies, args.busy_rate)
            )
        if args.all_at_once > 0:
            crowded.append(await busy.all_at_once(crowd, channels[-1], args.all_at_once))
        tooled = await tools.run(events, control, channels, args.kills, args.step_runs)
        rates = [int(r) for r in args.ack_rates.split(",") if r.strip()]
        acks = await ack.run(events, control, rates, args.ack_seconds, channels)
        scaled = None
        if args.scale_sessions > 0:
            pids = {name: proc.popen.pid for name, proc in stack.procs.items()}
            scaled = await scale.run(
                events,
                control,
                pids,
                args.scale_sessions,
                args.scale_seconds,
                args.scale_chunk_delay,
                channels,
            )
    return report.Results(
        machine.describe(), settings_of(args), inter, acks, scaled, tooled, crowded
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        for folder in (workdir, args.profile):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        stack = launch.start(workdir, channels_of(args), args.profile)
        try:
            results = asyncio.run(measure(stack, args))
        finally:
            stack.stop()
    text = report.render(results)
    print(text)
    report.write(args.output, text)
    if args.json is not None:
        args.json.write_text(json.dumps(dataclasses.asdict(results), indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
