"""Reads of an account's EA link for the pages: when the EA last pushed, which version, and how healthy it is."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from accounts.models import GatewayBackend, TradingAccount
from ea.models import EaLink


class EaHealth:
    """One word per state, most urgent first; the page colours ok / warn / bad."""

    NO_KEY = "no key"
    NEVER_PUSHED = "never pushed"
    SILENT = "silent"
    TERMINAL_DISCONNECTED = "terminal disconnected"
    TRADING_DISABLED = "trading disabled"
    OK = "ok"


_TONE = {
    EaHealth.NO_KEY: "bad",
    EaHealth.NEVER_PUSHED: "warn",
    EaHealth.SILENT: "bad",
    EaHealth.TERMINAL_DISCONNECTED: "bad",
    EaHealth.TRADING_DISABLED: "warn",
    EaHealth.OK: "ok",
}


@dataclass(frozen=True)
class EaStatus:
    health: str
    reason: str
    has_key: bool
    version: str
    last_push_at: datetime | None
    last_push_broker_time: datetime | None  # the terminal's server time of that push (broker wall clock)
    push_age_seconds: int | None
    fresh_for_seconds: int
    terminal_build: int | None
    terminal_ping_ms: float | None
    pushes_accepted: int
    pushes_refused: int
    last_refusal: str
    last_refusal_at: datetime | None
    refused_since_last_push: bool

    @property
    def tone(self) -> str:
        return _TONE[self.health]


def ea_status_for_account(*, account: TradingAccount, now: datetime | None = None) -> EaStatus | None:
    """None for an account that is not on the `ea` backend (no query then); else one query."""
    if account.backend != GatewayBackend.EA:
        return None
    link = EaLink.objects.filter(account=account).first()
    return ea_status(link=link, now=now)


def ea_status(*, link: EaLink | None, now: datetime | None = None) -> EaStatus:
    now = now or timezone.now()
    if link is None:
        return EaStatus(
            health=EaHealth.NO_KEY, reason="No EA key yet: an owner issues one in the admin (EA links).",
            has_key=False, version="", last_push_at=None, last_push_broker_time=None, push_age_seconds=None, fresh_for_seconds=0,
            terminal_build=None, terminal_ping_ms=None, pushes_accepted=0, pushes_refused=0, last_refusal="",
            last_refusal_at=None, refused_since_last_push=False,
        )  # fmt: skip
    terminal = (link.latest_push or {}).get("terminal") or {}
    age = int((now - link.last_push_at).total_seconds()) if link.last_push_at else None
    if link.last_push_at is None:
        health, reason = (
            EaHealth.NEVER_PUSHED,
            "The EA has not pushed yet: is it attached and its URL allowed?",
        )
    elif now - link.last_push_at > timedelta(seconds=link.fresh_for_seconds):
        health = EaHealth.SILENT
        reason = (
            f"No push for {age} s (fresh for {link.fresh_for_seconds} s): syncs fail until it pushes again."
        )
    elif not terminal.get("connected", False):
        health, reason = EaHealth.TERMINAL_DISCONNECTED, "The EA pushes, but its terminal is not connected."
    elif not terminal.get("trade_allowed", False):
        health, reason = (
            EaHealth.TRADING_DISABLED,
            "Algo trading is off in the terminal: closes cannot be sent.",
        )
    else:
        health, reason = EaHealth.OK, "Pushing, terminal connected, trading allowed."
    ping = terminal.get("ping_last")  # microseconds, as the terminal reports it
    return EaStatus(
        health=health,
        reason=reason,
        has_key=True,
        version=link.ea_version,
        last_push_at=link.last_push_at,
        last_push_broker_time=(
            datetime.fromtimestamp(link.last_push_server_time_msc / 1000, tz=UTC).replace(tzinfo=None)
            if link.last_push_server_time_msc is not None
            else None
        ),
        push_age_seconds=age,
        fresh_for_seconds=link.fresh_for_seconds,
        terminal_build=terminal.get("build"),
        terminal_ping_ms=round(ping / 1000, 1) if isinstance(ping, int) else None,
        pushes_accepted=link.pushes_accepted,
        pushes_refused=link.pushes_refused,
        last_refusal=link.last_refusal,
        last_refusal_at=link.last_refusal_at,
        refused_since_last_push=bool(
            link.last_refusal_at and (link.last_push_at is None or link.last_refusal_at > link.last_push_at)
        ),
    )
