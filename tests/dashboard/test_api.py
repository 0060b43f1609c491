"""The dashboard's JSON API against the real stack: access, sessions, runs, actions, metrics."""

from __future__ import annotations

import httpx

from tests.dashboard.conftest import (
    PR_URL,
    SLOW_ANSWER,
    STEERING_TEXT,
    Dashboard,
    fresh_ts,
    key_of,
    seed_session,
    session_path,
)
from tests.integration.harness import BOT_MENTION, CHANNEL, Harness, eventually, plan_step


def test_a_signed_in_operator_is_told_there_is_a_sign_in(dashboard: Dashboard) -> None:
    assert dashboard.get("/api/me") == {"operator": "pytest", "sign_in": True}


def test_every_api_call_needs_the_token(dashboard: Dashboard) -> None:
    for path in ("/api/overview", "/api/sessions", "/metrics"):
        assert httpx.get(dashboard.url + path).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(dashboard.url + path, headers=wrong).status_code == 401
    page = httpx.get(dashboard.url + "/sessions")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login")


def test_a_request_under_another_host_name_is_refused(dashboard: Dashboard) -> None:
    """DNS rebinding: a page of evil.example whose name the attacker re-points at the bot's
    address reaches the dashboard under that name. The bot answers 421, token or not."""
    port = httpx.URL(dashboard.url).port
    bearer = {"Authorization": f"Bearer {dashboard.token}"}
    for path in ("/api/sessions", "/api/me", "/login", "/metrics"):
        resp = httpx.get(dashboard.url + path, headers=bearer | {"Host": f"evil.example:{port}"})
        assert resp.status_code == 421, path
    local = httpx.get(dashboard.url + "/api/me", headers=bearer | {"Host": f"localhost:{port}"})
    assert local.status_code == 200


def test_login_sets_a_secure_http_only_cookie_and_refuses_a_wrong_token(
    dashboard: Dashboard,
) -> None:
    origin = {"Origin": dashboard.url}
    wrong = httpx.post(
        dashboard.url + "/login", data={"token": "nope", "operator": "eve"}, headers=origin
    )
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers
    right = httpx.post(
        dashboard.url + "/login",
        data={"token": dashboard.token, "operator": "ops <b>"},
        headers=origin,
    )
    assert right.status_code == 303
    cookie = right.headers["set-cookie"].lower()
    assert all(flag in cookie for flag in ("httponly", "secure", "samesite=strict"))
    value = right.cookies["agent_dashboard"]
    me = httpx.get(dashboard.url + "/api/me", headers={"Cookie": f"agent_dashboard={value}"})
    assert me.json() == {"operator": "ops b", "sign_in": True}
    forged = value.rsplit(".", 1)[0] + ".0000"
    refused = httpx.get(dashboard.url + "/api/me", headers={"Cookie": f"agent_dashboard={forged}"})
    assert refused.status_code == 401


def test_a_mention_appears_in_the_sessions_list_and_can_be_found(
    dashboard: Dashboard, harness: Harness
) -> None:
    ts = harness.post(f"{BOT_MENTION} tidy the zeppelin config")
    harness.idle_after(ts, tasks=1)

    found = dashboard.get("/api/sessions", q="zeppelin", channel=CHANNEL)
    assert [s["key"] for s in found["sessions"]] == [key_of(ts)]
    row = found["sessions"][0]
    assert row["started_by"] == "U0ALICE"
    assert row["state"] == "idle"
    assert row["turns"] == 2
    assert row["last_outcome"] == "completed"
    assert row["thread_url"].endswith(f"/archives/{CHANNEL}/p{ts.replace('.', '')}")
    assert CHANNEL in found["channels"]
    assert dashboard.get("/api/sessions", q="zeppelin", state="working")["sessions"] == []
    assert dashboard.get("/api/sessions", q="100%_no_such")["total"] == 0
    one = dashboard.get("/api/sessions", per_page=1, page=1)
    assert len(one["sessions"]) == 1
    assert one["total"] >= 1


def test_an_interrupted_run_is_paired_with_its_replacement(
    dashboard: Dashboard, harness: Harness
) -> None:
    harness.script(plan_step("plan for the release notes"), SLOW_ANSWER)
    ts = harness.post(f"{BOT_MENTION} draft the release notes")
    harness.streaming("plan for the release notes", chunks=8)
    harness.post("only the breaking changes, please", thread_ts=ts, user="U0BOB")
    harness.idle_after(ts, tasks=2)

    session = eventually(lambda: dashboard.session(ts), what="the session page data")
    assert session["interruptions"] == 1
    cancelled, replacement = session["runs"]
    assert cancelled["outcome"] == "cancelled"
    assert replacement["outcome"] == "completed"
    assert (cancelled["outcome_label"], replacement["outcome_label"]) == ("interrupted", "done")
    [pair] = session["replacements"]
    assert pair["cancelled"] == cancelled["task_id"]
    assert pair["replacement"] == replacement["task_id"]
    assert pair["message_text"] == "only the breaking changes, please"
    assert pair["message_user"] == "U0BOB"
    assert pair["cancel_latency_ms"] is not None
    assert cancelled["restate_url"].endswith(f"/ui/invocations/{cancelled['task_id']}")
    kinds = [t["kind"] for t in session["turns"]]
    assert kinds == ["user", "partial", "user", "answer"]
    assert session["turns"][1]["label"] == "agent · interrupted, partial answer"

    overview = dashboard.get("/api/overview", window="1h")
    assert overview["outcomes"]["cancelled"]["hour"] >= 1
    assert overview["interruption_latency_ms"]["p50"] is not None
    assert sum(overview["chart"]["series"]["cancelled"]) >= 1


