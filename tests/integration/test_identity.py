"""With identity keys configured, restate_app serves only requests signed by the Restate server."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.stack import Stack, wait_for

OPENSSL = shutil.which("openssl")


@pytest.fixture
def signed_stack(tmp_path: Path) -> Iterator[Stack]:
    if OPENSSL is None:
        pytest.skip("openssl is needed to make an ed25519 key")
    key = tmp_path / "restate-identity.pem"
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    stack = Stack(
        workdir=tmp_path,
        env={"SLACK_BOT_TOKEN": "xoxb-identity", "OPENAI_API_KEY": "sk-identity"},
    )
    try:
        stack.start_restate(
            {"RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(key)}
        )
        log = stack.procs["restate"].log_path
        kid = wait_for(
            lambda: re.search(r"publickeyv1_\w+", log.read_text(errors="replace")),
            30,
            "the server to print its public identity key",
        ).group(0)
        stack.env["RESTATE_IDENTITY_KEYS"] = kid
        stack.start_restate_app()
        yield stack
    finally:
        stack.stop()


def test_restate_app_refuses_unsigned_requests_but_serves_restate(signed_stack: Stack) -> None:
    app_url = f"http://127.0.0.1:{signed_stack.env['RESTATE_APP_PORT']}"
    unsigned = httpx.get(f"{app_url}/discover", headers={"Accept": "application/json"})
    assert unsigned.status_code == 401
    via_restate = httpx.post(
        f"{signed_stack.urls['ingress']}/CodingAgent/T1%3AC1%3A1.2/status", timeout=10
    )
    assert via_restate.status_code == 200
    assert via_restate.json()["state"] == "idle"
