"""Start-up checks of the accounts app (Django's system check framework: every manage.py command, `check --deploy`).

accounts.E001: with DEBUG off, no active account may use the simulated terminal. The account would otherwise be
synced and guarded against a make-believe market while its real terminal goes unwatched.
"""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.db import DatabaseError


@register()
def simulated_accounts_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if settings.MT5_SIMULATED_ALLOWED:
        return []
    from accounts.models import AccountStatus, GatewayBackend, TradingAccount

    try:
        refused = list(
            TradingAccount.objects.filter(backend=GatewayBackend.SIMULATED, status=AccountStatus.ACTIVE)
            .order_by("pk")
            .values_list("login", "server")[:20]
        )
    except DatabaseError:  # no database yet (before the first migrate): nothing to check
        return []
    if not refused:
        return []
    names = ", ".join(f"{login}@{server}" for login, server in refused)
    return [
        Error(
            f"Active trading accounts use the simulated terminal while DEBUG is off: {names}.",
            hint="Switch each to the bridge (or native) backend, or pause it, in the admin; the simulated terminal is "
            "for development only (docs/DEPLOY-MT5.md).",
            obj="accounts.TradingAccount",
            id="accounts.E001",
        )
    ]
