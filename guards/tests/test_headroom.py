"""The binding permitted loss: the smaller of the daily-loss guard's and the rule set's, named by its source."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from guards.headroom import broker_day_next_reset, permitted_loss_binding

GUARD_RESET = datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
RULES_RESET = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)


def test_the_guard_binds_when_it_leaves_less_than_the_rule_set():
    b = permitted_loss_binding(
        guard_today=Decimal("555.004"),
        guard_total=Decimal("2000"),
        guard_resets_at=GUARD_RESET,
        rule_set_name="Two-step challenge",
        rules_today=Decimal("1000"),
        rules_total=Decimal("1500"),
        rules_resets_at=RULES_RESET,
    )
    assert (b.today, b.today_source, b.today_source_label) == (
        Decimal("555.00"),
        "daily_loss_guard",
        "daily-loss guard",
    )
    assert (b.total, b.total_source_label) == (Decimal("1500.00"), "rule set Two-step challenge")
    assert b.next_reset == GUARD_RESET  # the binding day's reset


def test_the_rule_set_binds_when_it_leaves_less_and_wins_a_tie():
    b = permitted_loss_binding(
        guard_today=Decimal("1000"),
        guard_total=Decimal("900"),
        guard_resets_at=GUARD_RESET,
        rule_set_name="Desk A",
        rules_today=Decimal("1000"),
        rules_total=Decimal("3000"),
        rules_resets_at=RULES_RESET,
    )
    assert (b.today_source, b.today_source_label, b.next_reset) == (
        "rule_set",
        "rule set Desk A",
        RULES_RESET,
    )
    assert (b.total, b.total_source) == (Decimal("900.00"), "drawdown_guard")


def test_a_source_that_is_off_does_not_take_part_and_amounts_never_go_negative():
    b = permitted_loss_binding(guard_today=None, guard_total=Decimal("-12.5"), guard_resets_at=GUARD_RESET)
    assert (b.today, b.today_source, b.next_reset) == (None, "", GUARD_RESET)
    assert (b.total, b.total_source) == (Decimal("0.00"), "drawdown_guard")


@pytest.mark.parametrize(
    ("now", "offset_hours", "expected"),
    [
        # A broker on UTC+2: its midnight is 22:00 UTC.
        (
            datetime(2026, 3, 2, 21, 59, 59, tzinfo=UTC),
            2,
            datetime(2026, 3, 2, 22, tzinfo=UTC),
        ),  # just before
        (datetime(2026, 3, 2, 22, tzinfo=UTC), 2, datetime(2026, 3, 3, 22, tzinfo=UTC)),  # at: the next one
        (datetime(2026, 3, 2, 22, 0, 1, tzinfo=UTC), 2, datetime(2026, 3, 3, 22, tzinfo=UTC)),  # just after
        # The same broker after its DST change (UTC+3, with New York's): midnight is 21:00 UTC.
        (datetime(2026, 3, 9, 20, 59, 59, tzinfo=UTC), 3, datetime(2026, 3, 9, 21, tzinfo=UTC)),
        (datetime(2026, 3, 9, 21, 0, 1, tzinfo=UTC), 3, datetime(2026, 3, 10, 21, tzinfo=UTC)),
        # A negative offset: UTC-5, midnight is 05:00 UTC of the next UTC date.
        (datetime(2026, 3, 2, 23, tzinfo=UTC), -5, datetime(2026, 3, 3, 5, tzinfo=UTC)),
    ],
)
def test_the_broker_day_resets_at_the_next_server_midnight_strictly_after_now(now, offset_hours, expected):
    assert broker_day_next_reset(now=now, offset_seconds=offset_hours * 3600) == expected
