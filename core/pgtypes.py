"""Timestamps read from PostgreSQL parsed by the driver's C code instead of its Python fallback.

Django (5.2, psycopg 3) registers its own `timestamptz` loader on every connection: a subclass of psycopg's *Python*
`TimestamptzLoader` that sets the result's tzinfo to the connection's time zone. Subclassing it bypasses the C
loader psycopg[binary] ships (a final C class, so it cannot be subclassed), and every timestamp of every row is then
parsed in Python: ~6 us each, 9 % of a steady account sync's CPU (py-spy; ~55 timestamps per sync: bot trades, the
guard state, events). The loader here keeps Django's contract exactly (the same `timezone` attribute, which Django's
`create_cursor` compares before overriding it per cursor, and the same `replace(tzinfo=timezone)`), and delegates
the parsing to the C loader: ~1.4 us each.

Installed once at start-up (core.apps) into the adapters template Django copies into every new connection
(`get_adapters_template`, cached per (USE_TZ, time zone)); nothing changes where the C implementation is absent.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import connections

POSTGRESQL_VENDOR = "postgresql"


def _c_timestamptz_loader() -> type | None:
    try:
        from psycopg import adapters, postgres
        from psycopg.pq import Format
    except ImportError:  # psycopg2: its own C parsing, nothing to do
        return None
    loader = adapters.get_loader(postgres.types["timestamptz"].oid, Format.TEXT)
    # The pure-Python class lives in psycopg.types.datetime; the C one in psycopg_binary / psycopg_c.
    if loader is None or loader.__module__.startswith("psycopg.types"):
        return None
    return loader


def timestamptz_loader_install() -> bool:
    """Register the C-parsing loader for every PostgreSQL connection of this process; True when installed."""
    found = _c_timestamptz_loader()
    if found is None:
        return False
    c_loader: type = found
    from django.db.backends.postgresql.psycopg_any import get_adapters_template
    from psycopg.adapt import Loader

    installed = False
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.vendor != POSTGRESQL_VENDOR:
            continue
        tz = wrapper.timezone

        class CTimestamptzLoader(Loader):
            """Django's BaseTzLoader, parsing in C."""

            timezone: datetime.tzinfo | None = tz

            def __init__(self, oid: int, context: Any = None) -> None:
                super().__init__(oid, context)
                self._parse = c_loader(oid, context).load

            def load(self, data: Any) -> datetime.datetime:
                return self._parse(data).replace(tzinfo=self.timezone)

        get_adapters_template(settings.USE_TZ, tz).register_loader("timestamptz", CTimestamptzLoader)
        installed = True
    return installed
