"""How guard decisions reach the workers: a liquidation after the grace period, closes for halted/market positions.

Production queues Celery tasks after the transaction commits (`CeleryDispatcher`); a close retry is queued with its
countdown, and its due time is also stored on the intent, so a lost task is picked up by the recovery or the sync. The scenario runner installs
its own dispatcher that runs the same services at the right moment of its virtual clock.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from django.db import transaction


class Dispatcher(Protocol):
    def liquidation(self, *, account_id: int, trip_id: str, countdown: float) -> None: ...

    def closes(self, *, account_id: int, trigger: str, trigger_key: str, tickets: list[int]) -> None: ...

    def close_retry(self, *, account_id: int, intent_id: int, countdown: float) -> None: ...


class CeleryDispatcher:
    def liquidation(self, *, account_id: int, trip_id: str, countdown: float) -> None:
        from guards.tasks import account_liquidate_task

        transaction.on_commit(
            lambda: account_liquidate_task.apply_async(
                args=[account_id, trip_id], countdown=max(0.0, countdown)
            )
        )

    def closes(self, *, account_id: int, trigger: str, trigger_key: str, tickets: list[int]) -> None:
        from guards.tasks import account_positions_close_task

        transaction.on_commit(
            lambda: account_positions_close_task.delay(account_id, trigger, trigger_key, list(tickets))
        )

    def close_retry(self, *, account_id: int, intent_id: int, countdown: float) -> None:
        from guards.tasks import close_intent_retry_task

        transaction.on_commit(
            lambda: close_intent_retry_task.apply_async(args=[intent_id], countdown=max(0.0, countdown))
        )


_dispatcher: Dispatcher = CeleryDispatcher()


def dispatcher_get() -> Dispatcher:
    return _dispatcher


@contextmanager
def dispatcher_override(replacement: Dispatcher) -> Iterator[None]:
    global _dispatcher
    previous = _dispatcher
    _dispatcher = replacement
    try:
        yield
    finally:
        _dispatcher = previous
