"""The next reset a page counts down to: the first day boundary strictly after now, in the rule set's zone, also
across daylight-saving changes, and the stored `next_reset` rolled forward once its boundary has passed."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from rules.evaluation import next_day_boundary, next_reset_live

NY, FIVE_PM = "America/New_York", time(17, 0)
SECOND = timedelta(seconds=1)


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # 2026-06-15 17:00 New York (EDT, UTC-4) is 21:00 UTC.
        (_utc(2026, 6, 15, 21) - SECOND, _utc(2026, 6, 15, 21)),  # just before: today's reset, 1 s away
        (_utc(2026, 6, 15, 21), _utc(2026, 6, 16, 21)),  # at it: the day has begun, tomorrow's
        (_utc(2026, 6, 15, 21) + SECOND, _utc(2026, 6, 16, 21)),  # just after: tomorrow's, not 0:00
        (_utc(2026, 6, 15, 3), _utc(2026, 6, 15, 21)),  # the local date is still the 14th: the 15th's reset
    ],
)
def test_the_next_boundary_is_strictly_after_now(now: datetime, expected: datetime) -> None:
    assert next_day_boundary(now, timezone=NY, reset_time=FIVE_PM) == expected


def test_across_the_spring_change_the_day_is_23_hours() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT. The 7th's reset is 22:00 UTC (EST), the 8th's 21:00 UTC (EDT).
    after_7th = _utc(2026, 3, 7, 22) + SECOND
    assert next_day_boundary(after_7th, timezone=NY, reset_time=FIVE_PM) == _utc(2026, 3, 8, 21)
    assert next_day_boundary(_utc(2026, 3, 8, 21) - SECOND, timezone=NY, reset_time=FIVE_PM) == _utc(
        2026, 3, 8, 21
    )
    assert next_day_boundary(_utc(2026, 3, 8, 21), timezone=NY, reset_time=FIVE_PM) == _utc(2026, 3, 9, 21)


def test_across_the_autumn_change_the_day_is_25_hours() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST. The 31st's reset is 21:00 UTC, November 1st's 22:00 UTC.
    after_31st = _utc(2026, 10, 31, 21) + SECOND
    assert next_day_boundary(after_31st, timezone=NY, reset_time=FIVE_PM) == _utc(2026, 11, 1, 22)
    assert next_day_boundary(_utc(2026, 11, 1, 22), timezone=NY, reset_time=FIVE_PM) == _utc(2026, 11, 2, 22)


def test_a_reset_inside_the_spring_gap_takes_the_offset_before_the_change() -> None:
    # 02:30 does not exist on 2026-03-08 in New York; fold=0 reads it as EST (UTC-5): 07:30 UTC.
    now = _utc(2026, 3, 7, 7, 30) + SECOND
    assert next_day_boundary(now, timezone=NY, reset_time=time(2, 30)) == _utc(2026, 3, 8, 7, 30)


def test_the_stored_next_reset_is_kept_while_ahead_and_rolled_once_passed() -> None:
    stored = _utc(2026, 3, 2, 23)  # Prague midnight, the first boundary after the last evaluated reading
    prague = {"timezone": "Europe/Prague", "reset_time": time(0, 0)}
    assert next_reset_live(stored, now=stored - SECOND, **prague) == stored
    assert next_reset_live(stored, now=stored, **prague) == _utc(2026, 3, 3, 23)
    # No reading evaluated for days (a quiet account): the reset after now, after Prague's DST change (UTC+2).
    assert next_reset_live(stored, now=_utc(2026, 4, 10, 12), **prague) == _utc(2026, 4, 10, 22)
    assert next_reset_live(None, now=stored, **prague) is None
