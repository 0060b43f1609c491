"""The session's state is defined once: the dashboard's SQL and the Python derivation agree on
every state, over sessions written into a real Restate server's state store."""

from __future__ import annotations

import json
import time

from common.contract import AGENT_SERVICE
from common.session_state import (
    SESSION_STATE_KEY,
    SESSION_STATES,
    Cancelling,
    RunningTask,
    Session,
    derive_state,
    state_sql,
)
from tests.integration.harness import Harness, eventually

RUNNING = RunningTask(task_id="inv_1", started_at=1.0, trigger_ts="1.000001")
CANCELLING = Cancelling(task_id="inv_0", reason="interrupt")
SESSIONS = {
    "idle": Session(created_at=1.0),
    "working": Session(created_at=1.0, running=RUNNING),
    "cancelling": Session(created_at=1.0, cancelling=CANCELLING),
    "late-and-working": Session(created_at=1.0, running=RUNNING, late=[CANCELLING]),
    "late-only": Session(created_at=1.0, late=[CANCELLING]),
    "cancelling-with-queue": Session(created_at=1.0, cancelling=CANCELLING, queued=[]),
}


def test_the_sql_and_the_python_derivation_agree_on_every_state(harness: Harness) -> None:
    run = time.time_ns()
    expected = {}
    url = f"{harness.stack.urls['admin']}/services/{AGENT_SERVICE}/state"
    for index, (name, session) in enumerate(SESSIONS.items()):
        key = f"T0SANDBOX:C0SQL{run}:{index}.000001"
        value = session.model_dump_json().encode()
        body = {"object_key": key, "new_state": {SESSION_STATE_KEY: list(value)}}
        resp = harness.http.post(url, json=body)
        assert resp.status_code < 300, resp.text
        expected[key] = derive_state(json.loads(value))
        assert expected[key] == session.state, name
    assert set(expected.values()) == set(SESSION_STATES)
    query = (
        f"SELECT service_key, {state_sql('value_utf8')} AS state FROM state "
        f"WHERE service_name = '{AGENT_SERVICE}' AND key = '{SESSION_STATE_KEY}' "
        f"AND service_key LIKE '%C0SQL{run}%'"
    )
    rows = eventually(
        lambda: (found := harness.sql(query)) and len(found) == len(expected) and found,
        what="the written sessions in Restate's state table",
    )
    assert {row["service_key"]: row["state"] for row in rows} == expected
