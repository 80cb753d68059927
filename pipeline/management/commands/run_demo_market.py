"""Development only: play the market, the signal bot and the traders against the simulated terminals of the demo
accounts, so every page has live data.

It talks to the simulated-terminal bridge (the process `make run` starts) exactly as outside actors would: the bot
registers bot trades through the reconciliation service and its orders appear on the terminal (sometimes partly
filled, sometimes with slippage, sometimes never), traders open and close positions by hand. The product itself only
sees the terminal, through its gateway, on the next sync. Deterministic for a given --seed.
"""

import logging
import random
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import TradingAccount
from integrations.mt5 import constants as mt5
from integrations.mt5.bridge.client import BridgeClient
from pipeline.management.commands.seed_demo_users import (
    DEMO_ACCOUNTS,
    DEMO_NETTING_LOGINS,
    demo_account_password,
    demo_account_server,
)
from reconciliation.selectors import bot_trade_list_for_account
from reconciliation.services import bot_trade_close, bot_trade_register

logger = logging.getLogger(__name__)

BOT_MAGIC = 5150
SYMBOLS_BY_LABEL = {
    "Alice FX": ["EURUSD", "GBPUSD", "USDJPY"],
    "Alice Gold": ["XAUUSD", "XAGUSD"],
    "Bob Indices": ["US500", "GER40"],
    "Bob Netting FX": ["EURUSD", "GBPUSD"],
}
DEFAULT_SYMBOLS = ["EURUSD", "XAUUSD"]
MAX_OPEN = 8


