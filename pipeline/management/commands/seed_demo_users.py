"""Development only: demo users (one per role) and demo trading accounts on the simulated terminal bridge.

Idempotent: re-running keeps existing rows and resets the demo users' passwords to the printed ones.
Refuses to run with DEBUG off, so no production database ever gets well-known passwords.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import GatewayBackend, Role, TradingAccount, User
from accounts.services import trading_account_create, user_create

DEMO_USERS = [
    ("owner", Role.OWNER, "owner-dev-password"),
    ("support", Role.SUPPORT, "support-dev-password"),
    ("trader", Role.TRADER, "trader-dev-password"),
    ("trader2", Role.TRADER, "trader2-dev-password"),
]

# (owner username, login, label, starting balance) — the demo market opens and closes positions on these.
DEMO_ACCOUNTS = [
    ("trader", 7_100_001, "Alice FX", "10000"),
    ("trader", 7_100_002, "Alice Gold", "25000"),
    ("trader2", 7_100_003, "Bob Indices", "50000"),
    ("trader2", 7_100_004, "Bob Netting FX", "20000"),
]
DEMO_SERVER = "SimBroker-Demo"
# Accounts on a netting server (one position per symbol): the pages show both kinds of reconciliation.
DEMO_NETTING_SERVER = "SimBroker-Netting"
DEMO_NETTING_LOGINS = frozenset({7_100_004})


def demo_account_server(login: int) -> str:
    return DEMO_NETTING_SERVER if login in DEMO_NETTING_LOGINS else DEMO_SERVER


def demo_account_password(login: int) -> str:
    return f"demo-mt5-{login}"


class Command(BaseCommand):
    help = "Create demo users (owner, support, traders) and demo MT5 accounts on the simulated bridge."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("seed_demo_users is for development only (DJANGO_DEBUG is off).")
        with transaction.atomic():
            users = {}
            for username, role, password in DEMO_USERS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    user = user_create(username=username, password=password, role=role)
                else:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                users[username] = user
            for username, login, label, _balance in DEMO_ACCOUNTS:
                server = demo_account_server(login)
                if not TradingAccount.objects.filter(login=login, server=server).exists():
                    trading_account_create(
                        owner=users[username],
                        login=login,
                        server=server,
                        label=label,
                        password=demo_account_password(login),
                        backend=GatewayBackend.BRIDGE,
                        broker_company="Simulated Broker Ltd",
                    )
        self.stdout.write("Demo users (development passwords):")
        for username, role, password in DEMO_USERS:
            self.stdout.write(f"  {role.value:8} {username:8} {password}")
