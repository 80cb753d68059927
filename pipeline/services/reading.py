"""Take one account reading (integrations.mt5.reading.AccountReading): every terminal call a sync needs, before any
database lock or transaction.

Order: account info, terminal info (is it connected to its trade server?), positions, the deals since the cursor,
then what the market guard needs of each symbol held. A failure of account info, terminal info or positions fails the
reading (GatewayError propagates: nothing may be concluded from it, never "no positions"); so does a terminal that
says it is not connected to its trade server (TerminalDisconnected). A failed deal-history read
does not: the reading carries `deals=None` and the reason, and whoever needs the history waits for a later one.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from accounts.models import TradingAccount
from core.db import WriteBatch
from guards.services import market_reading_take
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.reading import AccountReading
from reconciliation.conf import setting

logger = logging.getLogger(__name__)

_CURSOR_UPDATE = f"UPDATE {TradingAccount._meta.db_table} SET deals_cursor = %s WHERE id = %s"  # noqa: S608 - the model's table


def deals_cursor_advance(*, account: TradingAccount, to: datetime, writes: WriteBatch) -> None:
    """The next reading asks for deals since `to` (minus the overlap). Written with the sync's last statement (the
    account's row: `TradingAccount.deals_cursor`, read with the account), so it commits with the sync or not at all."""
    writes.add(_CURSOR_UPDATE, [to, account.pk])


def _deals_since(*, account: TradingAccount, now: datetime) -> datetime:
    """Since the previous complete sync minus an overlap (history can lag), or a fixed look-back on the first."""
    cursor = account.deals_cursor
    if cursor is None:
        return now - timedelta(seconds=setting("RECONCILIATION_DEALS_FIRST_LOOKBACK_SECONDS"))
    return min(cursor, now) - timedelta(seconds=setting("RECONCILIATION_DEALS_OVERLAP_SECONDS"))


class TerminalDisconnected(Exception):
    """The terminal answered but is not connected to its trade server: what it says may be old or empty."""


def account_reading_take(*, account: TradingAccount, gateway: Mt5Gateway, now: datetime) -> AccountReading:
    """Raises GatewayError for a failed call and TerminalDisconnected for a terminal off its trade server: either
    way the sync is failed and nothing is concluded. The calls share one look at the account's circuit breaker
    (ManagedGateway.reading) where the gateway has one."""
    scope = getattr(gateway, "reading", None)
    with scope() if scope is not None else contextlib.nullcontext():
        return _reading_take(account=account, gateway=gateway, now=now)


def _reading_take(*, account: TradingAccount, gateway: Mt5Gateway, now: datetime) -> AccountReading:
    state = gateway.account()
    terminal = gateway.terminal()
    if not terminal.connected:
        raise TerminalDisconnected("the terminal is not connected to its trade server")
    positions = gateway.positions()
    since = _deals_since(account=account, now=now)
    deals, deals_error = None, ""
    try:
        # Until a little past now: the server clock is an estimate.
        deals = gateway.deals(since=since, until=now + timedelta(hours=1))
    except GatewayError as exc:
        deals_error = f"{type(exc).__name__}: {exc}"[:300]
        logger.warning("account %s: deal history not readable: %s", account.pk, deals_error)
    market = (
        market_reading_take(account=account, gateway=gateway, positions=positions, now=now)
        if positions
        else {}
    )
    return AccountReading(
        taken_at=now,
        state=state,
        terminal=terminal,
        positions=positions,
        deals=deals,
        deals_since=since,
        deals_error=deals_error,
        market=market,
    )
