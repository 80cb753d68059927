"""Is this reading still the account it should be? A terminal on a VPS that someone logged into another account, or a
terminal that came back empty with its ticket counters reset, must never make us liquidate, or match bot trades
against, the wrong account.

Checked on every reading, before anything is concluded from it:
* the login and server of account_info() are the account's;
* history never goes backwards: a ticket we hold names another position (symbol or open time differ), a position we
  have never seen carries a ticket lower than the highest one already seen (tickets only grow on a trade server), or
  every position we hold vanished with no deal of any of them in the history read since the previous sync (positions
  close through deals).
A failed check holds the account (audited, alerted to operators): its syncs fail and the guards act on nothing until
an operator confirms the account (accounts.services.trading_account_identity_confirm); the first reading after that
is the new reference. The watermark (`max_ticket_seen`) is raised by the sync in the statement that stores the
snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping

from accounts.models import TradingAccount
from accounts.services import trading_account_identity_hold
from core.realtime import STAFF_GROUP, broadcast
from integrations.mt5.reading import AccountReading
from reconciliation.services.sync import stored_positions_read


class TerminalIdentityChanged(Exception):
    """The terminal does not read as this account (or the account is held until an operator confirms it)."""


def _mismatch(
    *, account: TradingAccount, reading: AccountReading, stored: Mapping[int, tuple[str, int]] | None
) -> tuple[str, dict[str, object]] | None:
    state = reading.state
    if state.login != account.login or state.server.casefold() != account.server.casefold():
        return (
            f"the terminal is logged in to {state.login}@{state.server}, not {account.login}@{account.server}",
            {"login": state.login, "server": state.server},
        )
    if account.max_ticket_seen == 0:
        # A first reading (a new account, or just confirmed by an operator): it becomes the reference.
        return None
    if stored is None:
        stored = stored_positions_read(account_id=account.pk)
    known = set(stored)
    tickets = {p.ticket for p in reading.positions}
    reused = sorted(
        p.ticket
        for p in reading.positions
        if p.ticket in stored and stored[p.ticket] != (p.symbol, p.time_epoch)
    )
    if reused:
        return (
            f"tickets {reused[:5]} now name other positions (another symbol or open time): the terminal's history "
            "was reset",
            {"tickets": reused[:20]},
        )
    older = sorted(t for t in tickets - known if t < account.max_ticket_seen)
    if older:
        return (
            f"new positions carry tickets {older[:5]} below the highest ticket already seen "
            f"({account.max_ticket_seen}): the terminal's history went backwards",
            {"tickets": older[:20], "max_ticket_seen": account.max_ticket_seen},
        )
    vanished = known - tickets
    if len(known) >= 2 and vanished == known and reading.deals is not None:
        dealt = {d.position_id for d in reading.deals}
        if not dealt & vanished:
            return (
                f"all {len(known)} positions vanished with no deal of any of them in the history: "
                "the terminal is not the account it was",
                {"vanished": sorted(vanished)[:20]},
            )
    return None


def reading_identity_check(
    *, account: TradingAccount, reading: AccountReading, stored: Mapping[int, tuple[str, int]] | None = None
) -> int:
    """Raise TerminalIdentityChanged (and hold the account) when the reading is not this account's. Returns the
    highest ticket the reading shows: the sync raises the account's watermark to it in the statement that stores
    the snapshot (no write of its own)."""
    if account.identity_hold_reason:
        raise TerminalIdentityChanged(
            f"held since {account.identity_hold_since:%Y-%m-%d %H:%M:%S}Z: {account.identity_hold_reason}; "
            "an operator must confirm the account"
        )
    found = _mismatch(account=account, reading=reading, stored=stored)
    if found is not None:
        reason, detail = found
        trading_account_identity_hold(account=account, reason=reason, detail=detail)
        broadcast(STAFF_GROUP, "account.identity_held", account_id=account.pk, reason=reason)
        raise TerminalIdentityChanged(reason)
    return max(
        [p.ticket for p in reading.positions] + [d.position_id for d in reading.deals or ()], default=0
    )
