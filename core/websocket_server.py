"""Tuning of daphne's websocket layer (autobahn), applied by config/asgi.py.

autobahn formats the arguments of its debug log lines before it calls the logger, whether debug logging is on or
not: for every frame sent, type names and values styled through click (`hltype`, `hlval`), and for every
connection a pretty-printed dict (`pformat`). In bench_live's profile of daphne that was ~40 µs of a ~300 µs frame
and ~3 ms of a connection (a daphne restart under 500 open pages reconnects 500 at once). The formatted text is
thrown away unless autobahn's debug logging is on, which we never turn on in a server. The replacements hand the
value to the logger unformatted, so a debug line, if ever enabled, still carries the same facts, only unstyled.
"""

from typing import Any


def _unformatted(value: Any, *args: Any, **kwargs: Any) -> Any:
    return value


def skip_autobahn_debug_formatting() -> None:
    from autobahn.websocket import protocol

    protocol.hltype = _unformatted  # type: ignore[attr-defined]
    protocol.hlval = _unformatted  # type: ignore[attr-defined]
    protocol.pformat = repr  # type: ignore[attr-defined]
