"""The pages in a real browser (Chromium) against a live ASGI server with the Redis channel layer.

Each test leaves screenshots under var/screenshots/ (desktop 1280x800 and phone width)."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from accounts.services import user_create
from accounts.tests.factories import TradingAccountFactory
from core.realtime import realtime_flush
from dashboard.tests.browser.conftest import PHONE, screenshot
from guards.models import AlertKind, Guard, GuardState, GuardStatus, Level
from guards.services.alerts import alert_record
from pipeline.services import account_sync
from reconciliation.models import EventState, ReconciliationEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def people(db):
    return {
        "owner": user_create(username="olive", password="owner-pass-123", role=Role.OWNER),
        "support": user_create(username="sam", password="support-pass-123", role=Role.SUPPORT),
        "trader": user_create(username="tess", password="trader-pass-123", role=Role.TRADER),
        "trader2": user_create(username="theo", password="trader2-pass-123", role=Role.TRADER),
    }


@pytest.fixture
def sim(db):
    """make(owner) -> (account, terminal, gateway): a trading account with its own simulated terminal."""
    from integrations.mt5.simulated import TerminalRegistry
    from reconciliation.tests.conftest import SimAccount

    registry = TerminalRegistry()

    def make(owner):
        account = TradingAccountFactory(owner=owner)
        cache.delete(f"recon:lock:account:{account.pk}")
        terminal = registry.create_account(account.login, server=account.server, password="sim-pass")
        terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
        return SimAccount(account, terminal)

    return make


def _sync(s) -> None:
    result = account_sync(account=s.account, gateway=s.gateway)
    assert result.ok, result.error
    realtime_flush()


def test_each_role_logs_in_and_sees_exactly_its_accounts(live_asgi, log_in, people, sim):
    tess, theo = sim(people["trader"]), sim(people["trader2"])
    _sync(tess)
    _sync(theo)

    page = log_in("tess", "trader-pass-123")
    expect(page.locator(f"#overview-account-{tess.account.pk}")).to_be_visible()
    expect(page.locator(f"#overview-account-{theo.account.pk}")).to_have_count(0)
    screenshot(page, "overview-trader")

    for username, password in (("olive", "owner-pass-123"), ("sam", "support-pass-123")):
        page = log_in(username, password)
        expect(page.locator("#overview-rows tr")).to_have_count(2)
    screenshot(page, "overview-support")

    phone = log_in("sam", "support-pass-123", viewport=PHONE)
    screenshot(phone, "overview-phone")

    page.goto(f"{live_asgi}/accounts/{tess.account.pk}/")
    expect(page.locator("#account-summary")).to_be_visible()
    screenshot(page, "account")
    phone.goto(f"{live_asgi}/accounts/{tess.account.pk}/")
    screenshot(phone, "account-phone")

    page.goto(f"{live_asgi}/risk/")
    screenshot(page, "risk")

    theirs = log_in("tess", "trader-pass-123")
    response = theirs.goto(f"{live_asgi}/accounts/{theo.account.pk}/")
    assert response is not None
    assert response.status == 404


def test_login_failure_is_shown_on_the_form(live_asgi, browser, browser_context_args, people):
    page = browser.new_context(**browser_context_args).new_page()
    page.goto(f"{live_asgi}/login/")
    page.fill("#id_username", "tess")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("correct username and password")
    screenshot(page, "login")


def test_a_sync_that_changes_equity_updates_the_overview_row_without_a_reload(live_asgi, log_in, people, sim):
    tess = sim(people["trader"])
    _sync(tess)
    page = log_in("sam", "support-pass-123")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    page.evaluate("window.__marker = 'no reload'")
    equity = page.locator(f"#overview-account-{tess.account.pk} [data-field=equity]")
    expect(equity).to_have_text("10,000.00")
    total_equity = page.locator("#fleet-summary .stat.wide .value")
    expect(total_equity).to_contain_text("10,000.00")

    tess.terminal.sim_open_manual("EURUSD", "buy", "1.00")
    tess.terminal.sim_set_price("EURUSD", "1.08000", "1.08010")
    _sync(tess)

    expect(equity).not_to_have_text("10,000.00", timeout=5000)
    # the summary cards follow (coalesced: at most one push per LIVE_SUMMARY_SECONDS)
    expect(total_equity).not_to_contain_text("10,000.00", timeout=5000)
    expect(total_equity).to_contain_text(equity.inner_text())
    assert page.evaluate("window.__marker") == "no reload"
    screenshot(page, "overview-live")


def test_a_filtered_overview_is_pushed_only_the_rows_it_shows(live_asgi, log_in, people, sim):
    """The page tells its socket which rows it shows (on connect and after every table swap): another account's
    sync sends it no row, while the rows on screen still update."""
    tess, theo = sim(people["trader"]), sim(people["trader2"])
    tess.terminal.sim_open_manual(
        "EURUSD", "buy", "0.10"
    )  # a manual trade: a divergence on tess's account only
    _sync(tess)
    _sync(theo)
    page = log_in("sam", "support-pass-123")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    page.evaluate(
        "window.__frames = []; document.addEventListener('htmx:wsBeforeMessage',"
        " (e) => window.__frames.push(e.detail.message))"
    )
    expect(page.locator("#overview-rows tr")).to_have_count(2)
    _sync(theo)  # both rows shown: theo's is pushed
    page.wait_for_function(f"window.__frames.some((f) => f.includes('overview-account-{theo.account.pk}'))")

    page.check("input[name=divergences]")  # the table is swapped for tess's row alone
    expect(page.locator("#overview-rows tr")).to_have_count(1)
    page.wait_for_timeout(300)  # the rows message goes out after the swap settles
    page.evaluate("window.__frames = []")
    theo.terminal.sim_set_price("EURUSD", "1.08000", "1.08010")
    _sync(theo)
    tess.terminal.sim_set_price("EURUSD", "1.08000", "1.08010")
    _sync(tess)
    page.wait_for_function(f"window.__frames.some((f) => f.includes('overview-account-{tess.account.pk}'))")
    frames = page.evaluate("window.__frames")
    assert not any(f"overview-account-{theo.account.pk}" in frame for frame in frames)


def test_repeated_failed_logins_end_on_the_styled_lockout_page(
    live_asgi, browser, browser_context_args, people
):
    from django.conf import settings

    page = browser.new_context(**browser_context_args).new_page()
    page.goto(f"{live_asgi}/login/")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.fill("#id_username", "tess")
        page.fill("#id_password", "wrong")
        page.click("button[type=submit]")
        page.wait_for_load_state()
    expect(page.locator("h1")).to_have_text("Locked out")
    expect(page.locator(".topbar .brand")).to_be_visible()  # the site's layout, not a bare page
    expect(page.locator(".card.login [role=alert]")).to_contain_text("Too many failed login attempts")
    assert page.evaluate("getComputedStyle(document.querySelector('.card')).display") != "inline"
    screenshot(page, "locked-out")


def test_an_ea_account_page_shows_the_eas_health(live_asgi, log_in, people):
    from accounts.models import GatewayBackend
    from ea.services import ea_link_create

    account = TradingAccountFactory(owner=people["trader"], backend=GatewayBackend.EA)
    link, _key = ea_link_create(account=account)
    link.latest_push = {
        "terminal": {"connected": True, "trade_allowed": True, "ping_last": 38_500, "build": 4755}
    }
    link.last_push_at, link.ea_version, link.pushes_accepted = timezone.now(), "1.0.0", 42
    link.save()

    page = log_in("tess", "trader-pass-123")
    page.goto(f"{live_asgi}/accounts/{account.pk}/")
    panel = page.locator("#account-ea")
    expect(panel.locator("[data-field=ea-health]")).to_have_text("ok")
    expect(panel.locator("[data-field=ea-version]")).to_have_text("1.0.0")
    expect(panel).to_contain_text("42 accepted")
    panel.scroll_into_view_if_needed()
    screenshot(page, "account-ea")


def test_a_new_divergence_appears_live_and_support_resolves_it_for_the_owner_to_see(
    live_asgi, log_in, people, sim
):
    tess = sim(people["trader"])
    _sync(tess)
    support = log_in("sam", "support-pass-123")
    support.goto(f"{live_asgi}/divergences/")
    owner = log_in("olive", "owner-pass-123")
    owner.goto(f"{live_asgi}/divergences/")
    expect(support.locator("#live-status")).to_have_attribute("data-state", "open")
    expect(owner.locator("#live-status")).to_have_attribute("data-state", "open")

    tess.terminal.sim_open_manual("EURUSD", "sell", "0.10")  # no bot trade expects it: unmatched
    _sync(tess)
    event = ReconciliationEvent.objects.get(account=tess.account)
    row = support.locator(f"#event-{event.pk}")
    expect(row).to_contain_text("Unmatched position", timeout=5000)
    expect(owner.locator(f"#event-{event.pk}")).to_be_visible()

    row.get_by_role("button", name="Unmatched position").click()
    row.get_by_role("button", name="Resolve").click()
    expect(row.locator(".field-error")).to_contain_text("Say how the divergence was resolved")
    screenshot(support, "divergences-detail")
    row.locator("textarea[name=note]").fill("Manual hedge by the trader, agreed by phone")
    row.get_by_role("button", name="Resolve").click()
    expect(row.locator("[data-state]")).to_have_attribute("data-state", "resolved")

    expect(owner.locator(f"#event-{event.pk} [data-state]")).to_have_attribute(
        "data-state", "resolved", timeout=5000
    )
    assert ReconciliationEvent.objects.get(pk=event.pk).state == EventState.RESOLVED
    screenshot(owner, "divergences")


def test_a_re_read_after_a_reconnect_keeps_an_open_divergence_and_the_note_being_written(
    live_asgi, log_in, people, sim
):
    tess = sim(people["trader"])
    tess.terminal.sim_open_manual("EURUSD", "sell", "0.10")  # unmatched
    _sync(tess)
    event = ReconciliationEvent.objects.get(account=tess.account)
    support = log_in("sam", "support-pass-123")
    support.goto(f"{live_asgi}/divergences/")
    row = support.locator(f"#event-{event.pk}")
    row.get_by_role("button", name="Unmatched position").click()
    row.locator("textarea[name=note]").fill("Half-written: the trader says")

    # What the page does after its socket reconnects (static/dashboard/app.js): re-read the table.
    with support.expect_response(lambda r: "/divergences/" in r.url and r.request.method == "GET") as reread:
        support.evaluate("htmx.trigger(document.body, 'live:resync')")
    assert f"open_detail={event.pk}" in reread.value.url
    expect(row.locator(".detail-row")).to_be_visible()
    expect(row.locator("textarea[name=note]")).to_have_value("Half-written: the trader says")


def test_a_guard_trip_shows_the_banner_with_a_countdown_on_another_users_open_page(
    live_asgi, log_in, people, sim
):
    tess = sim(people["trader"])
    _sync(tess)
    support = log_in("sam", "support-pass-123")
    support.goto(f"{live_asgi}/risk/")  # any page carries the banner
    expect(support.locator("#live-status")).to_have_attribute("data-state", "open")
    expect(support.locator("#guard-banner a")).to_have_count(0)

    GuardState.objects.update_or_create(
        account=tess.account,
        defaults={
            "status": GuardStatus.TRIPPED,
            "trip_id": uuid.uuid4(),
            "trip_guard": Guard.DRAWDOWN,
            "tripped_at": timezone.now(),
            "liquidate_at": timezone.now() + timedelta(seconds=90),
            "drawdown_level": Level.CRITICAL,
            "drawdown_percent": Decimal("21.5"),
        },
    )
    alert_record(
        account_id=tess.account.pk,
        kind=AlertKind.LIQUIDATION_SCHEDULED,
        guard=Guard.DRAWDOWN,
        level=Level.CRITICAL,
        now=timezone.now(),
        message="Drawdown critical: liquidation scheduled",
    )
    realtime_flush()

    banner = support.locator(f"#guard-banner a[data-account='{tess.account.pk}']")
    expect(banner).to_be_visible(timeout=5000)
    countdown = banner.locator(".countdown")
    first = countdown.inner_text()
    assert re.fullmatch(r"1:[0-9]{2}|[0-9]{1,2}:[0-9]{2}", first), first
    expect(countdown).not_to_have_text(first, timeout=3000)  # it counts down
    screenshot(support, "guard-banner")


def test_an_idle_page_keeps_its_socket_for_60_seconds(live_asgi, log_in, people):
    page = log_in("sam", "support-pass-123")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")
    page.wait_for_timeout(62_000)
    assert page.get_attribute("body", "data-ws-opens") == "1"
    expect(page.locator("#live-status")).to_have_attribute("data-state", "open")


def test_a_double_click_on_close_sends_one_order(live_asgi, log_in, people, sim):
    from guards.models import CloseIntent, ManualCloseRequest
    from guards.services.manual_close import manual_close_execute

    tess = sim(people["trader"])
    ticket = tess.terminal.sim_open_manual("EURUSD", "buy", "0.10")
    _sync(tess)
    page = log_in("sam", "support-pass-123")
    page.goto(f"{live_asgi}/accounts/{tess.account.pk}/")
    button = page.locator(f"#position-{ticket} button")
    button.click()  # first step: asks to confirm
    expect(button).to_contain_text("Confirm")
    page.wait_for_timeout(500)
    button.dblclick()
    expect(page.locator(".messages")).to_contain_text(f"Close of position #{ticket} requested")
    screenshot(page, "account-close")

    (request,) = ManualCloseRequest.objects.filter(account=tess.account)
    assert CloseIntent.objects.filter(account=tess.account, ticket=ticket).count() == 1
    manual_close_execute(request=request, gateway=tess.gateway)  # what the worker does with the request
    manual_close_execute(request=request, gateway=tess.gateway)  # a redelivered task changes nothing
    assert tess.terminal.positions_get(ticket=ticket) in ((), None)
    intent = CloseIntent.objects.get(account=tess.account, ticket=ticket)
    assert intent.order_sends == 1


def test_an_account_under_a_rule_set_shows_its_objectives_and_days(live_asgi, log_in, people):
    """Two trading days under the two-step rule set, evaluated by the guards on stored snapshots with the terminal's
    deals: the panel shows the headroom, the trading days against the minimum, the profit target met and one row
    per day (newest first) with its base, limit, lowest equity and closed profit."""
    from guards.tests.conftest import START, evaluate_reading, make_snapshot
    from guards.tests.test_rules_live import _deal
    from rules.models import RuleSet
    from rules.services import account_rule_set_assign

    account = TradingAccountFactory(owner=people["trader"])
    account_rule_set_assign(
        actor=None,
        account=account,
        rule_set=RuleSet.objects.get(preset="two_step"),
        initial_balance="10000",
        start=START,
        reason="challenge",
    )
    day2 = START + timedelta(days=1)
    readings = [
        (START, "10000", "10000", []),
        (START + timedelta(minutes=10), "10600", "10550", [
            _deal(1, position=11, entry=0, at=START + timedelta(minutes=1)),
            _deal(2, position=11, entry=1, at=START + timedelta(minutes=6), profit="600"),
        ]),
        (day2 + timedelta(minutes=10), "11100", "11100", [
            _deal(3, position=12, entry=0, at=day2 + timedelta(minutes=1), commission="-4"),
            _deal(4, position=12, entry=1, at=day2 + timedelta(minutes=6), profit="504"),
        ]),
    ]  # fmt: skip
    for at, balance, equity, deals in readings:
        snapshot = make_snapshot(account, balance=balance, equity=equity, at=at)
        evaluate_reading(account=account, snapshot=snapshot, deals=deals, now=at)

    page = log_in("tess", "trader-pass-123")
    page.goto(f"{live_asgi}/accounts/{account.pk}/")
    panel = page.locator("#rules-panel")
    expect(panel.locator("h3")).to_contain_text("Rule set: Two-step challenge")
    objectives = panel.locator("dl.objectives")
    expect(objectives.locator("dt:has-text('Trading days') + dd")).to_have_text("2 of 4")
    expect(objectives.locator("dt:has-text('Profit target') + dd")).to_have_text(
        re.compile(r"10\.00 %\s+met")
    )
    rows = panel.locator("table caption:has-text('Days') ~ tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Mar 3")
    expect(rows.nth(0)).to_contain_text("500.00")  # profit + commission of the day's trade
    expect(rows.nth(1)).to_contain_text("Mar 2")
    expect(rows.nth(1)).to_contain_text("600.00")
    panel.scroll_into_view_if_needed()
    screenshot(page, "account-rules")
