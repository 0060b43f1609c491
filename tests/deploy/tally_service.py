"""`python -m tests.deploy.tally_service`: a tiny Restate service whose calls fill the log.

The log-trimming test needs many records in a partition's log and nothing else: each
`Tally/{key}/add` stores a few state entries, and each entry is a record of the log. Serves h2c
on a port the OS chooses and writes it to READY_FILE, like restate_app.
"""

from __future__ import annotations

import asyncio
import os

import restate
from hypercorn.asyncio import serve

from common.runtime import bind_socket, restate_endpoint_config, stop_event, write_ready_file

tally = restate.VirtualObject("Tally")
# State entries per call: more records per call, fewer calls to fill the log.
ENTRIES_PER_CALL = 8


@tally.handler()
async def add(ctx: restate.ObjectContext, amount: int) -> int:
    total = (await ctx.get("total", type_hint=int) or 0) + amount
    for i in range(ENTRIES_PER_CALL):
        ctx.set(f"entry-{i}", total)
    ctx.set("total", total)
    return total


@tally.handler(kind="shared")
async def total(ctx: restate.ObjectSharedContext) -> int:
    return await ctx.get("total", type_hint=int) or 0


async def _serve() -> None:
    sock = bind_socket("127.0.0.1", 0)
    stop = stop_event()
    app = restate.app([tally], protocol="bidi")
    server = asyncio.create_task(
        serve(app, restate_endpoint_config(sock), shutdown_trigger=stop.wait)
    )
    write_ready_file(os.environ["READY_FILE"], {"port": sock.getsockname()[1]})
    await server


if __name__ == "__main__":
    asyncio.run(_serve())
