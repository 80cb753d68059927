"""Messages people can act on: which account, what happened with the numbers formatted for the symbol and the
account currency, when in the recipient's time zone, and a link to the account page.

Rendered at delivery (in the worker), never in the transaction that recorded the event.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime

from integrations.mt5 import constants as mt5c
from notifications.models import EventKind, Notification, Severity

_ICON = {Severity.INFO: "\N{INFORMATION SOURCE}\ufe0f", Severity.WARNING: "⚠️", Severity.CRITICAL: "🚨"}
_GUARD_LABEL = {
    "drawdown": "Drawdown",
    "daily_loss": "Daily loss",
    "market": "Market",
    "autoclose": "Auto-close",
    "rules": "Rule set",
}
_RULE_LABEL = {"daily_loss": "daily loss", "max_loss": "maximum loss"}


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    link: str

    def as_plain_text(self) -> str:
        return f"{self.title}\n\n{self.text}" + (f"\n\n{self.link}" if self.link else "")


@dataclass(frozen=True)
class AccountFacts:
    id: int
    name: str
    login: int
    server: str
    label: str
    currency: str


@cache
def _retcode_names() -> dict[int, str]:
    return {value: name for name, value in vars(mt5c).items() if name.startswith("TRADE_RETCODE_")}


def retcode_text(retcode: Any) -> str:
    if retcode is None or retcode == "":
        return "no retcode (the order did not reach the server)"
    try:
        code = int(retcode)
    except (TypeError, ValueError):
        return str(retcode)
    name = _retcode_names().get(code)
    return f"{code} ({name})" if name else str(code)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def money(value: Any, currency: str) -> str:
    number = _decimal(value)
    if number is None:
        return "n/a"
    return f"{number:,.2f} {currency}".strip()


def percent(value: Any) -> str:
    number = _decimal(value)
    return "n/a" if number is None else f"{number:.2f}%"


def price(value: Any, digits: int | None) -> str:
    number = _decimal(value)
    if number is None:
        return "n/a"
    if digits is None:
        return format(number.normalize(), "f")
    return f"{number:.{digits}f}"


def local_time(value: datetime | str | None, tz_name: str) -> str:
    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is None:
        return "n/a"
    try:
        tz = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} ({tz.key})"


def account_link(account_id: int | None) -> str:
    if account_id is None:
        return settings.SITE_URL.rstrip("/") + "/"
    return settings.SITE_URL.rstrip("/") + settings.ACCOUNT_PAGE_PATH.format(account_id=account_id)


def account_facts(account: Any) -> AccountFacts | None:
    if account is None:
        return None
    snapshot = account.latest_snapshot
    name = f"{account.login}@{account.server}" + (f" ({account.label})" if account.label else "")
    return AccountFacts(
        id=account.pk,
        name=name,
        login=account.login,
        server=account.server,
        label=account.label,
        currency=snapshot.currency if snapshot is not None else "",
    )


def _symbol_digits(account: AccountFacts | None, symbol: str) -> int | None:
    if account is None or not symbol:
        return None
    from reconciliation.symbols import symbol_digits_cached

    return symbol_digits_cached(server=account.server, names=[symbol]).get(symbol)


def _position_line(account: AccountFacts | None, ticket: Any, symbol: str) -> str:
    from reconciliation.models import LivePosition

    line = f"Position #{ticket}" + (f" {symbol}" if symbol else "")
    if account is None or ticket is None:
        return line
    live = LivePosition.objects.filter(account_id=account.id, ticket=ticket).first()
    if live is None:
        return line
    digits = _symbol_digits(account, live.symbol)
    return (
        f"{line} {live.side} {format(live.volume.normalize(), 'f')} lot, open {price(live.price_open, digits)}, "
        f"last {price(live.price_current, digits)}, profit {money(live.profit, account.currency)}"
    )


def _guard_lines(payload: dict[str, Any], account: AccountFacts | None) -> list[str]:
    detail = payload.get("detail") or {}
    guard = payload.get("guard", "")
    label = _GUARD_LABEL.get(guard, guard)
    if guard == "market":
        return [
            f"Market guard on {payload.get('symbol')}: {detail.get('reason') or 'back to normal'} "
            f"{payload.get('value') or ''} {detail.get('unit') or ''}".rstrip()
            + f" → {payload.get('level')}"
        ]
    lines = [f"{label}: {percent(payload.get('value'))} → {payload.get('level')}"]
    if detail.get("warning") or detail.get("critical"):
        lines.append(
            f"Levels: warning {percent(detail.get('warning'))}, critical {percent(detail.get('critical'))}"
        )
    return lines


def _rule_level_lines(detail: dict[str, Any], currency: str) -> list[str]:
    before, after = detail.get("from", ""), detail.get("to", "")
    lines = [f"{detail.get('rule_set') or 'Rule set'}: {before} → {after}."]
    if detail.get("daily_used_percent") is not None:
        lines.append(
            f"Daily loss limit: {percent(detail.get('daily_used_percent'))} used, "
            f"{money(detail.get('permitted_loss_today'), currency)} left today."
        )
    if detail.get("total_used_percent") is not None:
        lines.append(
            f"Maximum loss limit: {percent(detail.get('total_used_percent'))} used, "
            f"{money(detail.get('permitted_loss_total'), currency)} left."
        )
    if after == "warning" and detail.get("close_only"):
        lines.append("The account is close-only: new trades are refused until an operator lifts it.")
    return lines


def _body(n: Notification, payload: dict[str, Any], account: AccountFacts | None, tz: str) -> list[str]:
    detail = payload.get("detail") or {}
    currency = account.currency if account else ""
    kind = n.kind
    if kind in (EventKind.GUARD_WARNING, EventKind.GUARD_CRITICAL, EventKind.GUARD_RECOVERED):
        return _guard_lines(payload, account)
    if kind == EventKind.LIQUIDATION_SCHEDULED and payload.get("guard") == "rules":
        rule = _RULE_LABEL.get(detail.get("rule", ""), "a")
        return [
            f"{detail.get('rule_set') or 'Rule set'}: {rule} limit breached: equity "
            f"{money(detail.get('equity'), currency)} below the limit {money(detail.get('limit'), currency)}.",
            "Every position is being closed now (a breached rule set cannot recover); the account is halted until "
            "an operator resets it.",
        ]
    if kind == EventKind.RULE_LEVEL:
        return _rule_level_lines(detail, currency)
    if kind == EventKind.OBJECTIVES_MET:
        lines = [
            f"{detail.get('rule_set') or 'Rule set'}: every objective is met (profit target, "
            f"{detail.get('trading_days')} trading day(s)"
            + (f", best day {percent(detail.get('best_day_share'))} of the profit" if detail.get("best_day_share")
               else "")
            + ").",
            "Nothing was closed: the rule set's limits still apply to any further trading.",
        ]  # fmt: skip
        return lines
    if kind == EventKind.LIQUIDATION_SCHEDULED:
        label = _GUARD_LABEL.get(payload.get("guard", ""), payload.get("guard", ""))
        return [
            f"{label} is critical: {percent(payload.get('value'))}.",
            f"Every position will be closed at {local_time(detail.get('at'), tz)} unless the account recovers "
            "before then.",
        ]
    if kind == EventKind.LIQUIDATION_CANCELLED:
        return [
            f"Recovered during the grace period (equity {money(detail.get('equity'), currency)}): no positions "
            "were closed."
        ]
    if kind == EventKind.LIQUIDATION_STARTED:
        tickets = detail.get("tickets") or []
        return [
            f"Still critical after the grace period: {percent(payload.get('value'))}, equity "
            f"{money(detail.get('equity'), currency)}.",
            f"Closing {len(tickets)} position(s): " + (", ".join(f"#{t}" for t in tickets) or "none") + ".",
            "The account is halted until an operator resets it.",
        ]
    if kind == EventKind.LIQUIDATION_FINISHED:
        closed, failed = payload.get("closed") or [], payload.get("failed") or []
        lines = [
            f"Closed: {len(closed)} position(s)"
            + (": " + ", ".join(f"#{t}" for t in closed) if closed else "")
        ]
        if failed:
            lines.append("NOT closed: " + ", ".join(f"#{t}" for t in failed) + " — act on the terminal now.")
        lines.append("The account stays halted until an operator resets it.")
        return lines
    if kind == EventKind.ACCOUNT_HALTED:
        return [
            payload.get("message", "The account is halted."),
            "It stays halted until an operator resets it.",
        ]
    if kind == EventKind.CLOSE_FAILED:
        return [
            _position_line(account, payload.get("ticket"), payload.get("symbol", "")),
            f"Close failed: retcode {retcode_text(detail.get('retcode'))}.",
            payload.get("message", ""),
            f"Attempt {detail.get('attempt')}; the next at {local_time(detail['retry_at'], tz)}."
            if detail.get("retry_at")
            else "No further automatic attempt: act on the terminal.",
        ]
    if kind == EventKind.HALTED_POSITION:
        closing = "it is being closed" if detail.get("closing") else "it is left open (settings)"
        return [
            _position_line(account, payload.get("ticket"), payload.get("symbol", "")) + " opened while the "
            f"account is halted: {closing}."
        ]
    if kind == EventKind.MARKET_MARKED:
        tickets = detail.get("tickets") or []
        return [
            f"Market guard critical on {payload.get('symbol')}: positions "
            + ", ".join(f"#{t}" for t in tickets)
            + (" are being closed." if detail.get("closing") else " are marked (alert only).")
        ]
    if kind == EventKind.GUARD_RESET:
        return [
            f"Reset: {detail.get('reason') or payload.get('message', '')}",
            "The guards watch the account again.",
        ]
    if kind == EventKind.GUARDS_FAILED:
        return [
            f"The guards failed on the latest reading: {detail.get('error') or payload.get('message', '')}",
            "Until this is fixed no guard protects this account.",
        ]
    if kind == EventKind.ACCOUNT_STALE:
        lines = [
            f"No fresh account reading for {payload.get('stale_seconds')} s "
            f"(last: {local_time(payload.get('last_snapshot_at'), tz)}).",
        ]
        if payload.get("connected") is False:
            lines.append(f"The terminal is disconnected: {payload.get('health_error') or 'no connection'}.")
        lines.append("Guards cannot act on a stale account; check the terminal.")
        return lines
    if kind == EventKind.RISK_CONFIG_CHANGED:
        lines = [f"Version {payload.get('version')} by {payload.get('changed_by')}: {payload.get('reason')}"]
        for field, change in (payload.get("changes") or {}).items():
            lines.append(f"{field.replace('_', ' ')}: {change['old']} → {change['new']}")
        return lines
    if kind == EventKind.DIVERGENCE_DIGEST:
        lines = [
            f"{payload.get('total')} open divergence(s) on {len(payload.get('accounts') or [])} account(s):"
        ]
        for row in payload.get("accounts") or []:
            kinds = ", ".join(
                f"{count} {name.replace('_', ' ')}" for name, count in sorted(row["kinds"].items())
            )
            lines.append(f"- {row['name']}: {kinds} (oldest since {local_time(row['oldest'], tz)})")
        return lines
    return [payload.get("message", "")]


def notification_render(n: Notification, *, tz: str = "UTC") -> Message:
    account = account_facts(n.account)
    payload = n.payload or {}
    title = f"{_ICON.get(n.severity, '')} {n.get_kind_display()}" + (f" — {account.name}" if account else "")
    lines = [line for line in _body(n, payload, account, tz) if line]
    lines.append(f"Time: {local_time(n.occurred_at, tz)}")
    link = account_link(account.id if account else None)
    if n.kind == EventKind.DIVERGENCE_DIGEST:
        link = settings.SITE_URL.rstrip("/") + "/admin/reconciliation/reconciliationevent/?state__exact=open"
    elif n.kind == EventKind.RISK_CONFIG_CHANGED:
        link = settings.SITE_URL.rstrip("/") + "/admin/risk/riskconfigversion/"
    return Message(title=title.strip(), text="\n".join(lines), link=link)


def webhook_payload(n: Notification, message: Message) -> dict[str, Any]:
    account = account_facts(n.account)
    return {
        "id": n.pk,
        "event": n.kind,
        "event_key": n.event_key,
        "severity": n.severity,
        "occurred_at": n.occurred_at.isoformat(),
        "account": None
        if account is None
        else {
            "id": account.id,
            "login": account.login,
            "server": account.server,
            "label": account.label,
            "currency": account.currency,
            "url": account_link(account.id),
        },
        "title": message.title,
        "text": message.text,
        "link": message.link,
        "data": n.payload,
    }
