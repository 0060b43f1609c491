"""The forwarder's ack-path sends never queue behind its minute-long calls."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer

from bot.forwarder import RestateForwarder
from common.contract import IncomingMessage, StopRequest
from tests.unit.bot_fakes import CHANNEL, TEAM, FakeRestate, eventually

POOL = 4


async def test_a_forward_goes_through_while_stop_calls_hold_every_connection() -> None:
    """As many stop calls as the pool has connections wait on Restate; a message Slack's
    ack waits for is still sent at once (it has its own pool)."""
    hold = asyncio.Event()
    restate = FakeRestate(hold_stops=hold)
    server = TestServer(restate.app(), host="127.0.0.1", port=0)
    await server.start_server()
    url = str(server.make_url(""))
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL)) as ack_path,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL)) as calls,
        ):
            forwarder = RestateForwarder(ack_path, url, url, calls_session=calls)
            stops = [
                asyncio.create_task(
                    forwarder.stop(f"{TEAM}:{CHANNEL}:1.{i:06d}", StopRequest(user_id="U1"), "k")
                )
                for i in range(POOL + 2)
            ]
            await eventually(lambda: len(restate.sent) == POOL)
            msg = IncomingMessage(
                team_id=TEAM,
                channel_id=CHANNEL,
                thread_ts="2.000001",
                ts="2.000001",
                user_id="U1",
                text="hi",
            )
            assert await asyncio.wait_for(forwarder.forward(msg), timeout=1.0) == "inv_1"
            hold.set()
            assert all(ack.stopped for ack in await asyncio.gather(*stops))
    finally:
        await server.close()
