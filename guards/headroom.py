"""The binding permitted loss: the one figure a funded trader asks for first. Pure (no queries).

An account can be bounded twice: by the classic guards (the daily-loss guard's floor under the broker day's anchor,
the drawdown guard's floor under the peak) and, under a rule set with limits, by the rule set (its daily limit and
its maximum loss limit, spec/rules.md). Whichever leaves less binds. The account page's top cards, the overview's
Headroom column and the API guard summary (`binding`) all make the choice here, so they never disagree.

A tie goes to the rule set (it is the stricter contract: breaking it ends the account). Amounts are clamped at 0 and
rounded to cents; a source that is off (no daily-loss guard, no rule set, not yet evaluated) does not take part.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")

DAILY_LOSS_GUARD, DRAWDOWN_GUARD, RULE_SET = "daily_loss_guard", "drawdown_guard", "rule_set"


def broker_day_next_reset(*, now: datetime, offset_seconds: int) -> datetime:
    """The next midnight of the trade server's wall clock (UTC + `offset_seconds`) strictly after `now`, as aware
    UTC: when the daily-loss guard's day anchor rolls (guards.services.evaluate takes the broker day from the
    snapshot's server wall time). At midnight itself the new day has begun, so the answer is the next one.

    The broker's offset is one figure per snapshot (measured, quarter-hours): across a broker DST change the
    countdown follows the offset as soon as a snapshot carries the new one."""
    offset = timedelta(seconds=offset_seconds)
    wall = now.astimezone(timezone(offset))
    midnight = datetime.combine(wall.date() + timedelta(days=1), datetime.min.time(), tzinfo=timezone(offset))
    return midnight.astimezone(UTC)


@dataclass(frozen=True)
class PermittedLoss:
    today: Decimal | None  # what may still be lost today before the binding daily limit
    today_source: str  # daily_loss_guard | rule_set | "" (nothing bounds the day)
    today_source_label: str  # "daily-loss guard" | "rule set <name>"
    total: Decimal | None  # what may still be lost before the binding overall limit
    total_source: str  # drawdown_guard | rule_set | ""
    total_source_label: str
    next_reset: datetime | None  # when the binding daily limit starts a new day

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clamp(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    return max(Decimal(value), Decimal(0)).quantize(CENT)


def _pick(
    guard: tuple[Decimal | None, str, str], rules: tuple[Decimal | None, str, str]
) -> tuple[Decimal | None, str, str]:
    candidates = [c for c in (rules, guard) if c[0] is not None]  # the rule set first: it wins a tie
    if not candidates:
        return None, "", ""
    return min(candidates, key=lambda c: c[0])  # type: ignore[arg-type,return-value]


def permitted_loss_binding(
    *,
    guard_today: Decimal | None,
    guard_total: Decimal | None,
    guard_resets_at: datetime | None,
    rule_set_name: str | None = None,
    rules_today: Decimal | None = None,
    rules_total: Decimal | None = None,
    rules_resets_at: datetime | None = None,
) -> PermittedLoss:
    """The smaller of the guard's and the rule set's permitted loss today (and overall), naming its source.

    `guard_today`: equity above the daily-loss guard's critical floor (None when that guard is off or has no
    anchor yet); `guard_total`: equity above the drawdown guard's critical floor. `rules_*`: the rule set's
    `permitted_loss_today` / `permitted_loss_total` / `next_reset` (None without an evaluated rule set)."""
    label = f"rule set {rule_set_name}" if rule_set_name else "rule set"
    today, today_source, today_label = _pick(
        (_clamp(guard_today), DAILY_LOSS_GUARD, "daily-loss guard"),
        (_clamp(rules_today), RULE_SET, label),
    )
    total, total_source, total_label = _pick(
        (_clamp(guard_total), DRAWDOWN_GUARD, "drawdown guard"),
        (_clamp(rules_total), RULE_SET, label),
    )
    if today_source == RULE_SET:
        next_reset = rules_resets_at
    elif today_source == DAILY_LOSS_GUARD:
        next_reset = guard_resets_at
    else:
        next_reset = rules_resets_at or guard_resets_at
    return PermittedLoss(
        today=today,
        today_source=today_source,
        today_source_label=today_label,
        total=total,
        total_source=total_source,
        total_source_label=total_label,
        next_reset=next_reset,
    )


def permitted_loss_binding_from_rules(
    *,
    guard_today: Decimal | None,
    guard_total: Decimal | None,
    guard_resets_at: datetime | None,
    rules: dict[str, Any] | None,
) -> PermittedLoss:
    """The same, with the rule set as `rules.selectors.account_rules_summary` gives it (None without one)."""
    if rules is None:
        return permitted_loss_binding(
            guard_today=guard_today, guard_total=guard_total, guard_resets_at=guard_resets_at
        )
    return permitted_loss_binding(
        guard_today=guard_today,
        guard_total=guard_total,
        guard_resets_at=guard_resets_at,
        rule_set_name=rules.get("rule_set"),
        rules_today=rules.get("permitted_loss_today"),
        rules_total=rules.get("permitted_loss_total"),
        rules_resets_at=rules.get("next_reset"),
    )
