"""Per-account symbol tables for the matcher: digits and point from the terminal's symbol_info (cached in the
Django cache, shared by every worker), canonical names and pip sizes from SymbolOverride rows (also cached;
invalidated whenever an override is saved or deleted).

A bot trade may name a canonical symbol that no open position uses (its position is gone, or never opened). The
matcher needs every canonical name in its table, so such names get a placeholder entry: no live position can carry
the placeholder's terminal name, so it never changes a match.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote

from django.core.cache import cache

from accounts.models import TradingAccount
from integrations.mt5.errors import GatewayInvalidRequest
from integrations.mt5.gateway import Mt5Gateway
from reconciliation.conf import setting
from reconciliation.matching import SymbolSpec, SymbolTable
from reconciliation.models import SymbolOverride

OVERRIDES_CACHE_KEY = "recon:symbol-overrides:v1"
_UNKNOWN = "unknown"
_PLACEHOLDER_POINT = Decimal("0.00001")


class SymbolNotDescribed(Exception):
    """The terminal reports a position on a symbol it cannot describe (symbol_info failed)."""


@dataclass(frozen=True, slots=True)
class _Override:
    account_id: int | None
    server: str
    name: str
    canonical: str
    pip: Decimal | None


def symbol_overrides_invalidate() -> None:
    cache.delete(OVERRIDES_CACHE_KEY)


def _overrides_load() -> list[_Override]:
    rows = [
        tuple(row)
        for row in SymbolOverride.objects.values_list("account_id", "server", "name", "canonical", "pip")
    ]
    cache.set(OVERRIDES_CACHE_KEY, rows, timeout=None)
    return [_Override(*row) for row in rows]


class _Resolver:
    """Most specific override first: the account's, then the server's, then the global one."""

    def __init__(self, overrides: Iterable[_Override], *, account_id: int, server: str) -> None:
        self._best: dict[str, tuple[int, _Override]] = {}
        for row in overrides:
            if row.account_id is not None:
                if row.account_id != account_id:
                    continue
                rank = 0
            elif row.server:
                if row.server != server:
                    continue
                rank = 1
            else:
                rank = 2
            key = row.name.upper()
            if key not in self._best or rank < self._best[key][0]:
                self._best[key] = (rank, row)

    def _row(self, name: str) -> _Override | None:
        found = self._best.get(name.upper())
        return found[1] if found else None

    def resolve(self, name: str) -> tuple[str, Decimal | None]:
        row = self._row(name)
        canonical = row.canonical if row and row.canonical else name.upper()
        pip = row.pip if row else None
        if pip is None and canonical != name.upper():
            by_canonical = self._row(canonical)
            pip = by_canonical.pip if by_canonical else None
        return canonical, pip


def _spec_key(server: str, name: str) -> str:
    return f"recon:symbol:{quote(server, safe='')}:{quote(name, safe='')}"


def symbol_table_for_account(
    *,
    account: TradingAccount,
    gateway: Mt5Gateway,
    terminal_names: Iterable[str],
    canonical_names: Iterable[str] = (),
) -> SymbolTable:
    """The matcher's table for the symbols of these positions (terminal names) and bot trades (canonical names).

    One cache round trip when everything is cached; gateway.symbol() only for names never seen on this server.
    Gateway errors other than "unknown symbol" propagate (the sync then fails: nothing is concluded).
    """
    names = sorted(set(terminal_names))
    keys = {name: _spec_key(account.server, name) for name in names}
    cached = cache.get_many([OVERRIDES_CACHE_KEY, *keys.values()])
    rows = cached.get(OVERRIDES_CACHE_KEY)
    overrides = [_Override(*row) for row in rows] if rows is not None else _overrides_load()
    resolver = _Resolver(overrides, account_id=account.pk, server=account.server)

    fetched: dict[str, object] = {}
    specs: dict[str, SymbolSpec] = {}
    for name in names:
        raw = cached.get(keys[name])
        if raw is None:
            try:
                info = gateway.symbol(name)
            except GatewayInvalidRequest:
                raw = _UNKNOWN
            else:
                raw = (info.digits, str(info.point))
            fetched[keys[name]] = raw
        if raw == _UNKNOWN:
            raise SymbolNotDescribed(f"the terminal does not describe symbol {name!r}")
        digits, point = raw
        canonical, pip = resolver.resolve(name)
        specs[name] = SymbolSpec(
            name=name, digits=int(digits), point=Decimal(point), canonical=canonical, pip=pip
        )
    if fetched:
        cache.set_many(fetched, timeout=setting("RECONCILIATION_SYMBOL_CACHE_SECONDS"))

    covered = {spec.canonical.upper() for spec in specs.values()}
    for canonical in sorted({name.upper() for name in canonical_names} - covered):
        placeholder = f"<{canonical}>"
        specs[placeholder] = SymbolSpec(
            name=placeholder, digits=5, point=_PLACEHOLDER_POINT, canonical=canonical
        )
    return SymbolTable(specs)


def symbol_digits_cached(*, server: str, names: Iterable[str]) -> dict[str, int]:
    """Digits of the symbols the syncs have described on this server (one cache round trip; never a terminal call).
    A symbol not in the cache is missing from the answer: pages then show the price as stored."""
    keys = {name: _spec_key(server, name) for name in set(names)}
    cached = cache.get_many(list(keys.values()))
    digits: dict[str, int] = {}
    for name, key in keys.items():
        raw = cached.get(key)
        if raw is not None and raw != _UNKNOWN:
            digits[name] = int(raw[0])
    return digits
