"""Market guard: per symbol an account holds, gaps on closed bars, spread against its recent median and an absolute
cap, and stale quotes (shared/spec/guards.md "Market guard").

Two halves: `market_reading_take` reads what the guard needs of each symbol held (spec, tick, closed bars) as part
of the sync's one terminal reading, before any lock; `market_guard_evaluate` judges that reading inside
account_guards_evaluate, with no terminal call. It and keeps its memory (spread readings, level per symbol) in GuardState.market,
so it adds no query. Decisions where the spec is silent (docs/GUARDS.md):
* gap over the limit → critical; spread over its absolute cap → critical; spread over multiplier * median → warning;
  stale quote → warning. A symbol's level is the highest of its current findings; an alert is written when it changes.
* The gap is checked on the newest closed bar against the bar before it (`bars(start_pos=1, count=2)`), so a gap
  stays a finding while that bar is the newest closed one.
* The median needs `market_spread_min_samples` readings inside the window; the reading being judged is not part of it.
  The readings are kept as a bounded summary, not one by one (`SpreadHistogram`): the window in SPREAD_SLOTS time
  slots (5 min each for the hour), each a histogram of spreads in points, exact below 64 points and in bins 1/32 of
  a doubling wide (about 2 %) above. Only slots wholly inside the window count, so the median covers the last 55 to
  60 minutes; the state's size does not grow with time or with the sync rate (at most SPREAD_SLOTS x the distinct
  bins seen; a few dozen numbers for a forex symbol), where the list it replaces grew to 720 [time, points] pairs.
* A session is open Monday to Friday on the broker's server clock (the gateway exposes no session table) and the
  symbol's trade mode is not "disabled".
* On critical the positions on the symbol are marked (audited) and, when the owner set the action to "close",
  closed through auto-close once per critical episode.
* Quotes are the broker server's, not the account's: the symbol spec and the closed bars are cached per process
  and per (server, symbol), so every account on a server shares them (`_MarketCache`). The tick (live quote and
  staleness) is read per account on every evaluation.
"""

import logging
import math
import threading
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from accounts.models import TradingAccount
from guards.clock import clock_generation
from guards.models import LEVEL_RANK, AlertKind, CloseTrigger, Guard, Level, MarketGuardAction
from guards.selectors import guard_market_needs
from integrations.mt5.errors import GatewayError
from integrations.mt5.gateway import Mt5Gateway
from integrations.mt5.reading import SymbolMarket
from integrations.mt5.types import Bar, SymbolSpec, Tick

if TYPE_CHECKING:
    from guards.services.evaluate import _Context

logger = logging.getLogger(__name__)

SPREAD_SLOTS = 12  # the spread window in this many slots: 5 minutes each for the default hour
_EXACT_BELOW = 64  # spreads under this many points are counted exactly
_BINS_PER_DOUBLING = 32  # above: bins 2 ** (1/32) wide (~2.2 %), so a 3x test is off by at most ~1 %
SYMBOL_TRADE_MODE_DISABLED = 0
HUNDRED = Decimal(100)
PLACES = Decimal("0.0001")


# MT5's TIMEFRAME_M1 ... TIMEFRAME_M30 are their length in minutes; longer timeframes are not cached.
_MINUTE_TIMEFRAMES = frozenset({1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30})


