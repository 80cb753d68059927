"""A user who logs out stops receiving live pushes at once (their open sockets close)."""

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from core.realtime import broadcast


@receiver(user_logged_out)
def live_sockets_close_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        from dashboard.consumers import user_group

        broadcast(user_group(user.pk), "session.ended", user_id=user.pk)
