"""Benchmark of the pure reconciliation matcher: `.venv/bin/python bench/bench_matcher.py`.

The live sync reconciles ~1000 accounts x ~20 positions every 10 s; this measures how much of that budget
the matcher itself takes. Inputs are synthetic and deterministic (fixed seed). No Django is imported.
"""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Imported after the path fix so the script runs from any directory.
from reconciliation.matching import (
    BotTrade,
    Deal,
    LivePosition,
    MarginMode,
    Side,
    SymbolSpec,
    SymbolTable,
    reconcile,
)

SYMBOLS = SymbolTable(
    {
        "EURUSD.m": SymbolSpec(name="EURUSD.m", digits=5, point=Decimal("0.00001"), canonical="EURUSD"),
        "GBPUSD.m": SymbolSpec(name="GBPUSD.m", digits=5, point=Decimal("0.00001"), canonical="GBPUSD"),
        "USDJPY.m": SymbolSpec(name="USDJPY.m", digits=3, point=Decimal("0.001"), canonical="USDJPY"),
        "XAUUSD.m": SymbolSpec(
            name="XAUUSD.m", digits=2, point=Decimal("0.01"), canonical="XAUUSD", pip=Decimal("0.1")
        ),
    }
)
BASE_PRICE = {
    "EURUSD": Decimal("1.08000"),
    "GBPUSD": Decimal("1.27000"),
    "USDJPY": Decimal("150.000"),
    "XAUUSD": Decimal("2400.00"),
}
POINT = {
    "EURUSD": Decimal("0.00001"),
    "GBPUSD": Decimal("0.00001"),
    "USDJPY": Decimal("0.001"),
    "XAUUSD": Decimal("0.01"),
}
T0 = 1_763_900_000


@dataclass(frozen=True, slots=True)
class Account:
    bot_trades: tuple[BotTrade, ...]
    positions: tuple[LivePosition, ...]
    deals: tuple[Deal, ...]
    margin_mode: MarginMode = "hedging"


def _pair(
    rng: random.Random, *, ticket: int, index: int, method: str, spread_points: int
) -> tuple[BotTrade, LivePosition]:
    canonical = rng.choice(list(BASE_PRICE))
    point = POINT[canonical]
    side: Side = rng.choice(("buy", "sell"))
    volume = Decimal(rng.randint(1, 100)) / 100
    entry = BASE_PRICE[canonical] + point * rng.randint(-50_000, 50_000)
    price = entry + point * rng.randint(-spread_points, spread_points)
    sl = entry - point * 300 if side == "buy" else entry + point * 300
    trade = BotTrade(
        id=f"bt-{ticket}",
        symbol=canonical,
        side=side,
        volume=volume,
        entry_price=entry,
        sl=sl,
        tp=None,
        ticket=ticket if method == "ticket" else None,
        magic=7001,
        tag=f"sig-{ticket}" if method == "tag" else None,
    )
    position = LivePosition(
        ticket=ticket,
        time=T0 + index,
        type=0 if side == "buy" else 1,
        magic=7001,
        volume=volume,
        price_open=price,
        sl=sl if rng.random() < 0.9 else None,
        tp=None,
        symbol=f"{canonical}.m",
        comment=f"sig-{ticket}" if method == "tag" else "",
    )
    return trade, position