class _MarketCache:
    """Per-process memory of what every account on a broker server shares, keyed (server, symbol).

    * The symbol spec (point, trade mode) is kept until the next minute boundary of the guards' clock, so a
      changed trade mode is seen within a minute.
    * The newest closed bar and the one before (`bars(start_pos=1, count=2)`) cannot change until the next bar
      opens: an answer whose newest bar is at T is kept while T + 1 period <= now < T + 2 periods. An answer that
      lags (no quote yet in the current bar, so its newest closed bar is older) is not kept, so the gap between the
      last two bars is still judged as soon as the terminal has it.
    Times are the guards' clock (virtual in a scenario replay): a clock override empties the cache.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._specs: dict[tuple[str, str], tuple[int, SymbolSpec]] = {}
        self._bars: dict[tuple[str, str, int], tuple[float, float, tuple[Bar, ...]]] = {}

    def _current(self) -> None:
        generation = clock_generation()
        if generation != self._generation:
            self._specs.clear()
            self._bars.clear()
            self._generation = generation

    def clear(self) -> None:
        with self._lock:
            self._specs.clear()
            self._bars.clear()

    def spec(self, *, server: str, symbol: str, now: datetime, gateway: Mt5Gateway) -> SymbolSpec:
        minute = int(now.timestamp()) // 60
        with self._lock:
            self._current()
            cached = self._specs.get((server, symbol))
        if cached is not None and cached[0] == minute:
            return cached[1]
        spec = gateway.symbol(symbol)
        if server:
            with self._lock:
                self._specs[(server, symbol)] = (minute, spec)
        return spec

    def closed_bars(
        self, *, server: str, symbol: str, timeframe: int, now: datetime, gateway: Mt5Gateway
    ) -> Sequence[Bar]:
        moment = now.timestamp()
        key = (server, symbol, timeframe)
        with self._lock:
            self._current()
            cached = self._bars.get(key)
        if cached is not None and cached[0] <= moment < cached[1]:
            return cached[2]
        bars = gateway.bars(symbol=symbol, timeframe=timeframe, count=2, start_pos=1)
        if server and timeframe in _MINUTE_TIMEFRAMES and len(bars) >= 2:
            period = timeframe * 60
            newest = bars[-1].time.timestamp()
            if newest + period <= moment < newest + 2 * period:
                with self._lock:
                    self._bars[key] = (newest + period, newest + 2 * period, tuple(bars))
        return bars


_cache = _MarketCache()


def market_cache_clear() -> None:
    """Forget the shared specs and bars (tests that script different markets on one server name)."""
    _cache.clear()


def session_open(*, server_weekday: int, trade_mode: int) -> bool:
    return server_weekday < 5 and trade_mode != SYMBOL_TRADE_MODE_DISABLED


def spread_points(*, bid: Decimal, ask: Decimal, point: Decimal) -> int:
    return int(((ask - bid) / point).to_integral_value())


def gap_percent(*, previous_close: Decimal, open_: Decimal) -> Decimal | None:
    if previous_close <= 0:
        return None
    return (abs(open_ - previous_close) / previous_close * HUNDRED).quantize(PLACES)


def spread_bin(points: int) -> int:
    """The histogram bin of a spread in points: the spread itself below 64, a log-spaced bin above."""
    if points < _EXACT_BELOW:
        return max(points, 0)
    return _EXACT_BELOW + int(_BINS_PER_DOUBLING * math.log2(points / _EXACT_BELOW))


def spread_bin_value(index: int) -> Decimal:
    """The spread a bin stands for: exact below 64 points, the bin's geometric middle (0.1 point) above."""
    if index < _EXACT_BELOW:
        return Decimal(index)
    step = index - _EXACT_BELOW
    middle = _EXACT_BELOW * 2 ** ((step + 0.5) / _BINS_PER_DOUBLING)
    return Decimal(str(round(middle, 1)))