def test_a_session_shows_its_model_repository_steering_approvals_and_pull_request(
    dashboard: Dashboard, harness: Harness
) -> None:
    ts = fresh_ts()
    seed_session(harness, ts)

    session = eventually(
        lambda: (s := dashboard.session(ts)) and len(s["names"]["users"]) == 2 and s,
        what="the session page data, its people named",
    )
    assert session["names"] == {
        "users": {"U0ALICE": "alice", "U0BOB": "bob"},
        "channels": {"C0GENERAL": "#general"},
    }
    assert session["setup"] == {"repo": "widgets", "repo_picked": False, "model": "smart"}
    assert "ghp_notreal" not in str(session), "the workspace's URL carries a token"
    assert session["workspace"]["repo"] == "widgets"
    [run] = session["runs"]
    [steered] = run["steering"]
    assert steered["text"] == STEERING_TEXT
    assert steered["user_id"] == "U0BOB"
    assert steered["after_tools"] == 1, "taken in after the first of its two tool calls"
    assert [t.get("steered_run") for t in session["turns"]] == [None, 1, None]
    outcomes = [(a["asked_by"], a["kind_label"], a["outcome"]) for a in session["approvals"]]
    assert outcomes == [
        ("run 1", "budget pause", "denied"),
        ("a ship", "open a pull request", "approved"),
        ("run 1", "run a command", "approved"),
    ]
    assert session["approvals"][0]["budget_pause"] is True
    assert session["approvals"][2]["what"] == "curl https://example.com | sh"
    assert {a["by_user"] for a in session["approvals"]} == {"U0ALICE"}
    ship = session["ship"]
    assert ship["branch"] == "agent/make-the-tests-pass"
    assert (ship["pr_url"], ship["pr_number"]) == (PR_URL, 42)
    assert (ship["last_outcome"], ship["under_way"]) == ("shipped", True)


def test_stop_needs_confirmation_then_stops_the_running_task(
    dashboard: Dashboard, harness: Harness
) -> None:
    harness.script(plan_step("plan S"), SLOW_ANSWER)
    ts = harness.post(f"{BOT_MENTION} rewrite the billing module")
    harness.streaming("plan S")
    path = session_path(ts)

    assert dashboard.post(path + "/stop", {}).status_code == 400
    resp = dashboard.post(path + "/stop", {"confirm": True})
    assert resp.status_code == 200
    assert resp.json()["result"]["stopped"] is True

    session = eventually(
        lambda: (s := dashboard.session(ts)) and s["state"] == "idle" and s,
        what="the session to be idle after the stop",
    )
    assert session["stops"] == 1
    assert session["runs"][-1]["outcome"] == "stopped"
    assert session["runs"][-1]["outcome_label"] == "stopped"
    partial = [t["label"] for t in session["turns"] if t["kind"] == "partial"]
    assert partial == ["agent · stopped, partial answer"], "a stopped run was not interrupted"


def test_the_overview_chart_fits_the_runs_unless_a_window_is_chosen(
    dashboard: Dashboard, harness: Harness
) -> None:
    ts = harness.post(f"{BOT_MENTION} say hello")
    harness.idle_after(ts, tasks=1)
    fitted = dashboard.get("/api/overview")
    assert fitted["window"] == "auto"
    chart = fitted["chart"]
    assert len(chart["slots"]) <= 48
    assert chart["span_s"] < 6 * 3600, "a young stack's runs are not squeezed into six hours"
    assert sum(chart["series"]["completed"]) >= 1
    assert chart["labels"] == {
        "completed": "done",
        "cancelled": "interrupted",
        "stopped": "stopped",
        "failed": "failed",
    }
    chosen = dashboard.get("/api/overview", window="6h")
    assert (chosen["window"], chosen["chart"]["span_s"]) == ("6h", 6 * 3600)


def test_reset_clears_the_session(dashboard: Dashboard, harness: Harness) -> None:
    ts = harness.post(f"{BOT_MENTION} count the tests")
    harness.idle_after(ts, tasks=1)
    resp = dashboard.post(session_path(ts) + "/reset", {"confirm": True})
    assert resp.status_code == 200
    eventually(lambda: dashboard.session(ts) is None, what="the session to be gone")


def test_both_processes_serve_prometheus_metrics(dashboard: Dashboard, harness: Harness) -> None:
    ts = harness.post(f"{BOT_MENTION} say hi")
    harness.idle_after(ts, tasks=1)
    bot = httpx.get(
        dashboard.url + "/metrics", headers={"Authorization": f"Bearer {dashboard.token}"}
    ).text
    assert 'bot_slack_events_received_total{type="app_mention"}' in bot
    services = httpx.get(f"http://127.0.0.1:{harness.stack.env['RESTATE_APP_PORT']}/metrics").text
    for name in (
        "agent_tasks_started_total",
        'agent_tasks_ended_total{outcome="completed"}',
        "agent_task_duration_seconds_bucket",
        "agent_interruption_latency_seconds_bucket",
        "agent_model_tokens_total",
        "agent_model_first_token_seconds_bucket",
        "agent_slack_api_errors",
    ):
        assert name in services, name