class Command(BaseCommand):
    help = "Drive the demo accounts' simulated terminals: bot signals, fills, manual trades and closes."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=7.0, help="Seconds between market actions.")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--iterations", type=int, default=0, help="Stop after N rounds (0: run until Ctrl-C)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError("run_demo_market is for development only (DJANGO_DEBUG is off).")
        rng = random.Random(options["seed"])
        balances = {login: balance for _owner, login, _label, balance in DEMO_ACCOUNTS}
        accounts = [
            account
            for account in TradingAccount.objects.filter(login__in=balances)
            if account.server == demo_account_server(account.login)
        ]
        clients = {a.pk: self._client(a) for a in accounts}
        for account in accounts:
            self._provision(clients[account.pk], account, balances[account.login])
        self.stdout.write(f"Demo market running on {len(accounts)} accounts (Ctrl-C stops).")
        rounds = 0
        while True:
            for account in accounts:
                try:
                    self._act(rng, clients[account.pk], account)
                except Exception as exc:  # the bridge may be restarting; keep playing
                    logger.warning("demo market: %s on %s", exc, account)
            rounds += 1
            if options["iterations"] and rounds >= options["iterations"]:
                return
            time.sleep(options["interval"])

    def _client(self, account: TradingAccount) -> BridgeClient:
        return BridgeClient(
            settings.MT5_BRIDGE_URL,
            settings.MT5_BRIDGE_SECRET or "",
            login=account.login,
            server=account.server,
        )

    def _provision(self, client: BridgeClient, account: TradingAccount, balance: str) -> None:
        netting = account.login in DEMO_NETTING_LOGINS
        password = demo_account_password(account.login)
        for _ in range(30):  # the bridge starts alongside us
            try:
                client.sim_create_account(
                    balance=balance,
                    password=password,
                    margin_mode="netting" if netting else "hedging",
                    seed=account.login,
                )
                client.initialize(login=account.login, password=password, server=account.server)
                return
            except Exception:  # exists already (a restart of this process) or the bridge is not up yet
                if client.account_info() is not None or client.initialize(
                    login=account.login, password=password, server=account.server
                ):
                    info = client.account_info()
                    if (
                        netting
                        and info is not None
                        and info.margin_mode != mt5.ACCOUNT_MARGIN_MODE_RETAIL_NETTING
                    ):
                        # A sync reached the bridge first, which opened a default (hedging) account: start over.
                        client.sim_remove_account()
                        continue
                    return
                time.sleep(1)

    def _act(self, rng: random.Random, client: BridgeClient, account: TradingAccount) -> None:
        symbols = SYMBOLS_BY_LABEL.get(account.label, DEFAULT_SYMBOLS)
        open_tickets = [p.ticket for p in client.positions_get() or ()]
        roll = rng.random()
        if open_tickets and (roll < 0.25 or len(open_tickets) >= MAX_OPEN):
            # A trader closes a position from a phone: the bot's trade goes missing (closed by hand).
            client.sim_close_manual(rng.choice(open_tickets), reason=mt5.ORDER_REASON_MOBILE)
        elif roll < 0.75:
            self._bot_signal(rng, client, account, rng.choice(symbols))
        elif roll < 0.85:
            # A manual trade the bot knows nothing about: an unmatched position.
            symbol = rng.choice(symbols)
            client.symbol_select(symbol, True)
            client.sim_open_manual(
                symbol,
                rng.choice(["buy", "sell"]),
                float(self._volume(client.symbol_info(symbol), rng)),
                comment="manual",
            )

    def _bot_signal(
        self, rng: random.Random, client: BridgeClient, account: TradingAccount, symbol: str
    ) -> None:
        client.symbol_select(symbol, True)  # as with the real terminal, ticks need the symbol in Market Watch
        if account.login in DEMO_NETTING_LOGINS:
            self._bot_forgets_closed_setups(client, account, symbol)
        info, tick = client.symbol_info(symbol), client.symbol_info_tick(symbol)
        side = rng.choice(["buy", "sell"])
        price = Decimal(str(tick.ask if side == "buy" else tick.bid))
        point = Decimal(str(info.point))
        # Stops a little beyond the symbol's minimum distance, so the terminal accepts them.
        distance = point * (
            info.trade_stops_level
            + info.spread
            + 10
            + rng.choice([30, 50, 80]) * (10 if info.digits in (3, 5) else 1)
        )
        sign = 1 if side == "buy" else -1
        tick_size = Decimal(str(info.trade_tick_size))

        def on_tick_grid(value: Decimal) -> Decimal:
            return (value / tick_size).to_integral_value() * tick_size

        sl, tp = on_tick_grid(price - sign * distance), on_tick_grid(price + sign * 2 * distance)
        volume = self._volume(info, rng)
        signal_id = f"demo-{account.login}-{int(time.time() * 1000)}"
        tag = signal_id[-20:]
        registration = bot_trade_register(
            account=account,
            signal_id=signal_id,
            leg=1,
            symbol=symbol,
            side=side,
            volume=volume,
            entry_price=price,
            sl=sl,
            tp=tp,
            magic=BOT_MAGIC,
            tag=tag,
        )
        fate = rng.random()
        if fate < 0.1:
            return  # the order never reached the terminal: a missing position on the next sync
        filled = volume
        if fate < 0.25:
            step = Decimal(str(info.volume_step))
            filled = max((volume / 2 / step).to_integral_value(ROUND_DOWN) * step, step)  # a partial fill
        try:
            ticket = client.sim_open_manual(
                symbol,
                side,
                float(filled),  # the bridge carries plain JSON numbers, as the real module takes floats
                sl=float(sl) if fate > 0.35 else 0.0,  # sometimes the SL got lost on the way
                tp=float(tp),
                magic=BOT_MAGIC,
                comment=tag,
                reason=mt5.ORDER_REASON_EXPERT,
            )
        except Exception:
            bot_trade_close(bot_trade=registration.bot_trade)  # the bot saw its order rejected
            raise
        if fate > 0.5:  # most of the time the bot learns the ticket after the fill
            bot_trade_register(
                account=account,
                signal_id=signal_id,
                leg=1,
                symbol=symbol,
                side=side,
                volume=volume,
                entry_price=price,
                sl=sl,
                tp=tp,
                magic=BOT_MAGIC,
                tag=tag,
                ticket=ticket,
            )

    @staticmethod
    def _bot_forgets_closed_setups(client: BridgeClient, account: TradingAccount, symbol: str) -> None:
        """Netting: once the symbol's position is gone (a trader closed it), the bot closes its trades there before
        a new setup, as a real bot does when it learns; else every new entry would join the closed group."""
        if client.positions_get(symbol=symbol):
            return
        for trade in bot_trade_list_for_account(account=account, status="open").filter(symbol=symbol):
            bot_trade_close(bot_trade=trade)

    @staticmethod
    def _volume(info: Any, rng: random.Random) -> Decimal:
        step = Decimal(str(info.volume_step))
        lots = Decimal(str(info.volume_min)) * rng.choice([1, 2, 5, 10])
        return (lots / step).to_integral_value(ROUND_DOWN) * step
