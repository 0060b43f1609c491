"""Registers this deployment with the Restate admin API, idempotently.

`python -m restate_app.registration` does only that and exits: the one-shot job of compose and
Kubernetes, which register each release's URL once instead of every replica on start.
"""

from __future__ import annotations

import asyncio

import aiohttp
import structlog

from common.logging import configure
from common.settings import RegistrationSettings, load_or_exit

log = structlog.get_logger(__name__)


class RegistrationError(RuntimeError):
    pass


async def register(admin_url: str, deployment_url: str, attempts: int = 30) -> None:
    """Register `deployment_url`, retrying while the admin API is not up yet."""
    body = {"uri": deployment_url, "force": True}
    url = admin_url.rstrip("/") + "/deployments"
    last_error = ""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for attempt in range(attempts):
            try:
                async with session.post(url, json=body) as resp:
                    if resp.status < 300:
                        data = await resp.json()
                        services = [s.get("name") for s in data.get("services", [])]
                        log.info("deployment_registered", url=deployment_url, services=services)
                        return
                    last_error = f"{resp.status}: {(await resp.text())[:500]}"
                    if resp.status < 500:
                        break
            except aiohttp.ClientError as exc:
                last_error = repr(exc)
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
    raise RegistrationError(f"could not register {deployment_url} at {url}: {last_error}")


def main() -> None:
    settings = load_or_exit(RegistrationSettings)
    configure(settings.log_level, settings.log_format)
    url = str(settings.restate_app_advertised_url).rstrip("/")
    try:
        asyncio.run(register(str(settings.restate_admin_url), url))
    except RegistrationError as exc:
        log.error("registration_failed", error=str(exc))
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
