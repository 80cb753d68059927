"""Rule sets on the pages: the account page shows the headroom (today's permitted loss, the permitted total loss,
the used percents, the next reset) and the objectives panel with the days; the overview's least-headroom-first sort
counts a rule set's headroom."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory
from guards.models import GuardState
from rules.models import AccountRuleSet, AccountRulesState, RuleSet
from rules.services import account_rule_set_assign, account_rules_observe

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 7, tzinfo=UTC)


def _account(owner, *, login, equity="10000.00"):
    account = TradingAccountFactory(owner=owner, login=login)
    snapshot = AccountSnapshotFactory(account=account, equity=Decimal(equity), balance=Decimal("10000.00"))
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    return account


def _under_rules(account, *, equity):
    account_rule_set_assign(
        actor=None,
        account=account,
        rule_set=RuleSet.objects.get(preset="two_step"),
        initial_balance="10000",
        start=START,
        reason="test",
    )
    assignment = AccountRuleSet.objects.select_related("rule_set").get(account=account)
    account_rules_observe(
        account_id=account.pk,
        assignment=assignment,
        row=None,
        snapshot_id=1,
        time=START,
        balance=Decimal(10000),
        equity=Decimal(equity),
        deals=(),
        now=START,
    )


def test_account_page_shows_the_rule_sets_headroom_and_objectives(login_client, trader):
    account = _account(trader, login=400001, equity="9590.00")
    _under_rules(account, equity="9590")
    html = login_client(trader).get(f"/accounts/{account.pk}/").content.decode()
    panel = html[html.index('id="rules-panel"') :]
    assert "Rule set: Two-step challenge" in panel
    assert "Permitted loss today" in panel
    assert "90.00" in panel
    assert "82.00 % of the daily limit used" in panel
    assert "Permitted total loss" in panel
    assert "590.00" in panel
    assert 'Trading days</dt><dd class="num">0 of 4' in panel
    assert "Mar 2" in panel
    assert "9,500.00" in panel


def test_account_page_without_a_rule_set_has_no_panel(login_client, trader):
    account = _account(trader, login=400002)
    assert 'id="rules-panel"' not in login_client(trader).get(f"/accounts/{account.pk}/").content.decode()


def test_overview_sorts_a_rule_set_account_near_its_limit_first(login_client, owner, trader):
    calm = _account(trader, login=400011)
    near = _account(trader, login=400012, equity="9590.00")  # the classic guards see only 4 %
    _under_rules(near, equity="9590")
    assert AccountRulesState.objects.get(account=near).headroom == Decimal("90")
    html = login_client(owner).get("/?sort=headroom").content.decode()
    assert html.index(f"overview-account-{near.pk}") < html.index(f"overview-account-{calm.pk}")


LATER = datetime(2026, 3, 5, 10, tzinfo=UTC)  # days after the last evaluated reading (START)
NEXT_PRAGUE_MIDNIGHT = "2026-03-05T23:00:00+00:00"  # 00:00 CET on the 6th


def test_next_reset_counts_to_the_next_boundary_when_the_stored_one_has_passed(login_client, owner, trader):
    # Evaluated on the 2nd (next_reset stored: the 2nd, 23:00 UTC), no reading since: the pages count down to
    # tonight's Prague midnight, not to a reset in the past (which read 0:00).
    account = _account(trader, login=400021, equity="9590.00")
    _under_rules(account, equity="9590")
    assert AccountRulesState.objects.get(account=account).next_reset == datetime(2026, 3, 2, 23, tzinfo=UTC)
    with time_machine.travel(LATER, tick=False):
        page = login_client(trader).get(f"/accounts/{account.pk}/").content.decode()
        overview = login_client(owner).get("/").content.decode()
    card = page[page.index('id="binding-reset"') :]
    assert f'data-until="{NEXT_PRAGUE_MIDNIGHT}"' in card[: card.index("</div>")]
    assert "13\xa0hours" in card[: card.index("</div>")]
    panel = page[page.index('id="rules-panel"') :]
    assert f'data-until="{NEXT_PRAGUE_MIDNIGHT}"' in panel
    row = overview[overview.index(f'id="overview-account-{account.pk}"') :]
    assert f'data-until="{NEXT_PRAGUE_MIDNIGHT}"' in row[: row.index("</tr>")]


def test_least_headroom_first_sorts_on_the_share_of_equity_the_headroom_column_shows(
    login_client, owner, trader
):
    # Guard-bound: peak 10 000, drawdown critical at 20 %: the floor is 8 000, equity 8 200 may lose 200, 2.44 %
    # of equity (the old key, 2 points of the peak, put it first). Rule-bound: the daily limit 9 500, equity
    # 9 730 may lose 230 today, 2.36 % of equity: nearer its end, so first. No figure at all: last.
    guard_bound = _account(trader, login=400031, equity="8200.00")
    GuardState.objects.create(
        account=guard_bound, peak_equity=Decimal("10000"), drawdown_percent=Decimal("18")
    )
    rule_bound = _account(trader, login=400032, equity="9730.00")
    _under_rules(rule_bound, equity="9730")
    unknown = _account(trader, login=400033)
    html = login_client(owner).get("/?sort=headroom").content.decode()
    rows = re.findall(r'id="overview-account-(\d+)"', html)
    assert rows == [str(rule_bound.pk), str(guard_bound.pk), str(unknown.pk)]
    shares = re.findall(r'<span class="share"[^>]*>([\d.]+) % of equity</span>', html)
    assert shares == ["2.36", "2.44"]  # what the column shows is what it is sorted on
    assert "230.00 today" in html
    assert "200.00 to DD limit" in html
