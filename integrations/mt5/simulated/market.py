"""Prices: a deterministic, seeded random walk per symbol on a fixed time grid, settable by script, with M1 bars.

Everything here is in *points* (ints) and *server-clock* epoch milliseconds. Each symbol has its own
`random.Random` seeded from (seed, symbol), and ticks fall on a fixed absolute grid (`tick_interval_ms`), so the
price path depends only on the seed, the start time and scripted `set_price` calls, never on how often anyone looks.

Feed modes per symbol: "walk" (random walk, spread floats around the typical spread), "flat" (the price is held; a
quote is still sent every grid step so the feed looks alive), "frozen" (no ticks at all: a stale feed). Setting a
price by script switches the symbol to "flat" unless told to keep walking. No ticks arrive while a symbol's session
is closed.
"""

import math
import random
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from integrations.mt5 import constants as c
from integrations.mt5.simulated.catalogue import SymbolSpec

FEED_MODES = ("walk", "flat", "frozen")
MINUTE_MS = 60_000
_BID_ASK = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
DAY_MS = 86_400_000


class Quote(NamedTuple):
    time_msc: int  # server clock
    bid: int  # points
    ask: int
    flags: int


class Feed:
    """One symbol's price path and M1 bar history."""

    def __init__(
        self,
        spec: SymbolSpec,
        *,
        seed: int | str,
        start_ms: int,
        interval_ms: int,
        history_bars: int,
        maxbars: int,
    ) -> None:
        self.spec = spec
        self.interval_ms = interval_ms
        self.mode = "walk"
        self.open_override: bool | None = None
        self._session_cache: tuple[int, bool] = (-1, True)
        self._rng = random.Random(f"{seed}:{spec.name}:walk")
        step_days = interval_ms / DAY_MS
        self._sigma = max(spec.to_points(spec.start_bid) * spec.daily_volatility * math.sqrt(step_days), 0.0)
        bid = spec.to_points(spec.start_bid)
        self.quote = Quote(start_ms, bid, bid + self._snap(spec.spread), c.TICK_FLAG_BID | c.TICK_FLAG_ASK)
        self.next_ms = (start_ms // interval_ms + 1) * interval_ms
        # M1 bars, oldest first: [time_s, open, high, low, close, tick_volume, spread, real_volume]
        self.bars: deque[list[int]] = deque(maxlen=maxbars)
        self._history(seed, start_ms, history_bars)
        self._record(self.quote)
        self._prices_of: Quote | None = None
        self._prices = (Decimal(0), Decimal(0))

    def prices(self) -> tuple[Decimal, Decimal]:
        """(bid, ask) of the latest quote as Decimal (memoised per quote)."""
        if self._prices_of is not self.quote:
            self._prices_of = self.quote
            self._prices = (self.spec.from_points(self.quote.bid), self.spec.from_points(self.quote.ask))
        return self._prices

    # --- sessions ------------------------------------------------------------------------------------------------
    def is_open(self, at_ms: int) -> bool:
        if self.open_override is not None:
            return self.open_override
        sessions = self.spec.sessions
        if sessions is None:
            return True
        minute_index = at_ms // MINUTE_MS
        if self._session_cache[0] != minute_index:
            moment = datetime.fromtimestamp(at_ms / 1000, tz=UTC)  # server wall clock, read as naive-in-UTC
            minute = moment.hour * 60 + moment.minute
            is_open = any(day == moment.weekday() and start <= minute < end for day, start, end in sessions)
            self._session_cache = (minute_index, is_open)
        return self._session_cache[1]

    # --- the walk ------------------------------------------------------------------------------------------------
    @property
    def spec(self) -> SymbolSpec:
        return self._spec

    @spec.setter
    def spec(self, spec: SymbolSpec) -> None:
        self._spec = spec
        self._tick = spec.tick_points
        self._spread_sd = max(spec.spread * 0.15, 0.5)
        self._spread_range = (math.ceil(spec.spread * 0.6), spec.spread * 2)

    def _snap(self, points: int) -> int:
        tick = self._tick
        return max(tick, round(points / tick) * tick)

    def step(self, at_ms: int) -> Quote | None:
        """Process the grid point `at_ms` (must be `next_ms`). Returns the new quote, or None when no tick came."""
        self.next_ms = at_ms + self.interval_ms
        mode = self.mode
        if mode == "frozen":
            return None
        if (self.open_override is not None or self._spec.sessions is not None) and not self.is_open(at_ms):
            return None
        previous = self.quote
        if mode == "walk":
            tick, gauss = self._tick, self._rng.gauss
            bid = max(tick, previous.bid + round(gauss(0.0, self._sigma) / tick) * tick)
            low, high = self._spread_range
            spread = min(max(self._spec.spread + round(gauss(0.0, self._spread_sd)), low), high)
            spread = max(tick, round(spread / tick) * tick)
        else:
            bid, spread = previous.bid, previous.ask - previous.bid
        ask = bid + spread
        flags = (c.TICK_FLAG_BID if bid != previous.bid else 0) | (
            c.TICK_FLAG_ASK if ask != previous.ask else 0
        )
        self.quote = Quote(at_ms, bid, ask, flags or _BID_ASK)
        self._record(self.quote)
        return self.quote

    def _snap_signed(self, delta: float) -> int:
        tick = self._tick
        return round(delta / tick) * tick

    def set_price(self, at_ms: int, bid: int, ask: int, *, mode: str) -> Quote:
        """Quote `bid`/`ask` at `at_ms`. The walk is caught up to `at_ms` first (in the old mode): left behind, its
        grid ticks would later be recorded after this quote and reopen, out of order, the bars before it."""
        while self.next_ms <= at_ms:
            self.step(self.next_ms)
        self.mode = mode
        self.quote = Quote(max(at_ms, self.quote.time_msc), bid, ask, c.TICK_FLAG_BID | c.TICK_FLAG_ASK)
        self._record(self.quote)
        return self.quote

    # --- bars ------------------------------------------------------------------------------------------------------
    def _record(self, quote: Quote) -> None:
        minute = quote.time_msc // MINUTE_MS * 60
        spread = quote.ask - quote.bid
        if self.bars and self.bars[-1][0] == minute:
            bar = self.bars[-1]
            bar[2] = max(bar[2], quote.bid)
            bar[3] = min(bar[3], quote.bid)
            bar[4] = quote.bid
            bar[5] += 1
            bar[6] = min(bar[6], spread)
        else:
            self.bars.append([minute, quote.bid, quote.bid, quote.bid, quote.bid, 1, spread, 0])

    def _history(self, seed: int | str, start_ms: int, count: int) -> None:
        """Generate `count` closed M1 bars before the start, walking backwards from the start price."""
        rng = random.Random(f"{seed}:{self.spec.name}:history")
        sigma = self._sigma * math.sqrt(MINUTE_MS / self.interval_ms)
        close = self.quote.bid
        minute_ms = start_ms // MINUTE_MS * MINUTE_MS
        bars: list[list[int]] = []
        while len(bars) < count and minute_ms > MINUTE_MS:
            minute_ms -= MINUTE_MS
            if not self.is_open(minute_ms):
                continue
            open_ = max(self.spec.tick_points, close - self._snap_signed(rng.gauss(0.0, sigma)))
            high = max(open_, close) + self._snap_signed(abs(rng.gauss(0.0, sigma / 2)))
            low = max(
                self.spec.tick_points, min(open_, close) - self._snap_signed(abs(rng.gauss(0.0, sigma / 2)))
            )
            bars.append(
                [minute_ms // 1000, open_, high, low, close, rng.randint(20, 120), self.spec.spread, 0]
            )
            close = open_
        self.bars.extend(reversed(bars))

    def day_range(self, now_ms: int) -> tuple[int, int]:
        """(low, high) of the bid over the current server day."""
        day_start = now_ms // DAY_MS * DAY_MS // 1000
        low = high = self.quote.bid
        for bar in reversed(self.bars):
            if bar[0] < day_start:
                break
            low, high = min(low, bar[3]), max(high, bar[2])
        return low, high


class Market:
    """All symbols of one simulated terminal. Not thread-safe by itself (the terminal's lock guards it)."""

    def __init__(
        self,
        specs: Iterable[SymbolSpec],
        *,
        seed: int | str,
        start_ms: int,
        tick_interval_ms: int = 1000,
        history_bars: int = 1440,
        maxbars: int = 100_000,
    ) -> None:
        self.seed = seed
        self.tick_interval_ms = tick_interval_ms
        self._history_bars = history_bars
        self._maxbars = maxbars
        self._start_ms = start_ms
        self.feeds: dict[str, Feed] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: SymbolSpec, *, start_ms: int | None = None) -> Feed:
        feed = Feed(
            spec,
            seed=self.seed,
            start_ms=self._start_ms if start_ms is None else start_ms,
            interval_ms=self.tick_interval_ms,
            history_bars=self._history_bars,
            maxbars=self._maxbars,
        )
        self.feeds[spec.name] = feed
        return feed

    def __contains__(self, name: object) -> bool:
        return name in self.feeds

    def feed(self, name: str) -> Feed:
        return self.feeds[name]

    def spec(self, name: str) -> SymbolSpec:
        return self.feeds[name].spec

    def advance(
        self,
        names: Iterable[str],
        until_ms: int,
        on_tick: Callable[[int, list[str]], None] | None = None,
    ) -> None:
        """Move the named feeds to `until_ms` together, grid point by grid point; after each grid point where a
        feed ticked, call `on_tick(time_ms, changed_names)` (the engine checks SL/TP/stop-out there)."""
        feeds = [self.feeds[name] for name in dict.fromkeys(names)]
        if on_tick is None:  # independent feeds: no need to interleave them
            for feed in feeds:
                while feed.next_ms <= until_ms:
                    feed.step(feed.next_ms)
            return
        while True:
            due = [feed for feed in feeds if feed.next_ms <= until_ms]
            if not due:
                return
            at_ms = min(feed.next_ms for feed in due)
            changed = [
                feed.spec.name for feed in due if feed.next_ms == at_ms and feed.step(at_ms) is not None
            ]
            if changed and on_tick is not None:
                on_tick(at_ms, changed)
