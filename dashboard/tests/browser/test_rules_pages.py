"""Rule sets in a real browser: the owner creates one on /risk/ (a bad value shows its field message and stores
nothing; a good one appears with its history); support reads only. Screenshots under var/screenshots/."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from accounts.services import user_create
from dashboard.tests.browser.conftest import PHONE, SCREENSHOTS, screenshot
from rules.models import RuleSet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def people(db):
    return {
        "owner": user_create(username="olive", password="owner-pass-123", role=Role.OWNER),
        "support": user_create(username="sam", password="support-pass-123", role=Role.SUPPORT),
        "trader": user_create(username="tess", password="trader-pass-123", role=Role.TRADER),
    }


def test_owner_creates_a_rule_set_on_the_risk_page_and_support_only_reads(live_asgi, log_in, people):
    page = log_in("olive", "owner-pass-123")
    page.goto(f"{live_asgi}/risk/")
    expect(page.locator("#rule-sets")).to_contain_text("Two-step challenge")

    form = page.locator("#rule-set-new")
    form.get_by_role("link", name="One-step challenge").click()  # htmx: the form filled from the preset
    expect(page.locator("#id_new-max_loss_mode")).to_have_value("eod_trailing")
    page.fill("#id_new-name", "Desk A")
    page.fill("#id_new-daily_loss_percent", "-2")
    page.fill("#id_new-timezone", "Mars/Olympus")
    page.fill("#id_new-reason", "Desk A programme")
    page.locator("#rule-set-new button[type=submit]").click()
    expect(page.locator("#rule-set-new .field-error").first).to_be_visible()
    expect(page.locator("#rule-set-new")).to_contain_text("time zone")
    expect(page.locator("#id_new-timezone")).to_have_value("Mars/Olympus")
    screenshot(page, "risk-rule-set-error")
    assert not RuleSet.objects.filter(name="Desk A").exists()

    page.fill("#id_new-daily_loss_percent", "2.5")
    page.fill("#id_new-timezone", "Europe/London")
    page.locator("#rule-set-new button[type=submit]").click()
    page.wait_for_url(f"{live_asgi}/risk/?rule_set=*")
    row = RuleSet.objects.get(name="Desk A")
    expect(page.locator(f"#rule-set-row-{row.pk}")).to_contain_text("2.5 %")
    expect(page.locator(f"#rule-set-row-{row.pk}")).to_contain_text("Europe/London")
    expect(page.locator(f"#rule-set-{row.pk}")).to_have_attribute("open", "")  # its history opened
    expect(page.locator(f"#rule-set-{row.pk}")).to_contain_text("Desk A programme")
    expect(page.locator(f"#rule-set-{row.pk}")).to_contain_text("olive")
    screenshot(page, "risk-rule-sets")
    assert (row.preset, row.max_loss_mode) == ("one_step", "eod_trailing")

    support = log_in("sam", "support-pass-123")
    support.goto(f"{live_asgi}/risk/")
    expect(support.locator(f"#rule-set-row-{row.pk}")).to_be_visible()
    expect(support.locator("#rule-set-new")).to_have_count(0)
    expect(support.locator("form[action^='/rules/']")).to_have_count(0)

    phone = log_in("olive", "owner-pass-123", viewport=PHONE)
    phone.goto(f"{live_asgi}/risk/")
    screenshot(phone, "risk-phone")
    # At phone width the rule-sets table stacks each rule set (a label beside every term): nothing scrolls
    # sideways, and a rule set's limits are on screen.
    table = phone.locator("table.rule-sets")
    wrap_scrolls = table.evaluate("t => t.parentElement.scrollWidth > t.parentElement.clientWidth")
    assert not wrap_scrolls
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    two_step = phone.locator(f"#rule-set-row-{RuleSet.objects.get(preset='two_step').pk}")
    for term in ("Daily loss", "Max loss", "Day starts", "Target", "Accounts"):
        cell = two_step.locator(f"td[data-label='{term}']")
        expect(cell).to_be_visible()
        box = cell.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"]
    expect(two_step.locator("td[data-label='Daily loss']")).to_contain_text("5 %")
    table.screenshot(path=str(SCREENSHOTS / "risk-rule-sets-phone.png"))


def _funded(trader, *, login, day_anchor):
    """Equity 9 590 under the two-step rule set (90.00 left today) with the daily-loss guard's anchor at
    `day_anchor` (5 % critical) and the peak at 10 000."""
    from decimal import Decimal

    from dashboard.tests.test_rules_panel import _account, _under_rules
    from guards.models import GuardState

    account = _account(trader, login=login, equity="9590.00")
    GuardState.objects.create(account=account, day_anchor=Decimal(day_anchor), peak_equity=Decimal("10000"))
    _under_rules(account, equity="9590")
    return account


def test_account_top_cards_show_the_binding_permitted_loss_and_the_overview_keeps_headroom_on_a_phone(
    live_asgi, log_in, people
):
    guard_binds = _funded(people["trader"], login=420001, day_anchor="10040")  # the guard leaves 52.00
    rules_bind = _funded(people["trader"], login=420002, day_anchor="9800")  # the rule set leaves 90.00

    page = log_in("tess", "trader-pass-123")
    page.goto(f"{live_asgi}/accounts/{guard_binds.pk}/")
    card = page.locator("#binding-today")
    expect(card).to_contain_text("52.00")
    expect(card).to_contain_text("bound by the daily-loss guard")
    expect(page.locator("#binding-total")).to_contain_text("590.00")
    expect(page.locator("#binding-reset .countdown")).to_be_visible()
    screenshot(page, "account-binding")
    page.goto(f"{live_asgi}/accounts/{rules_bind.pk}/")
    expect(page.locator("#binding-today")).to_contain_text("90.00")
    expect(page.locator("#binding-today")).to_contain_text("bound by the rule set Two-step challenge")

    # A countdown that reaches its time re-reads the live regions, which carry the next reset (not 0:00).
    reset = page.locator("#binding-reset .countdown")
    ahead = reset.get_attribute("data-until")
    with page.expect_response(lambda r: r.url.endswith(f"/accounts/{rules_bind.pk}/live/")):
        reset.evaluate("el => el.setAttribute('data-until', new Date(Date.now() - 1000).toISOString())")
    expect(page.locator("#binding-reset .countdown")).to_have_attribute("data-until", ahead)
    expect(page.locator("#binding-reset .countdown")).not_to_have_text("0:00")

    phone = log_in("sam", "support-pass-123", viewport=PHONE)
    row = phone.locator(f"#overview-account-{rules_bind.pk}")
    headroom = row.locator("td.headroom")
    expect(headroom).to_be_visible()
    expect(headroom).to_contain_text("90.00 today")
    box = headroom.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= PHONE["width"]  # on screen, no sideways scrolling
    expect(row.locator("td:nth-child(9) .badge")).to_be_visible()  # the guard state
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "overview-phone")
    phone.goto(f"{live_asgi}/accounts/{rules_bind.pk}/")
    screenshot(phone, "account-binding-phone")

    owner = log_in("olive", "owner-pass-123")
    owner.goto(f"{live_asgi}/accounts/{rules_bind.pk}/")
    card = owner.locator("#account-rule-set")
    expect(card).to_contain_text("Two-step challenge")
    card.locator("summary").click()
    expect(owner.locator("#rules-assign-form select[name=rule_set]")).to_be_visible()
    owner.locator("#account-rule-set").screenshot(path=str(SCREENSHOTS / "account-rule-set-card.png"))
