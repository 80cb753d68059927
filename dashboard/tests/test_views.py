"""The pages, rendered through the test client: who sees what, filters, fragments, forms and 403s."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory
from guards.models import GuardState, GuardStatus, Level

pytestmark = pytest.mark.django_db


def _account(owner, *, equity="10000.00", login=None, **state):
    account = TradingAccountFactory(owner=owner, **({"login": login} if login else {}))
    snapshot = AccountSnapshotFactory(account=account, equity=Decimal(equity), balance=Decimal("10000.00"))
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    if state:
        GuardState.objects.create(account=account, **state)
    return account


def test_anonymous_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url.startswith("/login/")


def test_login_page_logs_a_trader_in(client, trader):
    response = client.post("/login/", {"username": "trader", "password": "trader-pass-123"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_login_with_a_wrong_password_says_so(client, trader):
    response = client.post("/login/", {"username": "trader", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_overview_shows_a_trader_only_their_accounts(login_client, trader, other_trader):
    mine = _account(trader, login=111111)
    _account(other_trader, login=222222)
    html = login_client(trader).get("/").content.decode()
    assert f"overview-account-{mine.pk}" in html
    assert "222222" not in html


def test_overview_shows_operators_every_account(login_client, support, trader, other_trader):
    _account(trader, login=111111)
    _account(other_trader, login=222222)
    html = login_client(support).get("/").content.decode()
    assert "111111" in html
    assert "222222" in html


def test_overview_filters_by_level_and_sorts_least_headroom_first(login_client, owner, trader):
    calm = _account(trader, login=300001)
    close = _account(
        trader,
        login=300002,
        equity="8200.00",
        peak_equity=Decimal("10000"),
        drawdown_percent=Decimal("18"),
        drawdown_level=Level.WARNING,
        status=GuardStatus.WARNING,
    )
    client = login_client(owner)
    html = client.get("/").content.decode()
    assert html.index(f"overview-account-{close.pk}") < html.index(f"overview-account-{calm.pk}")
    warning_only = client.get("/?level=warning", headers={"HX-Request": "true"}).content.decode()
    assert f"overview-account-{close.pk}" in warning_only
    assert f"overview-account-{calm.pk}" not in warning_only
    assert "<html" not in warning_only  # the fragment, not the page


def test_overview_says_the_daily_loss_guard_waits_while_the_broker_day_is_unknown(
    login_client, support, trader
):
    """Until the broker's clock offset is measured there is no trading day, so no daily loss: the row says why
    instead of a bare dash."""
    waiting = _account(trader, login=400001, peak_equity=Decimal("10000"), day_anchor=None)
    counting = _account(
        trader, login=400002, equity="9800.00", peak_equity=Decimal("10000"), day_anchor=Decimal("10000"),
        daily_loss_percent=Decimal("2.00"),
    )  # fmt: skip
    html = login_client(support).get("/").content.decode()
    waiting_row = html[html.index(f'id="overview-account-{waiting.pk}"') :]
    waiting_row = waiting_row[: waiting_row.index("</tr>")]
    counting_row = html[html.index(f'id="overview-account-{counting.pk}"') :]
    counting_row = counting_row[: counting_row.index("</tr>")]
    assert ">waiting</span>" in waiting_row
    assert "clock offset is not measured" in waiting_row
    assert "waiting" not in counting_row
    assert "2.00 %" in counting_row


def test_overview_empty_state_tells_a_trader_what_to_do(login_client, trader):
    html = login_client(trader).get("/").content.decode()
    assert "Ask an owner or support to register your MT5 account" in html


def test_account_page_of_another_trader_is_a_404(login_client, trader, other_trader):
    theirs = _account(other_trader)
    assert login_client(trader).get(f"/accounts/{theirs.pk}/").status_code == 404


def test_account_page_renders_for_its_trader(login_client, trader):
    account = _account(trader)
    response = login_client(trader).get(f"/accounts/{account.pk}/")
    assert response.status_code == 200
    assert "Open positions" in response.content.decode()


def test_trader_may_not_reset_a_guard_and_is_told_why(login_client, trader):
    account = _account(trader, status=GuardStatus.HALTED, trip_id="00000000-0000-0000-0000-000000000001")
    response = login_client(trader).post(f"/accounts/{account.pk}/reset/", {"reason": "please"})
    assert response.status_code == 403
    assert "Only owners and support staff may reset a guard" in response.content.decode()


def test_guard_reset_needs_a_reason(login_client, support, trader):
    account = _account(trader, status=GuardStatus.HALTED, trip_id="00000000-0000-0000-0000-000000000001")
    response = login_client(support).post(
        f"/accounts/{account.pk}/reset/", {"reason": "  "}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "Give a reason for the reset." in response.content.decode()
    assert GuardState.objects.get(account=account).status == GuardStatus.HALTED


def test_guard_reset_by_support_puts_the_account_back_to_normal(login_client, support, trader):
    account = _account(trader, status=GuardStatus.HALTED, trip_id="00000000-0000-0000-0000-000000000001")
    response = login_client(support).post(
        f"/accounts/{account.pk}/reset/", {"reason": "checked with the trader"}
    )
    assert response.status_code == 302
    state = GuardState.objects.get(account=account)
    assert state.status == GuardStatus.NORMAL
    assert state.reset_reason == "checked with the trader"


def test_banner_shows_a_tripped_account_with_its_countdown(login_client, support, trader):
    account = _account(
        trader,
        status=GuardStatus.TRIPPED,
        trip_id="00000000-0000-0000-0000-000000000002",
        trip_guard="drawdown",
        liquidate_at=timezone.now() + timedelta(seconds=30),
        drawdown_level=Level.CRITICAL,
    )
    html = login_client(support).get("/").content.decode()
    assert f'href="/accounts/{account.pk}/"' in html
    assert "liquidation in" in html
    assert 'class="countdown"' in html


def test_chart_is_downsampled_to_a_bounded_number_of_points(login_client, trader):
    from accounts.models import AccountSnapshot

    account = _account(trader)
    now = timezone.now()
    AccountSnapshot.objects.bulk_create(
        AccountSnapshot(
            account=account,
            balance=Decimal("10000"),
            equity=Decimal("10000") - i,
            margin_free=Decimal("10000"),
            currency="USD",
            taken_at=now - timedelta(seconds=10 * i),
            server_time=now - timedelta(seconds=10 * i),
        )
        for i in range(3000)
    )
    data = login_client(trader).get(f"/accounts/{account.pk}/chart/?window=1d").json()
    assert 0 < len(data["t"]) <= 480
    assert min(Decimal(x) for x in data["low"]) == Decimal("7001.00")  # the lowest reading survives
    assert data["peak"][-1] == "10000.00"


def test_risk_page_owner_edit_with_a_bad_value_shows_the_field_message(login_client, owner):
    response = login_client(owner).post(
        "/risk/edit/",
        {
            "risk_percent": "90",
            "entry_splits": "50, 50",
            "margin_buffer_percent": "10",
            "max_snapshot_age_seconds": "60",
            "reason": "x",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "field-error" in response.content.decode()


def test_risk_page_is_read_only_for_support(login_client, support):
    client = login_client(support)
    assert client.get("/risk/").status_code == 200
    assert client.post("/risk/edit/", {"risk_percent": "1"}).status_code == 403


def test_a_trader_may_not_close_by_default_and_is_told_why(login_client, trader):
    account = _account(trader)
    response = login_client(trader).post(f"/accounts/{account.pk}/close/", {"idempotency_key": "k1"})
    assert response.status_code == 403
    assert "You may not close positions of this account" in response.content.decode()


def test_the_same_close_key_twice_is_one_request(login_client, support, trader):
    from django.utils import timezone

    from guards.models import CloseIntent, ManualCloseRequest
    from reconciliation.models import LivePosition

    account = _account(trader)
    now = timezone.now()
    LivePosition.objects.create(
        account=account,
        ticket=5,
        symbol="EURUSD",
        canonical_symbol="EURUSD",
        side="buy",
        volume=Decimal("0.10"),
        price_open=Decimal("1.085"),
        price_current=Decimal("1.086"),
        profit=Decimal("1"),
        opened_at=now,
        opened_at_server_epoch=int(now.timestamp()),
        first_seen_at=now,
        last_seen_at=now,
    )
    client = login_client(support)
    first = client.post(
        f"/accounts/{account.pk}/positions/5/close/", {"idempotency_key": "same"}, follow=True
    )
    second = client.post(
        f"/accounts/{account.pk}/positions/5/close/", {"idempotency_key": "same"}, follow=True
    )
    assert "requested" in first.content.decode()
    assert "not sent twice" in second.content.decode()
    assert ManualCloseRequest.objects.count() == 1
    assert CloseIntent.objects.filter(ticket=5).count() == 1


def test_a_close_form_without_its_key_is_refused_with_a_message(login_client, support, trader):
    account = _account(trader)
    response = login_client(support).post(f"/accounts/{account.pk}/close/", {}, follow=True)
    assert "This form is out of date" in response.content.decode()
