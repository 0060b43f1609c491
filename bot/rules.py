"""Per-channel interruption policies and who may start, steer or stop sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.events import Actor
from common.contract import POLICIES, Policy
from common.settings import BotSettings


def _ids(value: str) -> frozenset[str]:
    return frozenset(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class ChannelPolicy:
    policy: Policy = "interrupt"
    debounce_seconds: float = 0.0


def parse_policies(spec: str) -> dict[str, ChannelPolicy]:
    """Parse `C123=queue,C456=interrupt/2.5,C789=steer` into policies by channel id."""
    policies: dict[str, ChannelPolicy] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        channel, _, rule = item.partition("=")
        name, _, debounce = rule.strip().partition("/")
        if name not in POLICIES or not channel.strip():
            raise ValueError(f"CHANNEL_POLICIES: cannot read {item.strip()!r}")
        seconds = float(debounce) if debounce else 0.0
        if not 0 <= seconds <= 60:
            raise ValueError(f"CHANNEL_POLICIES: debounce out of 0..60 s in {item.strip()!r}")
        policies[channel.strip()] = ChannelPolicy(name, seconds)
    return policies


@dataclass(frozen=True)
class Rules:
    """What the bot decides per message before anything reaches Restate."""

    default: ChannelPolicy = ChannelPolicy()
    channels: dict[str, ChannelPolicy] = field(default_factory=dict)
    teams: frozenset[str] = frozenset()
    allowed_channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: BotSettings) -> Rules:
        return cls(
            default=ChannelPolicy(settings.default_policy, settings.default_debounce_seconds),
            channels=parse_policies(settings.channel_policies),
            teams=_ids(settings.allowed_team_ids),
            allowed_channels=_ids(settings.allowed_channel_ids),
            users=_ids(settings.allowed_user_ids),
            admins=_ids(settings.admin_user_ids),
        )

    def policy(self, channel_id: str) -> ChannelPolicy:
        return self.channels.get(channel_id, self.default)

    def admits(self, actor: Actor) -> bool:
        """Is this person from a team the agent serves? Admins always are.

        The author's own team counts, never only the installation's: in a Slack Connect
        channel a guest's events carry the host's team. Without ALLOWED_TEAM_IDS the agent
        serves the team it is installed in, so a guest from another organisation is refused.
        """
        if actor.user_id in self.admins:
            return True
        served = (self.teams or {actor.home_team}) - {""}
        return not actor.teams.isdisjoint(served)

    def allows(self, actor: Actor, channel_id: str) -> bool:
        """May this person start, steer or stop a session here? Admins always may."""
        if actor.user_id in self.admins:
            return True
        return (
            self.admits(actor)
            and (not self.allowed_channels or channel_id in self.allowed_channels)
            and (not self.users or actor.user_id in self.users)
        )

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins
