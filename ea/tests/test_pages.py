"""The account page of an `ea` account shows the EA's last push, its version and its health (ea/selectors.py)."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import GatewayBackend
from accounts.tests.factories import TradingAccountFactory
from ea.models import EaLink
from ea.selectors import EaHealth, ea_status
from ea.services import ea_link_create

pytestmark = pytest.mark.django_db


def _push(
    link: EaLink, *, age_seconds: float = 3, connected: bool = True, trade_allowed: bool = True
) -> EaLink:
    link.latest_push = {
        "terminal": {
            "connected": connected,
            "trade_allowed": trade_allowed,
            "ping_last": 41_250,
            "build": 4755,
        }
    }
    link.last_push_at = timezone.now() - timedelta(seconds=age_seconds)
    link.last_push_server_time_msc = 1_764_500_000_000  # 2025-11-30 10:53:20 on the broker's clock
    link.ea_version = "1.2.0"
    link.pushes_accepted = 17
    link.save()
    return link


def _page(user, account) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/accounts/{account.pk}/")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def ea_account(trader):
    return TradingAccountFactory(owner=trader, backend=GatewayBackend.EA)


def test_the_account_page_shows_the_eas_last_push_version_and_health(trader, ea_account):
    link, _key = ea_link_create(account=ea_account)
    _push(link)

    html = _page(trader, ea_account)

    assert 'id="account-ea"' in html
    assert 'data-field="ea-version">1.2.0<' in html
    assert '<span class="badge ok" data-field="ea-health">ok</span>' in html
    assert "build 4755 · ping 41.2 ms" in html
    assert "17 accepted · 0 refused" in html
    assert 'title="broker time 2025-11-30 10:53:20"' in html


def test_a_silent_ea_is_shown_as_such_with_what_it_means(support, ea_account):
    link, _key = ea_link_create(account=ea_account, fresh_for_seconds=60)
    _push(link, age_seconds=600)

    html = _page(support, ea_account)

    assert '<span class="badge bad" data-field="ea-health">silent</span>' in html
    assert "syncs fail until it pushes again" in html


def test_an_ea_account_without_a_key_says_who_issues_one(owner, ea_account):
    html = _page(owner, ea_account)

    assert '<span class="badge bad" data-field="ea-health">no key</span>' in html
    assert "an owner issues one in the admin" in html


def test_a_refused_push_after_the_last_accepted_one_is_flagged(trader, ea_account):
    link, _key = ea_link_create(account=ea_account)
    _push(link)
    link.pushes_refused, link.last_refusal, link.last_refusal_at = 1, "push for 1@Other", timezone.now()
    link.save()

    html = _page(trader, ea_account)

    assert "since the last push" in html
    assert "push for 1@Other" in html


def test_an_account_on_another_backend_has_no_ea_panel(trader):
    account = TradingAccountFactory(owner=trader)

    assert 'id="account-ea"' not in _page(trader, account)


@pytest.mark.parametrize(
    ("push", "expected"),
    [
        ({}, EaHealth.OK),
        ({"connected": False}, EaHealth.TERMINAL_DISCONNECTED),
        ({"trade_allowed": False}, EaHealth.TRADING_DISABLED),
        ({"age_seconds": 301}, EaHealth.SILENT),
    ],
)
def test_health_names_the_most_urgent_problem(ea_account, push, expected):
    link, _key = ea_link_create(account=ea_account, fresh_for_seconds=300)

    assert ea_status(link=_push(link, **push)).health == expected


def test_an_ea_that_never_pushed(ea_account):
    link, _key = ea_link_create(account=ea_account)

    status = ea_status(link=link)

    assert status.health == EaHealth.NEVER_PUSHED
    assert status.last_push_at is None
