"""The port between the `ea` backend and where pushes and commands are kept (the Django app `ea` provides it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredPush:
    """The latest accepted push of an account, as plain JSON values, with when we received it (epoch seconds, UTC)."""

    data: dict[str, Any]
    received_at: float
    fresh_for_seconds: float  # the account's freshness limit


class EaStore(Protocol):
    def latest_push(self, *, login: int, server: str) -> StoredPush | None: ...

    def deals(self, *, login: int, server: str, since_msc: int, until_msc: int) -> list[dict[str, Any]]: ...

    def deals_for_position(self, *, login: int, server: str, position_id: int) -> list[dict[str, Any]]: ...

    def command_enqueue(
        self, *, login: int, server: str, request: dict[str, Any], deadline_seconds: float
    ) -> int:
        """Queue a close command for the EA; returns its id."""

    def command_result(self, *, command_id: int) -> dict[str, Any] | None:
        """The EA's result (retcode, deal, order, volume, price, comment), or None while there is none."""

    def command_expire(self, *, command_id: int) -> dict[str, Any] | None:
        """Past its deadline: mark the command expired unless a result came in meanwhile (then return that)."""

    def unanswered_until(self, *, login: int, server: str) -> float | None:
        """The latest deadline (epoch s) of an expired command that never got a result: until a push received after
        it, the account's state is unknown (the EA may have executed the order)."""


_store: EaStore | None = None


def store_register(store: EaStore) -> None:
    global _store
    _store = store


def store_get() -> EaStore:
    if _store is None:
        raise RuntimeError("no EA store registered: add the `ea` app to INSTALLED_APPS")
    return _store
