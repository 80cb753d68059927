"""Which guard alerts become which notification events (pure mapping)."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from notifications.events import events_from_alerts
from notifications.models import EventKind, Severity

AT = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)


def _alert(pk, kind, *, level="", detail=None, account_id=1, intent_id=None):
    return SimpleNamespace(
        pk=pk, kind=kind, guard="drawdown", level=level, value=None, ticket=None, symbol="", message="m",
        detail=detail or {}, account_id=account_id, intent_id=intent_id, actor_id=None, created_at=AT,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "level", "detail", "expected"),
    [
        ("guard_level", "warning", {"from": "normal"}, (EventKind.GUARD_WARNING, Severity.WARNING)),
        ("guard_level", "critical", {"from": "warning"}, (EventKind.GUARD_CRITICAL, Severity.CRITICAL)),
        ("guard_level", "normal", {"from": "warning"}, (EventKind.GUARD_RECOVERED, Severity.INFO)),
        ("guard_level", "warning", {"from": "critical"}, (EventKind.GUARD_RECOVERED, Severity.INFO)),
        ("liquidation_started", "critical", {}, (EventKind.LIQUIDATION_STARTED, Severity.CRITICAL)),
        ("reset", "", {}, (EventKind.GUARD_RESET, Severity.WARNING)),
        ("close_sent", "", {}, None),
        ("snapshot_stale", "", {}, None),
        ("peak_adjusted", "", {}, None),
    ],
)
def test_alert_kinds(kind, level, detail, expected):
    events = events_from_alerts([_alert(1, kind, level=level, detail=detail)])
    assert [(e.kind, e.severity) for e in events] == ([expected] if expected else [])


def test_a_scheduled_liquidation_says_critical_once_with_its_time():
    events = events_from_alerts(
        [
            _alert(1, "guard_level", level="critical", detail={"from": "normal"}),
            _alert(2, "liquidation_scheduled", level="critical", detail={"at": AT.isoformat()}),
            _alert(3, "guard_level", level="critical", detail={"from": "normal"}, account_id=2),
        ]
    )
    assert [(e.key, e.kind) for e in events] == [
        ("alert:2", EventKind.LIQUIDATION_SCHEDULED),
        ("alert:3", EventKind.GUARD_CRITICAL),  # another account: nothing scheduled there
    ]


@pytest.mark.parametrize(
    ("attempt", "retry_at", "told"),
    [(1, "2026-03-02T07:01:00+00:00", True), (2, "2026-03-02T07:01:00+00:00", False),
     (30, "2026-03-02T07:31:00+00:00", True), (7, None, True), (None, None, True)],
)  # fmt: skip
def test_a_close_that_keeps_failing_is_told_first_then_as_a_reminder_and_when_retries_stop(
    attempt, retry_at, told
):
    detail = {"trigger": "market", "retcode": 10018, "attempt": attempt, "retry_at": retry_at}
    events = events_from_alerts([_alert(1, "close_failed", detail=detail)])
    assert bool(events) is told


def test_failing_guards_tell_operators_once_an_hour():
    from notifications.events import Audience

    first = events_from_alerts([_alert(1, "guards_failed", detail={"error": "boom"})])
    again = events_from_alerts([_alert(2, "guards_failed", detail={"error": "boom"})])
    assert [(e.kind, e.audience) for e in first] == [(EventKind.GUARDS_FAILED, Audience.OPERATORS)]
    assert first[0].key == again[0].key  # the same hour: one notification per destination


@pytest.mark.parametrize(
    ("kind", "level", "expected"),
    [
        ("rule_level", "warning", (EventKind.RULE_LEVEL, Severity.WARNING)),
        ("rule_level", "normal", (EventKind.RULE_LEVEL, Severity.INFO)),
        ("objectives_met", "normal", (EventKind.OBJECTIVES_MET, Severity.WARNING)),
        ("rule_breach", "critical", None),  # told by the liquidation_scheduled of the same decision
    ],
)
def test_rule_set_alerts(kind, level, expected):
    from notifications.events import alerts_may_notify

    alert = _alert(1, kind, level=level)
    events = events_from_alerts([alert])
    assert [(e.kind, e.severity) for e in events] == ([expected] if expected else [])
    assert alerts_may_notify([alert]) is (expected is not None)