def build_account(seed: int, *, size: int = 20) -> Account:
    """About 40 % ticket, 20 % tag, 25 % fuzzy matches, 15 % unmatched positions and missing bot trades."""
    rng = random.Random(seed)
    trades: list[BotTrade] = []
    positions: list[LivePosition] = []
    deals: list[Deal] = []
    plan = ["ticket"] * (size * 40 // 100) + ["tag"] * (size * 20 // 100) + ["fuzzy"] * (size * 25 // 100)
    plan += ["unmatched"] * ((size - len(plan)) // 2)
    plan += ["missing"] * (size - len(plan))
    rng.shuffle(plan)
    for index, method in enumerate(plan):
        ticket = seed * 10_000 + index + 1
        trade, position = _pair(rng, ticket=ticket, index=index, method=method, spread_points=15)
        if method != "missing":
            positions.append(position)
        if method == "unmatched":
            continue
        if method == "missing":
            trade = replace(trade, ticket=ticket)
            deals.append(
                Deal(
                    ticket=ticket * 10,
                    order=ticket,
                    time=T0 + 900 + index,
                    type=1,
                    entry=1,
                    magic=7001,
                    position_id=ticket,
                    reason=rng.choice((0, 3, 4, 5, 6)),
                    volume=trade.volume,
                    price=trade.entry_price,
                    symbol=f"{trade.symbol}.m",
                    comment="",
                )
            )
        trades.append(trade)
    rng.shuffle(positions)
    return Account(bot_trades=tuple(trades), positions=tuple(positions), deals=tuple(deals))


def build_dense_fuzzy(*, size: int) -> Account:
    """Worst case for the tolerance pass: one symbol and side, every pair within the entry limit."""
    rng = random.Random(4242)
    trades, positions = [], []
    for index in range(size):
        entry = Decimal("1.08000") + Decimal("0.00001") * rng.randint(-10, 10)
        volume = Decimal("1.00") + Decimal("0.01") * rng.randint(-5, 5)
        trades.append(
            BotTrade(id=f"bt-{index}", symbol="EURUSD", side="buy", volume=Decimal("1.00"), entry_price=entry)
        )
        positions.append(
            LivePosition(
                ticket=500_000 + index,
                time=T0 + rng.randint(0, 100),
                type=0,
                magic=0,
                volume=volume,
                price_open=Decimal("1.08000") + Decimal("0.00001") * rng.randint(-10, 10),
                sl=None,
                tp=None,
                symbol="EURUSD.m",
                comment="",
            )
        )
    return Account(bot_trades=tuple(trades), positions=tuple(positions), deals=())


def build_netting_account(seed: int, *, entries: int = 5) -> Account:
    """A netting account: on each of the 4 symbols a setup of `entries` bot trades on one side, netted into the
    symbol's one position (a third of them partly closed: a volume divergence); 20 bot trades, 4 positions."""
    rng = random.Random(seed)
    trades: list[BotTrade] = []
    positions: list[LivePosition] = []
    for index, canonical in enumerate(BASE_PRICE):
        side: Side = rng.choice(("buy", "sell"))
        base = BASE_PRICE[canonical] + POINT[canonical] * rng.randint(-50_000, 50_000)
        group = [
            BotTrade(
                id=f"bt-{seed}-{index}-{leg}",
                symbol=canonical,
                side=side,
                volume=Decimal(rng.randint(1, 50)) / 100,
                entry_price=base + POINT[canonical] * rng.randint(-30, 30),
                sl=base - POINT[canonical] * 300 if side == "buy" else base + POINT[canonical] * 300,
                ticket=seed * 10_000 + index if leg == 0 else None,
            )
            for leg in range(entries)
        ]
        net = sum((t.volume for t in group), Decimal(0))
        trades.extend(group)
        positions.append(
            LivePosition(
                ticket=seed * 10_000 + index,
                time=T0 + index,
                type=0 if side == "buy" else 1,
                magic=0,
                volume=net if rng.random() > 0.33 else net / 2,
                price_open=base,
                sl=group[0].sl,
                tp=None,
                symbol=f"{canonical}.m",
                comment="",
            )
        )
    rng.shuffle(trades)
    return Account(bot_trades=tuple(trades), positions=tuple(positions), deals=(), margin_mode="netting")


def measure(name: str, accounts: list[Account], *, runs: int) -> tuple[str, int, int, float, float, float]:
    matched = 0
    start = time.perf_counter()
    for _ in range(runs):
        for account in accounts:
            result = reconcile(
                symbols=SYMBOLS,
                bot_trades=account.bot_trades,
                positions=account.positions,
                deals=account.deals,
                margin_mode=account.margin_mode,
            )
            matched += len(result.matches) + len(result.net_matches)
    seconds = time.perf_counter() - start
    reconciles = runs * len(accounts)
    positions = sum(len(account.positions) for account in accounts) // len(accounts)
    return name, positions, reconciles, seconds, matched / seconds, reconciles / seconds


def main() -> None:
    cases = [
        ("account-20 (repeated)", [build_account(1)], 5000),
        ("sync 1000 accounts x 20", [build_account(seed) for seed in range(1, 1001)], 3),
        ("account-200 mixed", [build_account(7, size=200)], 200),
        ("dense fuzzy 200x200", [build_dense_fuzzy(size=200)], 10),
        ("netting 20 trades/4 pos", [build_netting_account(1)], 5000),
        ("sync 1000 netting accounts", [build_netting_account(seed) for seed in range(1, 1001)], 3),
    ]
    rows = [measure(name, accounts, runs=runs) for name, accounts, runs in cases]
    header = (
        f"{'case':<26} {'positions':>9} {'runs':>7} {'seconds':>9} {'matched pos/s':>14} {'reconciles/s':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, positions, runs, seconds, matched_per_s, per_s in rows:
        print(f"{name:<26} {positions:>9} {runs:>7} {seconds:>9.3f} {matched_per_s:>14,.0f} {per_s:>13,.1f}")
    print(f"\npython {sys.version.split()[0]}; django imported: {'django' in sys.modules}")


if __name__ == "__main__":
    main()
