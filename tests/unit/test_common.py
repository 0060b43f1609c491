"""Settings fail fast naming every problem; thread keys round-trip."""

from __future__ import annotations

import pytest

from common.contract import message_idempotency_key, parse_thread_key, thread_key
from common.settings import AppSettings, BotSettings, SettingsError, load


def test_thread_keys_round_trip_and_reject_separators() -> None:
    key = thread_key("T1", "C1", "1732611111.000100")
    assert parse_thread_key(key) == ("T1", "C1", "1732611111.000100")
    with pytest.raises(ValueError, match="thread key"):
        thread_key("T1", "C:1", "1.2")
    assert message_idempotency_key("C1", "1.2") == "C1:1.2"


def test_missing_settings_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")
    with pytest.raises(SettingsError) as info:
        load(AppSettings)
    assert "SLACK_BOT_TOKEN" in str(info.value)
    assert "OPENAI_API_KEY" in str(info.value)


def test_empty_optional_settings_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "")
    settings = load(BotSettings)
    assert not settings.socket_mode
    assert "xoxb-1" not in repr(settings)


def test_everything_but_the_slack_endpoint_binds_to_loopback_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-1")
    assert load(AppSettings).restate_app_host == "127.0.0.1"
    bot = load(BotSettings)
    assert bot.dashboard_host == "127.0.0.1"
    assert "127.0.0.1" in str(bot.restate_ingress_url)
    # The only public listener: Slack must reach it.
    assert bot.bot_host == "0.0.0.0"
