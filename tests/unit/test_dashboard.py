"""The dashboard's pure parts: access rules, SQL literals and filters, percentiles, pairing."""

from __future__ import annotations

import pytest

from bot.dashboard import app_metrics, chart, queries, views
from bot.dashboard.auth import (
    COOKIE_MAX_AGE,
    TokenAuth,
    check_binding,
    clean_operator,
    is_loopback,
    safe_next,
)
from bot.dashboard.origins import host_name, origin_of
from bot.dashboard.throttle import LoginThrottle, client_key
from bot.restate_sql import like_contains, literal
from common.settings import SettingsError


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_may_serve_without_a_token(host: str) -> None:
    assert is_loopback(host)
    check_binding(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "dashboard.internal"])
def test_any_other_address_refuses_to_start_without_a_long_token(host: str) -> None:
    with pytest.raises(SettingsError, match="DASHBOARD_TOKEN"):
        check_binding(host, None)
    with pytest.raises(SettingsError, match="at least 32 characters"):
        check_binding(host, "a-token")
    with pytest.raises(SettingsError, match="at least 32 characters"):
        check_binding(host, "x" * 31)
    check_binding(host, "x" * 32)
    check_binding("127.0.0.1", "short")


def test_a_public_url_elsewhere_needs_a_long_token_even_on_loopback() -> None:
    """Behind a proxy a loopback dashboard is reachable from everywhere the proxy is."""
    for token in (None, "short"):
        with pytest.raises(SettingsError, match="DASHBOARD_PUBLIC_URL"):
            check_binding("127.0.0.1", token, "https://ops.example.com")
    check_binding("127.0.0.1", "x" * 32, "https://ops.example.com")
    check_binding("127.0.0.1", None, "http://localhost:8443")


def test_the_cookie_names_the_operator_and_cannot_be_forged() -> None:
    auth = TokenAuth("secret")
    cookie = auth.cookie_for("alice")
    assert auth.operator_from_cookie(cookie) == "alice"
    assert auth.operator_from_cookie(cookie.replace("YWxpY2U", "bWFsbG9yeQ")) is None
    assert TokenAuth("other").operator_from_cookie(cookie) is None
    assert auth.operator_from_cookie("garbage") is None
    assert clean_operator("<script>bob</script>\n") == "scriptbobscript"


@pytest.mark.parametrize("signature", ["\u00e9t\u00e9", "1.\u00e9t\u00e9", "\ud800", ""])
def test_a_cookie_with_a_non_ascii_or_empty_signature_is_refused(signature: str) -> None:
    assert TokenAuth("secret").operator_from_cookie(f"YWxpY2U.{signature}") is None


def test_a_cookie_signs_in_for_twelve_hours_and_no_longer() -> None:
    now = [1_700_000_000.0]
    auth = TokenAuth("secret", clock=lambda: now[0])
    cookie = auth.cookie_for("alice")
    now[0] += COOKIE_MAX_AGE - 1
    assert COOKIE_MAX_AGE == 12 * 3600
    assert auth.operator_from_cookie(cookie) == "alice"
    now[0] += 2
    assert auth.operator_from_cookie(cookie) is None
    now[0] = 1_700_000_000.0 - 120  # issued "in the future": a forged or skewed time
    assert auth.operator_from_cookie(cookie) is None
    issued = cookie.split(".")[1]
    later = cookie.replace(f".{issued}.", f".{int(issued) + 3600}.")
    now[0] = 1_700_000_000.0
    assert auth.operator_from_cookie(later) is None


def test_wrong_tokens_make_a_client_wait_longer_and_longer() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(throttle.free_failures):
        assert throttle.wait("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    waits = []
    for _ in range(8):
        waits.append(throttle.wait("10.0.0.1"))
        now[0] += waits[-1]
        throttle.failed("10.0.0.1")
    assert waits[:4] == [5.0, 10.0, 20.0, 40.0]
    assert max(waits) == throttle.max_delay
    assert throttle.wait("10.0.0.2") == 0
    throttle.succeeded("10.0.0.1")
    assert throttle.wait("10.0.0.1") == 0


def test_the_throttle_forgets_quiet_clients_and_stays_bounded() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0], max_clients=3)
    for _ in range(throttle.free_failures):
        throttle.failed("a")
    assert throttle.wait("a") > 0
    now[0] += throttle.window + throttle.max_delay
    assert throttle.wait("a") == 0
    for client in ("b", "c", "d", "e"):
        throttle.failed(client)
    assert len(throttle) <= 3


def test_an_ipv6_client_is_counted_by_its_network() -> None:
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("10.0.0.1") == "10.0.0.1"
    assert client_key(None) == "unknown"


def test_host_headers_and_origins_are_read_strictly() -> None:
    assert host_name("LocalHost:3001") == "localhost"
    assert host_name("[::1]:80") == "::1"
    for bad in ("evil@127.0.0.1", "127.0.0.1:1:2", "a b", "", "localhost:", "[::1"):
        assert host_name(bad) is None, bad
    assert origin_of("https://ops.example.com:443/x") == "https://ops.example.com"
    assert origin_of("http://ops.example.com:443") == "http://ops.example.com:443"
    assert origin_of("http://[::1]:3001/") == "http://[::1]:3001"
    for bad in ("null", "http://127.0.0.1:3001.evil.example/", "file:///etc", "https://"):
        assert origin_of(bad) is None, bad


