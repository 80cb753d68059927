"""What each role may see and change in the admin; credentials are write-only for everyone."""

import pytest
from django.urls import reverse

from accounts.models import TradingAccount
from accounts.services import trading_account_create
from accounts.tests.factories import AccountSnapshotFactory
from core.crypto import decrypt_secret

pytestmark = pytest.mark.django_db

SECRET = "Admin-Only-Secret-42"


@pytest.fixture
def account(trader):
    return trading_account_create(owner=trader, login=31337, server="Broker-Demo", password=SECRET)


def _client(client, user):
    client.force_login(user)
    return client


def test_owner_can_add_an_account_with_a_write_only_password(client, owner, trader):
    resp = _client(client, owner).post(
        reverse("admin:accounts_tradingaccount_add"),
        {
            "owner": trader.pk,
            "login": "900100",
            "server": "Broker-Live",
            "broker_company": "",
            "label": "",
            "backend": "simulated",
            "connection": "{}",
            "status": "active",
            "new_password": SECRET,
        },
    )
    assert resp.status_code == 302, resp.content
    account = TradingAccount.objects.get(login=900100)
    assert account.password_encrypted != SECRET
    assert decrypt_secret(account.password_encrypted) == SECRET


def test_owner_edit_page_never_shows_the_password_or_its_ciphertext(client, owner, account):
    resp = _client(client, owner).get(reverse("admin:accounts_tradingaccount_change", args=[account.pk]))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert 'name="new_password"' in body
    assert SECRET not in body
    assert account.password_encrypted not in body


def test_owner_leaving_the_password_empty_keeps_the_stored_one(client, owner, account, trader):
    before = account.password_encrypted
    resp = _client(client, owner).post(
        reverse("admin:accounts_tradingaccount_change", args=[account.pk]),
        {
            "owner": trader.pk,
            "login": "31337",
            "server": "Broker-Demo",
            "broker_company": "",
            "label": "renamed",
            "backend": "simulated",
            "connection": "{}",
            "status": "paused",
            "new_password": "",
        },
    )
    assert resp.status_code == 302
    account.refresh_from_db()
    assert account.label == "renamed"
    assert account.password_encrypted == before


def test_admin_refuses_a_duplicate_login_and_server_with_a_message(client, owner, account, trader):
    resp = _client(client, owner).post(
        reverse("admin:accounts_tradingaccount_add"),
        {
            "owner": trader.pk,
            "login": "31337",
            "server": "Broker-Demo",
            "backend": "simulated",
            "connection": "{}",
            "status": "active",
            "new_password": "x",
        },
    )
    assert resp.status_code == 200
    assert "An account with this login already exists on this server." in resp.content.decode()
    assert TradingAccount.objects.count() == 1


def test_admin_refuses_a_non_positive_login(client, owner, trader):
    resp = _client(client, owner).post(
        reverse("admin:accounts_tradingaccount_add"),
        {
            "owner": trader.pk,
            "login": "-5",
            "server": "S",
            "backend": "simulated",
            "connection": "{}",
            "status": "active",
        },
    )
    assert resp.status_code == 200
    assert not TradingAccount.objects.exists()


def test_support_sees_accounts_read_only_and_never_the_credentials_field(client, support, account):
    c = _client(client, support)
    assert c.get(reverse("admin:accounts_tradingaccount_changelist")).status_code == 200
    resp = c.get(reverse("admin:accounts_tradingaccount_change", args=[account.pk]))
    assert resp.status_code == 200
    body = resp.content.decode()
    assert 'name="new_password"' not in body
    assert SECRET not in body
    assert account.password_encrypted not in body
    assert 'name="_save"' not in body  # view-only page


def test_support_cannot_change_or_add_accounts(client, support, account, trader):
    c = _client(client, support)
    resp = c.post(
        reverse("admin:accounts_tradingaccount_change", args=[account.pk]),
        {
            "owner": trader.pk,
            "login": "31337",
            "server": "Hacked",
            "backend": "simulated",
            "connection": "{}",
            "status": "active",
        },
    )
    assert resp.status_code == 403
    account.refresh_from_db()
    assert account.server == "Broker-Demo"
    assert c.get(reverse("admin:accounts_tradingaccount_add")).status_code == 403


def test_support_sees_snapshots_read_only(client, support, account):
    snap = AccountSnapshotFactory(account=account)
    c = _client(client, support)
    assert c.get(reverse("admin:accounts_accountsnapshot_changelist")).status_code == 200
    assert c.get(reverse("admin:accounts_accountsnapshot_change", args=[snap.pk])).status_code == 200
    assert c.get(reverse("admin:accounts_accountsnapshot_add")).status_code == 403


def test_support_cannot_manage_users(client, support):
    resp = _client(client, support).get(reverse("admin:accounts_user_add"))
    assert resp.status_code == 403


def test_owner_can_manage_users(client, owner):
    assert _client(client, owner).get(reverse("admin:accounts_user_add")).status_code == 200


def test_trader_cannot_enter_the_admin(client, trader, account):
    resp = _client(client, trader).get(reverse("admin:accounts_tradingaccount_changelist"))
    assert resp.status_code == 302
    assert "/admin/login/" in resp["Location"]


def test_anonymous_is_sent_to_login(client):
    resp = client.get(reverse("admin:index"))
    assert resp.status_code == 302
