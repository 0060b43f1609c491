"""The dashboard's pure parts: access rules, SQL literals and filters, percentiles, pairing."""

from __future__ import annotations

import pytest

from bot.dashboard import app_metrics, queries, views
from bot.dashboard.auth import TokenAuth, check_binding, clean_operator, is_loopback
from bot.restate_sql import like_contains, literal
from common.settings import SettingsError


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_addresses_may_serve_without_a_token(host: str) -> None:
    assert is_loopback(host)
    check_binding(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5", "::", "dashboard.internal"])
def test_any_other_address_refuses_to_start_without_a_token(host: str) -> None:
    with pytest.raises(SettingsError, match="DASHBOARD_TOKEN"):
        check_binding(host, None)
    check_binding(host, "a-token")


def test_the_cookie_names_the_operator_and_cannot_be_forged() -> None:
    auth = TokenAuth("secret")
    cookie = auth.cookie_for("alice")
    assert auth.operator_from_cookie(cookie) == "alice"
    assert auth.operator_from_cookie(cookie.replace("YWxpY2U", "bWFsbG9yeQ")) is None
    assert TokenAuth("other").operator_from_cookie(cookie) is None
    assert auth.operator_from_cookie("garbage") is None
    assert clean_operator("<script>bob</script>\n") == "scriptbobscript"


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
