"""Micro-benchmark of `risk.sizing.size_setup` (no Django): `.venv/bin/python bench/bench_sizing.py`.

Deterministic inputs: 1, 2 and 3 entries approved, plus rejections early (stale) and late (margin), so
both the cheap guard path and the full exact-decimal path are timed. Prints case, runs, seconds, sizings/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from risk.sizing import AccountState, Setup, SizingConfig, SizingResult, SymbolTerms, size_setup

D = Decimal
ACCOUNT = AccountState(
    currency="USD", balance=D(10000), equity=D("9876.54"), margin_free=D(9500), snapshot_age_seconds=12
)
SYMBOL = SymbolTerms(
    name="EURUSD",
    digits=5,
    point=D("0.00001"),
    trade_tick_size=D("0.00001"),
    trade_tick_value=D("1.0"),
    volume_min=D("0.01"),
    volume_max=D(100),
    volume_step=D("0.01"),
    margin_per_lot=D("1085.0"),
)
ENTRIES = (D("1.0850"), D("1.0840"), D("1.0830"))
SL = D("1.0800")
SPLITS = {1: (D(100),), 2: (D(60), D(40)), 3: (D(50), D(35), D(15))}


def _case(*, entries: int, account: AccountState = ACCOUNT) -> Callable[[], SizingResult]:
    config = SizingConfig(entry_splits=SPLITS[entries])
    setup = Setup(side="buy", entries=ENTRIES[:entries], sl=SL)
    return lambda: size_setup(account=account, config=config, symbol=SYMBOL, setup=setup)


CASES: dict[str, tuple[Callable[[], SizingResult], str | None]] = {
    "1 entry, approved": (_case(entries=1), None),
    "2 entries, approved": (_case(entries=2), None),
    "3 entries, approved": (_case(entries=3), None),
    "3 entries, stale_account": (
        _case(entries=3, account=AccountState("USD", D(10000), D(10000), D(9500), 301)),
        "stale_account",
    ),
    "3 entries, insufficient_margin": (
        _case(entries=3, account=AccountState("USD", D(10000), D(10000), D(100), 12)),
        "insufficient_margin",
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="sizings per case (default 20000)")
    runs: int = parser.parse_args().runs
    print(f"{'case':<32} {'runs':>8} {'seconds':>9} {'sizings/second':>15}")
    for name, (call, reason) in CASES.items():
        assert call().reason == reason, name  # time what we claim to time
        for _ in range(200):  # warm-up
            call()
        start = time.perf_counter()
        for _ in range(runs):
            call()
        elapsed = time.perf_counter() - start
        print(f"{name:<32} {runs:>8} {elapsed:>9.3f} {runs / elapsed:>15,.0f}")


if __name__ == "__main__":
    main()
