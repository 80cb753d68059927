"""Celery entry points of the guards. Thin: load ids, get the gateway, call the service, decide on retries.

* `account_liquidate` is queued by the guard with countdown = the grace period. Late acknowledgement and re-queue on
  worker loss: a worker killed mid-liquidation leaves the message to another worker, and the service is idempotent
  (the trip id names the episode; close intents are keyed and re-read the terminal before any retry).
* `account_positions_close` closes positions that appeared while halted or that the market guard marked.
* `close_intent_retry` is queued with the countdown of a failed close's next attempt (or of an open intent's next
  read); the due time is stored on the intent, so a lost message is made up by the recovery or the next sync.
* `close_intents_complete` completes intents left pending/sent/unresolved and makes overdue retries; periodic
  (GUARDS_PERIODIC_TASKS, declared by setup_periodic_tasks) and once when a worker starts.
"""

import logging
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

from accounts.models import TradingAccount
from accounts.selectors import trading_account_gateway
from guards import services
from guards.models import CloseIntent
from integrations.mt5.gateway import Mt5Gateway

logger = logging.getLogger(__name__)

LIQUIDATION_RETRY_SECONDS = 5
LIQUIDATION_MAX_RETRIES = 60  # five minutes of re-checks/closing attempts; every sync also re-dispatches
RECOVERY_MIN_AGE_SECONDS = 30
# The database gone (down, restarting, a dropped connection): a closing task tries again every few seconds instead
# of dying, so a liquidation resumes within seconds of the database's return rather than at the next recovery pass.
# Its intents were written ahead, so a retry re-reads the terminal before sending anything again.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
DATABASE_RETRY = {"autoretry_for": DATABASE_UNAVAILABLE, "default_retry_delay": 5, "retry_jitter": False}
GUARDS_PERIODIC_TASKS = [
    {
        "name": "guards: complete close intents",
        "task": "guards.tasks.close_intents_complete",
        "every": 60,
        "description": "Finish close intents left pending/sent/unresolved (killed worker, terminal down) and "
        "make failed closes' retries that are overdue.",
    }
]


def _gateway_for(account: TradingAccount) -> Mt5Gateway:
    return trading_account_gateway(account=account)


@shared_task(
    bind=True,
    name="guards.tasks.account_liquidate",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=LIQUIDATION_MAX_RETRIES,
    **DATABASE_RETRY,
)
def account_liquidate_task(self: Any, account_id: int, trip_id: str) -> str:
    account = TradingAccount.objects.filter(pk=account_id).first()
    if account is None:
        return "gone"
    result = services.account_liquidate(account=account, trip_id=trip_id, gateway=_gateway_for(account))
    if result.outcome in ("retry", "incomplete") and not self.request.called_directly:
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=LIQUIDATION_RETRY_SECONDS)
        logger.error(
            "liquidation %s of account %s still %s after retries", trip_id, account_id, result.outcome
        )
    return result.outcome


@shared_task(
    name="guards.tasks.account_positions_close",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=LIQUIDATION_MAX_RETRIES,
    **DATABASE_RETRY,
)
def account_positions_close_task(account_id: int, trigger: str, trigger_key: str, tickets: list[int]) -> int:
    account = TradingAccount.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    outcomes = services.positions_close_all(
        account=account,
        trigger_key=trigger_key,
        gateway=_gateway_for(account),
        trigger=trigger,
        tickets=tickets,
    )
    return sum(1 for o in outcomes if o.state == "confirmed")


@shared_task(
    name="guards.tasks.close_intent_retry",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=LIQUIDATION_MAX_RETRIES,
    **DATABASE_RETRY,
)
def close_intent_retry_task(intent_id: int) -> str:
    intent = CloseIntent.objects.filter(pk=intent_id).select_related("account").first()
    if intent is None:
        return "gone"
    driven = services.close_intent_follow_up(intent=intent, gateway=_gateway_for(intent.account))
    return driven.state if driven is not None else "nothing due"


@shared_task(name="guards.tasks.close_intents_complete", ignore_result=True, acks_late=True)
def close_intents_complete_task(older_than_seconds: float = RECOVERY_MIN_AGE_SECONDS) -> int:
    outcomes = services.close_intents_complete(
        gateway_for=_gateway_for, older_than_seconds=older_than_seconds
    )
    return len(outcomes)


@worker_ready.connect
def _complete_intents_on_start(sender: Any = None, **kwargs: Any) -> None:
    """A worker that starts (perhaps replacing one that was killed) finishes what was left half-done."""
    close_intents_complete_task.apply_async(kwargs={"older_than_seconds": 0}, countdown=2)


MANUAL_CLOSE_RETRY_SECONDS = 5
MANUAL_CLOSE_MAX_RETRIES = 12


@shared_task(
    bind=True,
    name="guards.tasks.manual_close_execute",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MANUAL_CLOSE_MAX_RETRIES,
    **DATABASE_RETRY,
)
def manual_close_execute_task(self: Any, request_id: int) -> int:
    """Send the closes of a manual close request (queued after its commit). A terminal that cannot even list the
    positions (close-all) is retried; intents left open are finished by close_intents_complete anyway."""
    from guards.models import ManualCloseRequest
    from guards.services.manual_close import manual_close_execute
    from integrations.mt5.errors import GatewayError

    request = ManualCloseRequest.objects.select_related("account", "user").filter(pk=request_id).first()
    if request is None:
        return 0
    try:
        outcomes = manual_close_execute(request=request, gateway=_gateway_for(request.account))
    except GatewayError as exc:
        if self.request.called_directly or self.request.retries >= self.max_retries:
            logger.error("manual close %s: positions could not be read: %s", request_id, exc)
            return 0
        raise self.retry(countdown=MANUAL_CLOSE_RETRY_SECONDS) from exc
    return sum(1 for o in outcomes if o.state == "confirmed")