class SpreadHistogram:
    """The spread readings of one symbol over the window: SPREAD_SLOTS slots of window/SPREAD_SLOTS seconds, each a
    histogram {bin: count}. Stored in GuardState.market[symbol]["spread"] as
    {"slot_seconds": 300, "slots": [[slot index, [[bin, count], ...]], ...]}."""

    def __init__(self, *, slot_seconds: int, slots: dict[int, dict[int, int]] | None = None) -> None:
        self.slot_seconds = slot_seconds
        self.slots = slots or {}

    @classmethod
    def load(cls, memory: dict[str, Any], *, window_seconds: int) -> "SpreadHistogram":
        """From a symbol's memory; a memory of another slot length (the window was changed) starts afresh, and the
        list of [epoch, points] readings that earlier versions kept is folded in."""
        slot_seconds = max(window_seconds // SPREAD_SLOTS, 1)
        stored = memory.get("spread") or {}
        histogram = cls(slot_seconds=slot_seconds)
        if stored.get("slot_seconds") == slot_seconds:
            histogram.slots = {
                int(index): {int(b): int(count) for b, count in bins}
                for index, bins in stored.get("slots", [])
            }
        for epoch, points in memory.get("spreads") or ():
            histogram.add(epoch=int(epoch), points=int(points))
        return histogram

    def dump(self) -> dict[str, Any]:
        return {
            "slot_seconds": self.slot_seconds,
            "slots": [[index, sorted(bins.items())] for index, bins in sorted(self.slots.items())],
        }

    def add(self, *, epoch: int, points: int) -> None:
        bins = self.slots.setdefault(epoch // self.slot_seconds, {})
        key = spread_bin(points)
        bins[key] = bins.get(key, 0) + 1

    def forget_before(self, *, epoch: int) -> None:
        """Drop the slots that start before `epoch` (the window's start): only whole slots inside it count."""
        first = -(-epoch // self.slot_seconds)  # the first slot starting at or after `epoch`
        for index in [i for i in self.slots if i < first]:
            del self.slots[index]

    def count(self) -> int:
        return sum(sum(bins.values()) for bins in self.slots.values())

    def median(self) -> Decimal | None:
        """The median of the readings kept (the mean of the two middle ones for an even count), None when empty."""
        merged: dict[int, int] = {}
        for bins in self.slots.values():
            for key, count in bins.items():
                merged[key] = merged.get(key, 0) + count
        total = sum(merged.values())
        if not total:
            return None
        lower, upper = (total - 1) // 2, total // 2  # 0-based ranks of the middle reading(s)
        seen, values = 0, []
        for key in sorted(merged):
            count = merged[key]
            for rank in (lower, upper):
                if seen <= rank < seen + count:
                    values.append(spread_bin_value(key))
            seen += count
            if len(values) == 2:
                break
        return (values[0] + values[1]) / 2


def spread_memory_from_readings(readings: Sequence[tuple[int, int]], *, window_seconds: int = 3600) -> dict:
    """The spread memory (`{"spread": ...}`) that these (epoch, points) readings leave (benchmarks, tests)."""
    histogram = SpreadHistogram(slot_seconds=max(window_seconds // SPREAD_SLOTS, 1))
    for epoch, points in readings:
        histogram.add(epoch=epoch, points=points)
    return {"spread": histogram.dump()}


def market_reading_take(
    *, account: TradingAccount, gateway: Mt5Gateway, positions: Sequence[Any], now: datetime
) -> dict[str, SymbolMarket]:
    """What the market guard needs of each symbol held, read before any lock. A symbol the terminal cannot
    describe is an entry with `error` (that symbol is not judged; nothing else is held back). Nothing is read
    when the market guard is off."""
    symbols = sorted({str(position.symbol) for position in positions})
    if not symbols:
        return {}
    needs = guard_market_needs(account=account)
    if not needs.enabled:
        return {}
    market: dict[str, SymbolMarket] = {}
    for symbol in symbols:
        try:
            spec = _cache.spec(server=account.server, symbol=symbol, now=now, gateway=gateway)
            tick = gateway.tick(symbol)
            bars = _cache.closed_bars(
                server=account.server, symbol=symbol, timeframe=needs.timeframe, now=now, gateway=gateway
            )
        except GatewayError as exc:
            logger.warning("market guard: %s on account %s not readable: %s", symbol, account.pk, exc)
            market[symbol] = SymbolMarket(symbol=symbol, error=f"{type(exc).__name__}: {exc}"[:300])
            continue
        market[symbol] = SymbolMarket(symbol=symbol, spec=spec, tick=tick, bars=tuple(bars))
    return market


def _findings(
    ctx: "_Context", *, symbol: str, memory: dict[str, Any], spec: SymbolSpec, tick: Tick, bars: Sequence[Bar]
) -> list[dict[str, Any]]:
    cfg = ctx.cfg
    findings: list[dict[str, Any]] = []
    now_epoch = int(ctx.now.timestamp())
    age = Decimal(str(round((ctx.now - tick.time).total_seconds(), 3)))
    server_now = ctx.now.astimezone(tick.server_time.tzinfo)
    if session_open(server_weekday=server_now.weekday(), trade_mode=spec.trade_mode) and (
        age > cfg.market_stale_quote_seconds
    ):
        findings.append(
            {"level": Level.WARNING, "reason": "stale_quote", "value": age, "unit": "seconds",
             "detail": {"tick_time": tick.time.isoformat(), "limit_seconds": cfg.market_stale_quote_seconds}}
        )  # fmt: skip
    elif age <= cfg.market_stale_quote_seconds:
        points = spread_points(bid=tick.bid, ask=tick.ask, point=spec.point)
        spreads = SpreadHistogram.load(memory, window_seconds=cfg.market_spread_window_seconds)
        spreads.forget_before(epoch=now_epoch - cfg.market_spread_window_seconds)
        median = spreads.median() if spreads.count() >= cfg.market_spread_min_samples else None
        if median is not None and median > 0 and points > cfg.market_spread_multiplier * median:
            findings.append(
                {"level": Level.WARNING, "reason": "spread", "value": (points / median * HUNDRED).quantize(PLACES),
                 "unit": "percent_of_median", "detail": {"spread_points": points, "median_points": str(median)}}
            )  # fmt: skip
        cap = cfg.market_spread_cap_points.get(symbol)
        if cap and points > cap:
            findings.append(
                {"level": Level.CRITICAL, "reason": "spread_cap", "value": Decimal(points * 100) / cap,
                 "unit": "percent_of_cap", "detail": {"spread_points": points, "cap_points": cap}}
            )  # fmt: skip
        spreads.add(epoch=now_epoch, points=points)
        memory["spread"] = spreads.dump()
        memory.pop("spreads", None)  # the unbounded list of earlier versions, folded in above
    if len(bars) >= 2:
        before, newest = bars[-2], bars[-1]
        gap = gap_percent(previous_close=before.close, open_=newest.open)
        if gap is not None and gap > cfg.market_gap_percent:
            findings.append(
                {"level": Level.CRITICAL, "reason": "gap", "value": gap, "unit": "percent",
                 "detail": {"bar_time": newest.time.isoformat(), "open": str(newest.open),
                            "previous_close": str(before.close), "limit_percent": str(cfg.market_gap_percent)}}
            )  # fmt: skip
    return findings


def market_guard_evaluate(
    *, ctx: "_Context", positions: Sequence[Any], market: Mapping[str, SymbolMarket]
) -> None:
    held: dict[str, list[int]] = defaultdict(list)
    for position in positions:
        held[str(position.symbol)].append(int(position.ticket))
    memory_all: dict[str, Any] = {k: v for k, v in (ctx.state.market or {}).items() if k in held}
    for symbol, tickets in sorted(held.items()):
        memory = dict(memory_all.get(symbol) or {"level": Level.NORMAL})
        read = market.get(symbol)
        if read is None or read.spec is None or read.tick is None:  # not readable this time: judged later
            memory_all[symbol] = memory
            continue
        findings = _findings(
            ctx, symbol=symbol, memory=memory, spec=read.spec, tick=read.tick, bars=read.bars
        )
        worst = max(findings, key=lambda f: LEVEL_RANK[f["level"]], default=None)
        level = worst["level"] if worst else Level.NORMAL
        previous = memory.get("level", Level.NORMAL)
        if level != previous:
            ctx.alert(
                kind=AlertKind.GUARD_LEVEL,
                guard=Guard.MARKET,
                level=level,
                value=worst["value"] if worst else None,
                symbol=symbol,
                message=f"Market {symbol}: "
                + (f"{worst['reason']} {worst['value']} → {level}" if worst else "normal"),
                detail={
                    "from": previous,
                    "to": level,
                    "reason": worst["reason"] if worst else "",
                    "unit": worst["unit"] if worst else "",
                    "findings": [
                        {"reason": f["reason"], "level": f["level"], "value": str(f["value"]), **f["detail"]}
                        for f in findings
                    ],
                },
            )
        memory["level"] = level
        if level == Level.CRITICAL:
            if previous != Level.CRITICAL:
                memory["episode"] = uuid.uuid4().hex
                memory["marked"] = []
            _mark(ctx, symbol=symbol, tickets=tickets, memory=memory, reason=worst["reason"] if worst else "")
        else:
            memory.pop("episode", None)
            memory.pop("marked", None)
        memory_all[symbol] = memory
    ctx.state.market = memory_all


def _mark(ctx: "_Context", *, symbol: str, tickets: list[int], memory: dict[str, Any], reason: str) -> None:
    new = sorted(t for t in tickets if t not in memory.get("marked", []))
    if not new:
        return
    memory["marked"] = sorted({*memory.get("marked", []), *new})
    closing = ctx.cfg.market_guard_action == MarketGuardAction.CLOSE
    ctx.alert(
        kind=AlertKind.MARKET_MARKED,
        guard=Guard.MARKET,
        level=Level.CRITICAL,
        symbol=symbol,
        message=f"Market {symbol} critical ({reason}): positions {', '.join(f'#{t}' for t in new)} marked for close"
        + ("; closing" if closing else "; alert only (action is 'alert')"),
        detail={"tickets": new, "closing": closing, "episode": memory["episode"]},
    )
    if closing:
        ctx.actions.append(
            (
                "closes",
                {
                    "account_id": ctx.account_id,
                    "trigger": CloseTrigger.MARKET,
                    "trigger_key": f"market:{symbol}:{memory['episode']}",
                    "tickets": new,
                },
            )
        )
