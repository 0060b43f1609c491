"""The bare interruption pattern on Restate, as a reference floor: no Slack, no bot, no history.

`BenchAgent.message` (virtual object) cancels the running `BenchTask`, waits (bounded) for it to
end, and starts a new one with a one-way send. `BenchTask.run` streams one answer from the
offline model inside a `ctx.run`; a cancellation closes the stream, one durable cleanup step
runs, and the error is re-raised. Served over HTTP/2 by hypercorn like `restate_app`:

    python -m bench.floor_app   (RESTATE_ADMIN_URL, OPENAI_BASE_URL, READY_FILE)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import timedelta
from typing import Any

import openai
import restate
from hypercorn.asyncio import serve
from pydantic import BaseModel
from restate.exceptions import TerminalError

from common.runtime import bind_socket, restate_endpoint_config, stop_event, write_ready_file
from restate_app.registration import register

AGENT = "BenchAgent"
TASK = "BenchTask"
RUNNING = "running"
CLEANUP_WAIT = timedelta(seconds=10)


class FloorMessage(BaseModel):
    text: str


def create_services(model: openai.AsyncOpenAI) -> list[Any]:
    """The floor's virtual object and service, sharing one model client."""
    agent = restate.VirtualObject(AGENT)
    task = restate.Service(
        TASK, inactivity_timeout=timedelta(minutes=15), abort_timeout=timedelta(minutes=15)
    )

    async def stream(text: str) -> str:
        out = ""
        messages: list[Any] = [{"role": "user", "content": text}]
        response = await model.chat.completions.create(
            model="floor", messages=messages, stream=True
        )
        async with response:
            async for chunk in response:
                if chunk.choices and chunk.choices[0].delta.content:
                    out += chunk.choices[0].delta.content
        return out

    @task.handler()
    async def run(ctx: restate.Context, msg: FloorMessage) -> str:
        try:
            return await ctx.run_typed("stream", stream, text=msg.text)
        except TerminalError:
            await ctx.run_typed("cleanup", lambda: "cleaned")
            raise

    @agent.handler()
    async def message(ctx: restate.ObjectContext, msg: FloorMessage) -> None:
        running = await ctx.get(RUNNING, type_hint=str)
        if running:
            ctx.cancel_invocation(running)
            ended = ctx.attach_invocation(running, type_hint=str)
            done, _ = await restate.wait_completed(ended, ctx.sleep(CLEANUP_WAIT))
            if ended in done:
                with contextlib.suppress(TerminalError):
                    await ended
        handle = ctx.service_send(run, msg)
        ctx.set(RUNNING, await handle.invocation_id())

    return [agent, task]


async def _serve() -> None:
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    config = restate_endpoint_config(sock, graceful_timeout=3.0)
    stop = stop_event()
    model = openai.AsyncOpenAI(
        api_key="sk-bench", base_url=os.environ["OPENAI_BASE_URL"], max_retries=0
    )
    app = restate.app(create_services(model), protocol="bidi")
    server = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    url = f"http://127.0.0.1:{port}"
    await register(os.environ["RESTATE_ADMIN_URL"], url)
    write_ready_file(os.environ.get("READY_FILE"), {"url": url, "port": port})
    await stop.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server, timeout=3)
    await model.close()


if __name__ == "__main__":
    asyncio.run(_serve())
