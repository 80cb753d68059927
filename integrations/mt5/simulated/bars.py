"""Bars for copy_rates_*: M1 bars of a feed aggregated to any MT5 timeframe, as `Rate` records (oldest first).

Bar times are server-clock epoch seconds; weekly bars start on Sunday and monthly bars on the 1st, as in MT5.
"""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from integrations.mt5 import constants as c
from integrations.mt5.simulated.catalogue import SymbolSpec
from integrations.mt5.structs import Rate

_MINUTES = {
    c.TIMEFRAME_M1: 1,
    c.TIMEFRAME_M2: 2,
    c.TIMEFRAME_M3: 3,
    c.TIMEFRAME_M4: 4,
    c.TIMEFRAME_M5: 5,
    c.TIMEFRAME_M6: 6,
    c.TIMEFRAME_M10: 10,
    c.TIMEFRAME_M12: 12,
    c.TIMEFRAME_M15: 15,
    c.TIMEFRAME_M20: 20,
    c.TIMEFRAME_M30: 30,
    c.TIMEFRAME_H1: 60,
    c.TIMEFRAME_H2: 120,
    c.TIMEFRAME_H3: 180,
    c.TIMEFRAME_H4: 240,
    c.TIMEFRAME_H6: 360,
    c.TIMEFRAME_H8: 480,
    c.TIMEFRAME_H12: 720,
    c.TIMEFRAME_D1: 1440,
}
TIMEFRAMES = frozenset({*_MINUTES, c.TIMEFRAME_W1, c.TIMEFRAME_MN1})


def bucket(timeframe: int, time_s: int) -> int:
    """Open time of the `timeframe` bar containing `time_s`."""
    if timeframe in _MINUTES:
        period = _MINUTES[timeframe] * 60
        return time_s - time_s % period
    days = time_s // 86_400
    if timeframe == c.TIMEFRAME_W1:
        weekday_from_sunday = (days + 4) % 7  # 1970-01-01 was a Thursday
        return (days - weekday_from_sunday) * 86_400
    moment = datetime.fromtimestamp(time_s, tz=UTC)
    return int(datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp())


def _aggregate_newest_first(bars: Iterable[list[int]], timeframe: int) -> Iterator[list[int]]:
    current: list[int] | None = None
    for time_s, open_, high, low, close, ticks, spread, real in bars:  # newest first
        start = bucket(timeframe, time_s)
        if current is not None and current[0] == start:
            current[1] = open_
            current[2], current[3] = max(current[2], high), min(current[3], low)
            current[5] += ticks
            current[6] = min(current[6], spread)
            current[7] += real
            continue
        if current is not None:
            yield current
        current = [start, open_, high, low, close, ticks, spread, real]
    if current is not None:
        yield current


def _rate(spec: SymbolSpec, bar: list[int]) -> Rate:
    time_s, open_, high, low, close, ticks, spread, real = bar
    points = spec.from_points
    return Rate(
        time_s,
        float(points(open_)),
        float(points(high)),
        float(points(low)),
        float(points(close)),
        ticks,
        spread,
        real,
    )


def rates_from_pos(
    spec: SymbolSpec, m1: Iterable[list[int]], timeframe: int, start_pos: int, count: int
) -> tuple[Rate, ...]:
    """Bars `start_pos` .. `start_pos+count-1` counted back from the current (forming) bar 0; oldest first."""
    picked: list[list[int]] = []
    for index, bar in enumerate(_aggregate_newest_first(m1, timeframe)):
        if index >= start_pos + count:
            break
        if index >= start_pos:
            picked.append(bar)
    return tuple(_rate(spec, bar) for bar in reversed(picked))


def rates_range(
    spec: SymbolSpec,
    m1: Iterable[list[int]],
    timeframe: int,
    date_from: int,
    date_to: int | None,
    count: int | None,
) -> tuple[Rate, ...]:
    """Bars opened in [date_from, date_to] (range form) or the `count` bars opened at or before `date_from`."""
    picked: list[list[int]] = []
    for bar in _aggregate_newest_first(m1, timeframe):
        if date_to is not None:
            if bar[0] > date_to:
                continue
            if bar[0] < date_from:
                break
        elif bar[0] > date_from:
            continue
        picked.append(bar)
        if count is not None and len(picked) >= count:
            break
    return tuple(_rate(spec, bar) for bar in reversed(picked))
