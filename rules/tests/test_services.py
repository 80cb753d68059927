"""Rule sets as owner configuration with history: presets installed, create / edit / assign through the services,
field-level validation that stores nothing, every change recorded with who, when, why, old → new."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts.tests.factories import TradingAccountFactory
from core.exceptions import ApplicationError, PermissionDeniedError
from rules import evaluation
from rules.models import AccountRuleSet, AccountRuleSetChange, RuleSet, RuleSetChange
from rules.presets import PRESETS
from rules.services import account_rule_set_assign, rule_set_create, rule_set_update

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 7, tzinfo=UTC)


def _migration_presets():
    import importlib

    return importlib.import_module("rules.migrations.0002_presets_and_roles").PRESETS


def test_the_migration_installs_every_preset_with_a_first_revision():
    rows = {row.preset: row for row in RuleSet.objects.all()}
    assert set(rows) == set(PRESETS)
    for key, preset in PRESETS.items():
        row = rows[key]
        assert row.revision == 1
        assert row.terms == RuleSet(**dict(preset.items())).terms
        change = row.changes.get()
        assert change.old is None
        assert change.changed_by is None
        assert change.reason


def test_the_migration_copy_of_the_presets_equals_the_module():
    frozen = _migration_presets()
    assert set(frozen) == set(PRESETS)
    for key, preset in PRESETS.items():
        assert {k: (str(v) if isinstance(v, Decimal) else v) for k, v in preset.items()} == frozen[key]


def test_presets_are_the_issues_programmes():
    two = RuleSet.objects.get(preset="two_step").as_rules(initial_balance=Decimal(100000), start=START)
    assert (two.timezone, two.daily_loss.percent, two.daily_loss.base) == ("Europe/Prague", 5, "balance")
    assert (two.max_loss.percent, two.max_loss.mode, two.profit_target_percent, two.min_trading_days) == (
        10,
        "static",
        10,
        4,
    )
    one = RuleSet.objects.get(preset="one_step").as_rules(initial_balance=Decimal(100000), start=START)
    assert (
        one.daily_loss.percent,
        one.max_loss.percent,
        one.max_loss.mode,
        one.max_loss.lock_at_initial,
    ) == (3, 6, "eod_trailing", True)
    assert (one.profit_target_percent, one.best_day_percent) == (10, 50)
    ny = RuleSet.objects.get(preset="ny_close").as_rules(initial_balance=Decimal(100000), start=START)
    assert (ny.timezone, ny.reset_time.isoformat(), ny.daily_loss.base) == (
        "America/New_York",
        "17:00:00",
        "max",
    )
    assert RuleSet.objects.get(preset="classic").as_rules(initial_balance=Decimal(1), start=START) is None


def test_a_preset_rule_set_reproduces_the_spec_example_through_the_evaluation():
    import json

    from core.shared_cases import shared_case_path
    from rules.case_file import parse_case

    document = json.loads(shared_case_path("rules-example.json").read_text())
    case = parse_case(json.dumps(document["case"]))
    rules = RuleSet.objects.get(preset="two_step").as_rules(
        initial_balance=Decimal(100000), start=case.rules.start
    )
    # The example is the two-step preset plus a best-day rule of 50 %.
    rules = evaluation.RuleSet(
        **{**{f: getattr(rules, f) for f in rules.__slots__}, "best_day_percent": Decimal(50)}
    )
    state = evaluation.evaluate(rules=rules, readings=case.readings, trades=case.trades)
    assert state.to_result() == document["expected"]


def test_owner_creates_a_custom_rule_set_from_a_preset(owner):
    row = rule_set_create(
        actor=owner, name="Tight two-step", preset="two_step", reason="Trial desk", daily_loss_percent="4"
    )
    assert (row.daily_loss_percent, row.max_loss_percent, row.timezone) == (4, 10, "Europe/Prague")
    assert row.preset == "two_step"
    change = row.changes.get()
    assert (change.revision, change.old, change.changed_by, change.reason) == (1, None, owner, "Trial desk")
    assert change.new["daily_loss_percent"] == "4"


def test_an_edit_is_a_new_revision_with_old_and_new(owner):
    row = RuleSet.objects.get(preset="one_step")
    rule_set_update(actor=owner, rule_set=row, reason="Looser", max_loss_percent=Decimal("8"))
    row.refresh_from_db()
    assert (row.revision, row.max_loss_percent) == (2, 8)
    change = row.changes.get(revision=2)
    assert change.old["max_loss_percent"] == "6"
    assert change.new["max_loss_percent"] == "8"
    assert change.changed_fields == ["max_loss_percent"]
    assert change.changed_by == owner
    assert change.reason == "Looser"


def test_an_edit_that_changes_nothing_is_refused(owner):
    row = RuleSet.objects.get(preset="one_step")
    with pytest.raises(ApplicationError, match="Nothing changed"):
        rule_set_update(actor=owner, rule_set=row, reason="x", max_loss_percent=Decimal("6"))


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"daily_loss_percent": "0"}, "daily_loss_percent", "positive"),
        ({"daily_loss_percent": "-1"}, "daily_loss_percent", "positive"),
        ({"max_loss_percent": "-5"}, "max_loss_percent", "positive"),
        ({"profit_target_percent": "0"}, "profit_target_percent", "positive"),
        ({"best_day_percent": "0"}, "best_day_percent", "positive"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"reset_time": "25:00"}, "reset_time", "HH:MM"),
        ({"reset_time": "7:00"}, "reset_time", "HH:MM"),
        ({"max_loss_mode": "weekly"}, "max_loss_mode", "static, eod_trailing, intraday_trailing"),
        ({"daily_loss_base": "margin"}, "daily_loss_base", "balance, equity, max"),
        ({"daily_loss_of": "peak"}, "daily_loss_of", "initial, base"),
        ({"kind": "strict"}, "kind", "limits, classic"),
        ({"warn_at_percent_used": "120"}, "warn_at_percent_used", "at most 100"),
        ({"min_trading_days": -1}, "min_trading_days", ">= 0"),
        ({"daily_loss_percent": "abc"}, "daily_loss_percent", "number"),
    ],
)
def test_bad_terms_are_field_messages_and_nothing_is_stored(owner, change, field, words):
    row = RuleSet.objects.get(preset="two_step")
    before = (row.terms, RuleSetChange.objects.count())
    with pytest.raises(ValidationError) as caught:
        rule_set_update(actor=owner, rule_set=row, reason="bad", **change)
    assert words in " ".join(caught.value.message_dict[field])
    row.refresh_from_db()
    assert (row.terms, RuleSetChange.objects.count()) == before
    with pytest.raises(ValidationError) as caught:
        rule_set_create(actor=owner, name="Bad one", reason="bad", **change)
    assert field in caught.value.message_dict
    assert not RuleSet.objects.filter(name="Bad one").exists()


def test_a_reason_and_a_unique_name_are_required(owner):
    with pytest.raises(ValidationError) as caught:
        rule_set_create(actor=owner, name="Two-step challenge", reason="  ")
    assert "reason" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        rule_set_create(actor=owner, name="two-STEP challenge", reason="dup")
    assert "exists already" in caught.value.message_dict["name"][0]


def test_only_owners_change_rule_sets(support, trader):
    row = RuleSet.objects.get(preset="two_step")
    for user in (support, trader):
        with pytest.raises(PermissionDeniedError):
            rule_set_update(actor=user, rule_set=row, reason="x", daily_loss_percent="4")
        with pytest.raises(PermissionDeniedError):
            rule_set_create(actor=user, name="Mine", reason="x")


def test_assigning_and_changing_an_accounts_rule_set_is_recorded(owner):
    account = TradingAccountFactory()
    two, one = RuleSet.objects.get(preset="two_step"), RuleSet.objects.get(preset="one_step")
    row = account_rule_set_assign(
        actor=owner,
        account=account,
        rule_set=two,
        initial_balance="100000",
        start=START,
        reason="Challenge bought",
    )
    assert (row.revision, row.initial_balance, row.start) == (1, 100000, START)
    account_rule_set_assign(
        actor=owner,
        account=account,
        rule_set=one,
        initial_balance="50000",
        start="2026-04-01T00:00:00+02:00",
        reason="Switched programme",
    )
    row = AccountRuleSet.objects.get(account=account)
    assert (row.revision, row.rule_set, row.initial_balance) == (2, one, 50000)
    assert row.start == datetime(2026, 3, 31, 22, tzinfo=UTC)
    changes = list(AccountRuleSetChange.objects.filter(account=account).order_by("revision"))
    assert [c.revision for c in changes] == [1, 2]
    assert changes[0].old is None
    assert changes[0].new["rule_set_name"] == "Two-step challenge"
    assert changes[1].old["initial_balance"] == "100000"
    assert changes[1].new["initial_balance"] == "50000"
    assert changes[1].changed_by == owner
    assert changes[1].reason == "Switched programme"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial_balance": "0"}, "initial_balance"),
        ({"initial_balance": "-10"}, "initial_balance"),
        ({"initial_balance": "lots"}, "initial_balance"),
        ({"start": "2026-03-02T07:00:00"}, "start"),
        ({"start": "yesterday"}, "start"),
        ({"reason": ""}, "reason"),
    ],
)
def test_bad_assignments_store_nothing(owner, kwargs, field):
    account = TradingAccountFactory()
    arguments = {"initial_balance": "100000", "start": START, "reason": "x"} | kwargs
    with pytest.raises(ValidationError) as caught:
        account_rule_set_assign(actor=owner, account=account, rule_set=RuleSet.objects.first(), **arguments)
    assert field in caught.value.message_dict
    assert not AccountRuleSet.objects.filter(account=account).exists()
    assert not AccountRuleSetChange.objects.filter(account=account).exists()


def test_only_owners_assign(support, trader):
    account = TradingAccountFactory(owner=trader)
    for user in (support, trader):
        with pytest.raises(PermissionDeniedError):
            account_rule_set_assign(
                actor=user,
                account=account,
                rule_set=RuleSet.objects.first(),
                initial_balance="1000",
                reason="x",
            )
