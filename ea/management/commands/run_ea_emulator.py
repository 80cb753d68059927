"""Development only: an emulated MT5Guard EA for the demo account on the `ea` backend.

It drives that account's simulated terminal in the bridge process (as the real EA runs inside the trader's terminal)
and speaks the EA protocol to our web server over HTTP with the account's key: pushes every --interval seconds, fetches
and executes close commands. With --demo it first creates the demo account and its key when they are missing.
"""

import logging
import time
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import GatewayBackend, TradingAccount, User
from accounts.services import trading_account_create
from core.crypto import decrypt_secret
from ea.models import EaLink
from ea.services import ea_link_create
from integrations.mt5.bridge.client import BridgeClient
from integrations.mt5.ea.emulator import EaEmulator, UrllibTransport

logger = logging.getLogger(__name__)

DEMO_LOGIN, DEMO_SERVER, DEMO_OWNER, DEMO_LABEL, DEMO_BALANCE = (
    7_100_005,
    "SimBroker-Demo",
    "trader2",
    "Carol EA",
    20_000,
)


class Command(BaseCommand):
    help = "Run an emulated MT5Guard EA for the demo account on the ea backend (development only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--server-url", default="http://127.0.0.1:8000")
        parser.add_argument("--interval", type=float, default=5.0)
        parser.add_argument(
            "--demo", action="store_true", help="Create the demo account and its key if missing."
        )
        parser.add_argument(
            "--iterations", type=int, default=0, help="Stop after N pushes (0: until Ctrl-C)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("run_ea_emulator is for development only (DJANGO_DEBUG is off).")
        link = self._demo_link() if options["demo"] else EaLink.objects.select_related("account").first()
        if link is None:
            raise CommandError(
                "No account on the ea backend has a key (use --demo, or add one in the admin)."
            )
        account = link.account
        terminal = BridgeClient(settings.MT5_BRIDGE_URL, settings.MT5_BRIDGE_SECRET or "", login=account.login,
                                server=account.server)  # fmt: skip
        self._provision(terminal)
        # Development only: the emulator plays the trader's EA, so it reads the key the owner would have copied.
        ea = EaEmulator(api=terminal, transport=UrllibTransport(options["server_url"]), key_id=link.key_id,
                        secret=decrypt_secret(link.secret_encrypted))  # fmt: skip
        ea.start()
        self.stdout.write(
            f"EA emulator pushing {account} to {options['server_url']} every {options['interval']} s"
        )
        pushes = 0
        while not options["iterations"] or pushes < options["iterations"]:
            try:
                ea.on_timer()
                ea.poll_commands(wait=min(options["interval"], 25))
            except Exception as exc:  # the web server or bridge may be restarting: keep going
                logger.warning("EA emulator: %s", exc)
                time.sleep(options["interval"])
            pushes += 1

    def _demo_link(self) -> EaLink:
        with transaction.atomic():
            account = TradingAccount.objects.filter(login=DEMO_LOGIN, server=DEMO_SERVER).first()
            if account is None:
                owner = User.objects.filter(username=DEMO_OWNER).first()
                if owner is None:
                    raise CommandError("Run seed_demo_users first.")
                account = trading_account_create(owner=owner, login=DEMO_LOGIN, server=DEMO_SERVER,
                                                  label=DEMO_LABEL, backend=GatewayBackend.EA)  # fmt: skip
            link = EaLink.objects.filter(account=account).first()
            return link or ea_link_create(account=account, fresh_for_seconds=60)[0]

    def _provision(self, terminal: BridgeClient) -> None:
        for _ in range(30):  # the bridge starts alongside us
            try:
                if terminal.account_info() is None:
                    terminal.sim_create_account(balance=DEMO_BALANCE, margin_mode="hedging", seed=DEMO_LOGIN)
                if not terminal.positions_get():
                    terminal.sim_open_manual("EURUSD", "buy", Decimal("0.30"), comment="carol-1")
                    terminal.sim_open_manual("XAUUSD", "sell", Decimal("0.05"), comment="carol-2")
                return
            except Exception as exc:
                logger.info("EA emulator: waiting for the bridge (%s)", exc)
                time.sleep(1)
