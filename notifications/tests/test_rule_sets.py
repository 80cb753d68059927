"""Rule-set alerts reach people (issue #16 follow-up): a rule set's level entering warning, its way back to normal and
its objectives met are delivered per each person's preferences like the other guard alerts, only to the account's
people, with the rule set's numbers; a breach is told once, by the liquidation it starts, naming the rule and limit."""

from datetime import timedelta

import pytest
from django.core import mail

from guards.tests.conftest import START, evaluate_reading, make_snapshot
from guards.tests.test_rules_live import _assign, _deal
from notifications.models import EventKind, Notification, Severity
from notifications.services import notification_deliver, notification_preference_update
from notifications.tests.conftest import chat_of
from rules.services import rule_set_create

pytestmark = pytest.mark.django_db


def _evaluate(account, clock, *, equity, seconds, balance="10000", deals=()):
    at = START + timedelta(seconds=seconds)
    clock.set(at)
    snapshot = make_snapshot(account, equity=equity, balance=balance, at=at)
    evaluate_reading(account=account, snapshot=snapshot, deals=list(deals))


def _destinations(kind) -> set[str]:
    return set(Notification.objects.filter(kind=kind).values_list("destination", flat=True))


def _deliver(kind):
    outcomes = [
        notification_deliver(notification_id=pk).outcome
        for pk in Notification.objects.filter(kind=kind).values_list("pk", flat=True)
    ]
    assert outcomes
    assert set(outcomes) == {"sent"}


def test_a_rule_set_warning_reaches_the_accounts_people_by_their_preferences(
    account, people, clock, dispatched, telegram, receiver
):
    trader, other, owner, support = (people[k] for k in ("trader", "other_trader", "owner", "support"))
    notification_preference_update(user=support, channel="email", enabled=True, min_severity="critical")
    notification_preference_update(user=owner, channel="telegram", enabled=False, min_severity="info")
    rule_set = rule_set_create(
        actor=None, name="Desk 5/10", preset="two_step", reason="t", close_only_on_warning=True
    )
    _assign(account, rule_set=rule_set)

    _evaluate(account, clock, equity="9590", seconds=0)  # 82 % of the 500 daily loss used

    severities = set(
        Notification.objects.filter(kind=EventKind.RULE_LEVEL).values_list("severity", flat=True)
    )
    assert severities == {Severity.WARNING}
    assert _destinations(EventKind.RULE_LEVEL) == {
        f"telegram:{chat_of(trader)}",
        f"email:{trader.email}",
        f"email:{owner.email}",
        f"telegram:{chat_of(support)}",
    }  # not support's e-mail (critical only), not owner's telegram (off), not the critical-only webhook
    assert not {f"telegram:{chat_of(other)}", f"email:{other.email}"} & _destinations(EventKind.RULE_LEVEL)

    _deliver(EventKind.RULE_LEVEL)
    [text] = telegram.messages_to(chat_of(trader))
    assert "Rule set level changed" in text
    assert f"{account.login}@{account.server}" in text
    assert "Desk 5/10: normal → warning." in text
    assert "Daily loss limit: 82.00% used, 90.00 USD left today." in text
    assert "Maximum loss limit: 41.00% used, 590.00 USD left." in text
    assert "The account is close-only" in text
    assert f"https://guard.example.test/accounts/{account.pk}/" in text
    assert sorted(m.to[0] for m in mail.outbox) == sorted([trader.email, owner.email])
    assert receiver.received == []


def test_back_to_normal_is_info_and_reaches_only_those_who_asked_for_info(
    account, people, clock, dispatched, telegram
):
    trader = people["trader"]
    _assign(account)
    _evaluate(account, clock, equity="9590", seconds=0)
    notification_preference_update(user=trader, channel="telegram", enabled=True, min_severity="info")
    Notification.objects.all().delete()

    _evaluate(account, clock, equity="9900", seconds=10)

    assert _destinations(EventKind.RULE_LEVEL) == {
        f"telegram:{chat_of(trader)}"
    }  # everyone else: warning and up
    n = Notification.objects.get(kind=EventKind.RULE_LEVEL)
    assert (n.severity, n.payload["detail"]["to"]) == (Severity.INFO, "normal")
    _deliver(EventKind.RULE_LEVEL)
    [text] = telegram.messages_to(chat_of(trader))
    assert "Two-step challenge: warning → normal." in text
    assert "Daily loss limit: 20.00% used, 400.00 USD left today." in text
    assert "close-only" not in text


def test_objectives_met_tells_the_trader_nothing_was_closed(account, people, clock, dispatched, telegram):
    trader = people["trader"]
    rule_set = rule_set_create(actor=None, name="Quick", preset="two_step", reason="t", min_trading_days=1)
    _assign(account, rule_set=rule_set)
    opened = START + timedelta(minutes=1)
    deals = [
        _deal(1, position=11, entry=0, at=opened, commission="-3"),
        _deal(2, position=11, entry=1, at=opened + timedelta(minutes=5), profit="1103"),
    ]
    _evaluate(account, clock, equity="10000", seconds=0)
    _evaluate(account, clock, equity="11100", balance="11100", seconds=600, deals=deals)

    n = Notification.objects.get(kind=EventKind.OBJECTIVES_MET, destination=f"telegram:{chat_of(trader)}")
    assert n.severity == Severity.WARNING  # delivered by default (minimum severity warning)
    assert f"email:{trader.email}" in _destinations(EventKind.OBJECTIVES_MET)
    _deliver(EventKind.OBJECTIVES_MET)
    [text] = telegram.messages_to(chat_of(trader))
    assert "Rule set objectives met" in text
    assert (
        "Quick: every objective is met (profit target, 1 trading day(s), best day 100.00% of the profit)."
        in text
    )
    assert "Nothing was closed" in text

    # the next snapshot, still passed: no second message
    _evaluate(account, clock, equity="11100", balance="11100", seconds=610, deals=deals)
    assert Notification.objects.filter(kind=EventKind.OBJECTIVES_MET).count() == len(
        _destinations(EventKind.OBJECTIVES_MET)
    )


def test_a_breach_is_told_once_by_its_liquidation_naming_the_rule_and_the_limit(
    account, people, clock, dispatched, telegram
):
    trader = people["trader"]
    _assign(account)
    _evaluate(account, clock, equity="9499.99", seconds=0)

    kinds = set(
        Notification.objects.filter(destination=f"telegram:{chat_of(trader)}").values_list("kind", flat=True)
    )
    assert kinds == {EventKind.LIQUIDATION_SCHEDULED}  # the breach alert itself is not a second message
    _deliver(EventKind.LIQUIDATION_SCHEDULED)
    [text] = telegram.messages_to(chat_of(trader))
    assert (
        "Two-step challenge: daily loss limit breached: equity 9,499.99 USD below the limit 9,500.00 USD."
        in text
    )
    assert "Every position is being closed now" in text
    assert "unless the account recovers" not in text
