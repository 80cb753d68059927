"""The one hook for live updates: services call broadcast() and it sends after the transaction commits."""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def broadcast(group: str, event: str, **payload: Any) -> None:
    """Send a high-level event (`<noun>.<verb>`, ids and plain values only) to a channel-layer group after commit.

    A failing channel layer must never break the write that triggered it, so errors are logged, not raised.
    """

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(
                group, {"type": event.replace(".", "_"), "event": event, **payload}
            )
        except Exception:
            logger.exception("live update %s to %s was not delivered", event, group)

    transaction.on_commit(send)


def account_group(account_id: int) -> str:
    return f"accounts.account.{account_id}"


STAFF_GROUP = "accounts.staff"
