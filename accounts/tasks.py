"""Celery entry points of the accounts app: the periodic health probe of every active account's terminal."""

import logging

from celery import shared_task
from django.conf import settings

from accounts.models import TradingAccount
from accounts.selectors import trading_account_gateway, trading_account_list_active
from accounts.services import account_health_probe

logger = logging.getLogger(__name__)


@shared_task(name="accounts.tasks.account_health_probe_cycle", ignore_result=True)
def account_health_probe_cycle() -> int:
    """Fan out one probe per active account; each expires before the next cycle so a backlog never piles up."""
    interval = settings.ACCOUNT_HEALTH_PROBE_SECONDS
    account_ids = list(trading_account_list_active().values_list("pk", flat=True))
    for account_id in account_ids:
        account_health_probe_task.apply_async(args=[account_id], expires=interval)
    return len(account_ids)


@shared_task(name="accounts.tasks.account_health_probe", ignore_result=True, acks_late=True)
def account_health_probe_task(account_id: int) -> str:
    account = TradingAccount.objects.filter(pk=account_id).first()
    if account is None:
        return "gone"
    row = account_health_probe(account=account, gateway=trading_account_gateway(account=account))
    return "connected" if row.connected else "down"
