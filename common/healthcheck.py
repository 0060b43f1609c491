"""`python -m common.healthcheck`: the container image's HEALTHCHECK, stdlib only.

The image runs either the bot or restate_app, and a Docker healthcheck cannot see which command
was chosen: it asks `/healthz` on both processes' local ports and passes if either answers.
"""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_SECONDS = 2.0


def _answers(port: str) -> bool:
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def main() -> None:
    ports = (os.environ.get("BOT_PORT") or "3000", os.environ.get("RESTATE_APP_PORT") or "9080")
    sys.exit(0 if any(_answers(port) for port in ports) else 1)


if __name__ == "__main__":
    main()
