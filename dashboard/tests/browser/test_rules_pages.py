"""Rule sets in a real browser: the owner creates one on /risk/ (a bad value shows its field message and stores
nothing; a good one appears with its history); support reads only. Screenshots under var/screenshots/."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from accounts.services import user_create
from dashboard.tests.browser.conftest import PHONE, screenshot
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