@pytest.mark.parametrize(
    "target",
    ["/\t/evil.example", "/\n/x", "/\\evil", "\\/evil", "//evil", "https://e/", "x", "", " /"],
)
def test_a_login_target_elsewhere_becomes_the_overview(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/sessions?state=idle", "/sessions/T1%3AC1%3A1.2"])
def test_a_login_target_on_this_site_is_kept(target: str) -> None:
    assert safe_next(target) == target


def test_sql_literals_escape_quotes_and_like_wildcards() -> None:
    assert literal("it's") == "'it''s'"
    assert like_contains("50%_off'") == "'%50\\%\\_off''%'"


def test_the_session_filter_keeps_only_what_it_understands() -> None:
    f = queries.SessionFilter.parse(
        {"state": "bogus", "channel": "C1'; DROP", "q": " hi ", "page": "x", "per_page": "999"}
    )
    assert (f.state, f.channel, f.text, f.page, f.per_page) == (None, None, "hi", 1, 100)
    sql = queries.sessions_page(queries.SessionFilter.parse({"state": "working", "page": "3"}))
    assert "= 'working'" in sql
    assert "LIMIT 25 OFFSET 50" in sql


def test_histogram_quantiles_interpolate_like_prometheus() -> None:
    buckets = {0.1: 50.0, 0.5: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert app_metrics.quantile(0.5, buckets) == pytest.approx(0.1)
    assert app_metrics.quantile(0.7, buckets) == pytest.approx(0.3)
    assert app_metrics.quantile(0.5, {}) is None
    text = 'x_bucket{le="1.0"} 3\nx_bucket{le="+Inf"} 4\nx_count 4\nx_sum 2\n'
    assert app_metrics.histogram_buckets("# TYPE x histogram\n" + text, "x") == {
        1.0: 3.0,
        float("inf"): 4.0,
    }


def test_a_cancelled_run_is_paired_with_its_replacement_and_the_reply() -> None:
    runs = [
        {
            "task_id": "inv_a",
            "outcome": "cancelled",
            "replaced_by": "inv_b",
            "interrupted_by_ts": "2.0",
            "interrupted_by_text": "stop that",
            "cancel_latency_ms": 9.0,
        },
        {"task_id": "inv_b", "outcome": "completed"},
    ]
    [pair] = views.replacements(runs)
    assert pair["cancelled"] == "inv_a"
    assert pair["replacement"] == "inv_b"
    assert pair["message_text"] == "stop that"


def test_links_point_at_slack_threads_and_the_restate_ui() -> None:
    links = views.Links("https://acme.slack.com/", "http://restate:9070/ui")
    assert links.thread("C1", "1700000000.000100") == (
        "https://acme.slack.com/archives/C1/p1700000000000100"
    )
    assert links.invocation("inv_1") == "http://restate:9070/ui/invocations/inv_1"
    assert views.Links(None, "x").thread("C1", "1.2") is None


def test_outcomes_are_said_in_one_word_each_and_never_twice() -> None:
    words = [views.outcome_word(o) for o in ("completed", "cancelled", "stopped", "failed", None)]
    assert words == ["done", "interrupted", "stopped", "failed", "running"]
    assert views.restate_note("running", "running", 0) is None, "not 'running (running)'"
    assert views.restate_note("done", "completed", 0) is None
    assert views.restate_note("stopped", "completed", 0) is None
    assert views.restate_note("running", "backing-off", 3) == "Restate: backing off, 3 retries"
    assert views.restate_note("running", "suspended", None) == "Restate: suspended"


def test_a_partial_answer_says_whether_its_run_was_interrupted_or_stopped() -> None:
    outcomes = {"inv_a": "cancelled", "inv_b": "stopped"}
    label = views.turn_label
    assert label({"kind": "partial", "task_id": "inv_a"}, outcomes) == (
        "agent · interrupted, partial answer"
    )
    assert label({"kind": "partial", "task_id": "inv_b"}, outcomes) == (
        "agent · stopped, partial answer"
    )
    assert label({"kind": "partial", "task_id": "inv_gone"}, outcomes) == (
        "agent · cut off, partial answer"
    )
    assert label({"kind": "error", "task_id": "inv_c"}, outcomes) == "agent · failed"
    assert label({"kind": "answer"}, outcomes) == "agent"
    assert label({"kind": "user", "user_id": "U1"}, outcomes) is None


def test_the_chart_fits_the_runs_since_the_first_with_a_minimum_and_a_maximum() -> None:
    now = 1_800_000_000.0
    assert chart.fit(now, None) == (300, 10), "no runs: the minimum, 10 s a bar"
    assert chart.fit(now, now - 60) == (300, 10), "a fresh run: not one bar in six hours"
    assert chart.fit(now, now - 600) == (630, 30)
    span, width = chart.fit(now, now - 3 * 3600)
    assert (span, width) == (11_100, 300)
    assert span >= 3 * 3600 + width, "the first run's bar and one before it"
    assert chart.fit(now, now - 5 * 86_400) == (86_400, 3600)
    for age in (0, 59, 901, 3599, 7201, 40_000, 86_399):
        span, width = chart.fit(now, now - age)
        assert span // width <= chart.MAX_BARS
        assert chart.MIN_SPAN <= span <= chart.MAX_SPAN
        assert span >= min(age + width, chart.MAX_SPAN)
    assert chart.span_of("6h", now, now - 60) == (21_600, 600), "a chosen window stays"


def test_the_charts_bars_end_now_and_start_at_the_fitted_span() -> None:
    now = 1_800_000_000.0
    rows = [{"slot": 1_799_999_970, "outcome": "cancelled", "n": 2}]
    bars = chart.bars(rows, now, 900, 30)
    assert len(bars["slots"]) == 30
    assert bars["slots"][-1] <= now < bars["slots"][-1] + 30
    assert bars["series"]["cancelled"][-2] == 2
    assert bars["labels"]["cancelled"] == "interrupted"
