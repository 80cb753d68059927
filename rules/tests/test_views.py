"""Rule sets on the pages: the owner creates and edits them on /risk/ (field errors inline, nothing stored on error),
puts an account under one and lifts close-only from the account page; everyone else reads, and a POST by them is the
403 page."""

from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory
from rules.models import AccountRuleSet, AccountRuleSetChange, AccountRulesState, RuleSet, RuleSetChange
from rules.services import account_rule_set_assign

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _terms(prefix: str, **overrides):
    values = {
        "name": "Desk A",
        "description": "",
        "kind": "limits",
        "timezone": "Europe/Prague",
        "reset_time": "00:00",
        "daily_loss_percent": "4",
        "daily_loss_of": "initial",
        "daily_loss_base": "balance",
        "max_loss_percent": "8",
        "max_loss_mode": "static",
        "max_loss_lock_at_initial": "on",
        "profit_target_percent": "10",
        "min_trading_days": "3",
        "best_day_percent": "",
        "warn_at_percent_used": "80",
        "reason": "Desk A terms",
    } | overrides
    return {f"{prefix}-{k}": v for k, v in values.items() if v is not None}


def test_risk_page_lists_rule_sets_with_terms_usage_and_history(owner, support):
    two_step = RuleSet.objects.get(preset="two_step")
    account = TradingAccountFactory()
    account_rule_set_assign(
        actor=owner, account=account, rule_set=two_step, initial_balance="100000", reason="funded"
    )
    html = _client(support).get("/risk/").content.decode()
    assert "Rule sets" in html
    row = html[html.index(f'id="rule-set-row-{two_step.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Europe/Prague" in row
    assert "5 %" in row
    assert "10 %" in row
    assert '<td class="num" data-label="Accounts">1</td>' in row  # one account under it
    assert f'id="rule-set-{two_step.pk}"' in html  # its history
    assert "rule-set-new" not in html  # support reads only
    assert "Only an owner creates and edits rule sets" in html


def test_a_trader_reads_the_rule_sets_terms_but_not_how_many_accounts_use_them(owner, trader):
    two_step = RuleSet.objects.get(preset="two_step")
    account_rule_set_assign(
        actor=owner,
        account=TradingAccountFactory(),
        rule_set=two_step,
        initial_balance="100000",
        reason="funded",
    )
    html = _client(trader).get("/risk/").content.decode()
    row = html[html.index(f'id="rule-set-row-{two_step.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Europe/Prague" in row  # the terms are the trader's business
    assert '<td class="num" data-label="Accounts">1</td>' not in row  # the fleet's use of them is not
    assert ">Accounts</th>" not in html


def test_owner_creates_a_rule_set_with_a_bad_value_sees_the_field_error_and_nothing_is_stored(owner):
    before = RuleSet.objects.count()
    response = _client(owner).post(
        "/rules/sets/create/",
        _terms("new", daily_loss_percent="-1", timezone="Mars/Olympus"),
        headers=HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="rule-set-new"' in html
    assert "field-error" in html
    assert "Mars/Olympus" in html  # the typed values stay
    assert RuleSet.objects.count() == before
    assert not RuleSetChange.objects.filter(new__name="Desk A").exists()


def test_owner_creates_a_rule_set_from_a_preset_and_it_is_recorded(owner):
    response = _client(owner).post(
        "/rules/sets/create/", _terms("new", start_from_preset="one_step"), headers=HTMX
    )
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/risk/?rule_set=")
    row = RuleSet.objects.get(name="Desk A")
    assert (row.preset, row.daily_loss_percent, row.revision) == ("one_step", Decimal(4), 1)
    change = row.changes.get()
    assert (change.changed_by, change.reason, change.old) == (owner, "Desk A terms", None)
    html = _client(owner).get("/risk/").content.decode()
    assert f'id="rule-set-{row.pk}"' in html
    assert "Desk A terms" in html


def test_the_preset_link_fills_the_create_form(owner):
    html = _client(owner).get("/rules/sets/new/?preset=ny_close", headers=HTMX).content.decode()
    assert 'value="America/New_York"' in html
    assert 'value="17:00"' in html
    assert 'name="new-start_from_preset" value="ny_close"' in html


def test_owner_edits_a_rule_set_with_a_reason_and_the_history_shows_old_and_new(owner):
    row = RuleSet.objects.get(preset="two_step")
    prefix = f"rs{row.pk}"
    client = _client(owner)
    data = _terms(
        prefix,
        name=row.name,
        description=row.description,
        daily_loss_percent="4",
        max_loss_percent="10",
        profit_target_percent="10",
        min_trading_days="4",
        reason="Lower daily limit",
    )
    response = client.post(f"/rules/sets/{row.pk}/edit/", data, headers=HTMX)
    assert response.status_code == 200
    assert "HX-Redirect" in response.headers, response.content.decode()
    row.refresh_from_db()
    assert (row.daily_loss_percent, row.revision) == (Decimal(4), 2)
    html = client.get("/risk/").content.decode()
    assert "Lower daily limit" in html
    assert "Daily loss percent: 5 → <strong>4</strong>" in html


def test_an_edit_without_a_reason_or_with_a_bad_reset_time_stores_nothing(owner):
    row = RuleSet.objects.get(preset="two_step")
    prefix = f"rs{row.pk}"
    data = _terms(prefix, name=row.name, reset_time="25:99", reason="")
    response = _client(owner).post(f"/rules/sets/{row.pk}/edit/", data, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="rule-set-edit-{row.pk}"' in html
    assert html.count("field-error") >= 2
    row.refresh_from_db()
    assert (row.revision, row.reset_time) == (1, "00:00")


def test_a_non_htmx_post_with_errors_gets_a_page_with_the_form(owner):
    response = _client(owner).post("/rules/sets/create/", _terms("new", reset_time="noon"))
    assert response.status_code == 200
    assert "Some values need fixing" in response.content.decode()


@pytest.mark.parametrize("role", ["support", "trader"])
def test_non_owners_get_the_403_page_for_rule_set_writes(request, role):
    user = request.getfixturevalue(role)
    row = RuleSet.objects.get(preset="two_step")
    client = _client(user)
    for url in ("/rules/sets/create/", f"/rules/sets/{row.pk}/edit/"):
        response = client.post(url, _terms("new"))
        assert response.status_code == 403
        assert "Only an owner" in response.content.decode()
    assert client.get("/rules/sets/new/").status_code == 403
    assert RuleSet.objects.count() == 4


def test_rule_set_writes_need_the_csrf_token(owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post("/rules/sets/create/", _terms("new"))
    assert response.status_code == 403
    assert not RuleSet.objects.filter(name="Desk A").exists()


def _account(owner_user):
    account = TradingAccountFactory(owner=owner_user)
    snapshot = AccountSnapshotFactory(
        account=account, balance=Decimal("50000.00"), equity=Decimal("50000.00")
    )
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    return account


def test_owner_puts_an_account_under_a_rule_set_from_the_account_page(owner, trader):
    account = _account(trader)
    rule_set = RuleSet.objects.get(preset="one_step")
    client = _client(owner)
    html = client.get(f"/accounts/{account.pk}/").content.decode()
    assert 'id="rules-assign-form"' in html
    assert 'value="50000.00"' in html  # the latest balance as the initial balance
    response = client.post(
        f"/rules/accounts/{account.pk}/assign/",
        {"rule_set": rule_set.pk, "initial_balance": "50000", "start": "", "reason": "Funded from today"},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert "HX-Redirect" in response.headers, response.content.decode()
    assignment = AccountRuleSet.objects.get(account=account)
    assert (assignment.rule_set, assignment.initial_balance) == (rule_set, Decimal("50000.00"))
    change = AccountRuleSetChange.objects.get(account=account)
    assert (change.changed_by, change.reason) == (owner, "Funded from today")


def test_an_assignment_with_a_bad_balance_shows_the_field_error_and_stores_nothing(owner, trader):
    account = _account(trader)
    rule_set = RuleSet.objects.get(preset="one_step")
    response = _client(owner).post(
        f"/rules/accounts/{account.pk}/assign/",
        {"rule_set": rule_set.pk, "initial_balance": "-5", "start": "", "reason": ""},
        headers=HTMX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Initial balance must be a positive number." in html
    assert "Give a reason." in html
    assert not AccountRuleSet.objects.filter(account=account).exists()


@pytest.mark.parametrize("role", ["support", "trader"])
def test_only_an_owner_assigns_a_rule_set(request, role, trader):
    user = request.getfixturevalue(role)
    account = _account(trader)
    rule_set = RuleSet.objects.get(preset="one_step")
    html = _client(user).get(f"/accounts/{account.pk}/").content.decode()
    assert 'id="rules-assign-form"' not in html
    response = _client(user).post(
        f"/rules/accounts/{account.pk}/assign/",
        {"rule_set": rule_set.pk, "initial_balance": "50000", "reason": "mine"},
    )
    assert response.status_code == 403
    assert not AccountRuleSet.objects.filter(account=account).exists()


def _close_only(owner_user, account):
    rule_set = RuleSet.objects.get(preset="two_step")
    assignment = account_rule_set_assign(
        actor=owner_user, account=account, rule_set=rule_set, initial_balance="50000", reason="funded"
    )
    return AccountRulesState.objects.create(
        account=account,
        assignment_revision=assignment.revision,
        rule_set_revision=rule_set.revision,
        state={},
        level="warning",
        close_only=True,
        close_only_since=timezone.now(),
        evaluated_at=timezone.now(),
    )


def test_support_lifts_close_only_from_the_account_page_with_a_reason(owner, support, trader):
    account = _account(trader)
    _close_only(owner, account)
    client = _client(support)
    html = client.get(f"/accounts/{account.pk}/").content.decode()
    assert 'id="rules-lift-form"' in html
    response = client.post(f"/rules/accounts/{account.pk}/close-only/lift/", {"reason": ""}, headers=HTMX)
    assert "Give a reason for lifting close-only." in response.content.decode()
    assert AccountRulesState.objects.get(account=account).close_only is True
    response = client.post(
        f"/rules/accounts/{account.pk}/close-only/lift/", {"reason": "Checked with the desk"}, headers=HTMX
    )
    assert "HX-Redirect" in response.headers
    row = AccountRulesState.objects.get(account=account)
    assert (row.close_only, row.close_only_lifted_by, row.close_only_lift_reason) == (
        False,
        support,
        "Checked with the desk",
    )


def test_a_trader_sees_no_lift_form_and_may_not_lift(owner, trader):
    account = _account(trader)
    _close_only(owner, account)
    client = _client(trader)
    assert 'id="rules-lift-form"' not in client.get(f"/accounts/{account.pk}/").content.decode()
    response = client.post(f"/rules/accounts/{account.pk}/close-only/lift/", {"reason": "please"})
    assert response.status_code == 403
    assert AccountRulesState.objects.get(account=account).close_only is True


def test_the_risk_page_shows_its_rule_sets_once_and_a_plain_title(owner):
    html = _client(owner).get("/risk/").content.decode()
    assert html.count('id="rule-sets"') == 1
    title = html[html.index("<title>") : html.index("</title>")]
    assert "<section" not in title
