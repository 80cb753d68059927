"""The binding permitted loss on the pages and in the API: the smaller of the daily-loss guard's and the rule set's,
named by its source, in the account page's top cards, the overview's Headroom column and the guard summary."""

from decimal import Decimal

import pytest

from dashboard.tests.test_rules_panel import _account, _under_rules
from guards.models import GuardState

pytestmark = pytest.mark.django_db


def _guarded(trader, *, login, day_anchor):
    """Equity 9 590 under the two-step rule set (initial 10 000: 90.00 left today, 590.00 overall) with the
    daily-loss guard's anchor at `day_anchor` (5 % critical) and the peak at 10 000 (20 %: 1 590.00 overall)."""
    account = _account(trader, login=login, equity="9590.00")
    GuardState.objects.create(account=account, day_anchor=Decimal(day_anchor), peak_equity=Decimal("10000"))
    _under_rules(account, equity="9590")
    return account


def _cards(html: str) -> str:
    summary = html[html.index('id="account-summary"') :]
    return summary[: summary.index("</section>")]


def test_the_top_card_shows_the_rule_set_when_it_leaves_less(login_client, trader):
    account = _guarded(trader, login=410001, day_anchor="9800")  # the guard leaves 280.00
    cards = _cards(login_client(trader).get(f"/accounts/{account.pk}/").content.decode())
    today = cards[cards.index('id="binding-today"') :]
    assert "90.00" in today.split("</div>")[0]
    assert "bound by the rule set Two-step challenge" in today.split("</div>")[0]
    total = cards[cards.index('id="binding-total"') :].split("</div>")[0]
    assert "590.00" in total
    assert "rule set Two-step challenge" in total
    assert 'id="binding-reset"' in cards


def test_the_top_card_shows_the_daily_loss_guard_when_it_leaves_less(login_client, trader):
    account = _guarded(trader, login=410002, day_anchor="10040")  # 9590 - 10040 * 0.95 = 52.00
    html = login_client(trader).get(f"/accounts/{account.pk}/").content.decode()
    today = _cards(html)[_cards(html).index('id="binding-today"') :].split("</div>")[0]
    assert "52.00" in today
    assert "bound by the daily-loss guard" in today
    assert "binds</span>" in html  # the guard panel marks the binding figure too


def test_the_overview_headroom_column_shows_the_binding_figure_and_its_source(login_client, owner, trader):
    account = _guarded(trader, login=410003, day_anchor="9800")
    html = login_client(owner).get("/").content.decode()
    row = html[html.index(f'id="overview-account-{account.pk}"') :].split("</tr>")[0]
    cell = row[row.index('class="num headroom"') :]
    assert "90.00 today" in cell
    assert "Two-step challenge" in cell
    assert "590.00" in cell


def test_the_api_guard_summary_names_the_binding_limit(api_client, trader):
    account = _guarded(trader, login=410004, day_anchor="10040")
    api_client.force_authenticate(trader)
    body = api_client.get(f"/api/v1/accounts/{account.pk}/guards/").json()
    assert body["headroom"]["daily_loss_permitted"] == "52.00"  # the existing field is unchanged
    assert body["binding"]["today"] == "52.00"
    assert (body["binding"]["today_source"], body["binding"]["today_source_label"]) == (
        "daily_loss_guard",
        "daily-loss guard",
    )
    assert (body["binding"]["total"], body["binding"]["total_source"]) == ("590.00", "rule_set")
