"""Cached API reads cost no query: the signed-in user and their access to the account are cached beside the read
(core/readcache.py), and anything that changes who may see what makes them stale at once (accounts/signals.py)."""

import threading

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Role, TradingAccount
from accounts.services import trading_account_create
from core.readcache import ACCESS_EPOCH_KEY

pytestmark = pytest.mark.django_db

CACHED_READS = (
    "guards-api:account-guards",
    "reconciliation-api:positions",
    "reconciliation-api:reconciliation",
)


def _bearer(user) -> APIClient:
    """A client that authenticates the way real clients do (a JWT), not force_authenticate."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def account(trader):
    return trading_account_create(owner=trader, login=7001, server="Cache-Demo")


@pytest.mark.parametrize("name", CACHED_READS)
def test_a_cached_read_costs_no_query(name, trader, account, django_assert_num_queries):
    client = _bearer(trader)
    url = reverse(name, kwargs={"account_id": account.pk})
    first = client.get(url)
    assert first.status_code == 200

    with django_assert_num_queries(0):
        again = client.get(url)

    assert again.status_code == 200
    assert again.json() == first.json()


def test_a_deactivated_user_is_refused_at_once(trader, account):
    client = _bearer(trader)
    url = reverse("guards-api:account-guards", kwargs={"account_id": account.pk})
    assert client.get(url).status_code == 200

    trader.is_active = False
    trader.save()

    assert client.get(url).status_code == 401


def test_an_account_given_to_another_trader_is_a_404_for_the_first_at_once(trader, other_trader, account):
    client = _bearer(trader)
    url = reverse("guards-api:account-guards", kwargs={"account_id": account.pk})
    assert client.get(url).status_code == 200

    account.owner = other_trader
    account.save(update_fields=["owner", "updated_at"])

    assert client.get(url).status_code == 404
    assert _bearer(other_trader).get(url).status_code == 200


def test_support_moved_to_the_trader_role_loses_other_accounts_at_once(support, account):
    client = _bearer(support)
    url = reverse("reconciliation-api:positions", kwargs={"account_id": account.pk})
    assert client.get(url).status_code == 200

    support.groups.set([Group.objects.get(name=Role.TRADER)])

    assert client.get(url).status_code == 404


def test_a_refusal_is_never_cached(trader, other_trader, account):
    client = _bearer(other_trader)
    url = reverse("guards-api:account-guards", kwargs={"account_id": account.pk})
    assert client.get(url).status_code == 404

    account.owner = other_trader
    account.save(update_fields=["owner", "updated_at"])

    assert client.get(url).status_code == 200


def test_the_sync_saving_the_account_keeps_the_access_cache(trader, account):
    """The sync writes the account's latest snapshot every ~10 s: that must not empty the access cache."""
    before = cache.get(ACCESS_EPOCH_KEY)
    account.save(update_fields=["latest_snapshot", "updated_at"])
    assert cache.get(ACCESS_EPOCH_KEY) == before


def test_an_evicted_epoch_never_revives_older_entries(trader, other_trader, account):
    client = _bearer(trader)
    url = reverse("guards-api:account-guards", kwargs={"account_id": account.pk})
    assert client.get(url).status_code == 200
    TradingAccount.objects.filter(pk=account.pk).update(
        owner=other_trader
    )  # no signal: the cache still allows
    assert client.get(url).status_code == 200
    cache.delete(ACCESS_EPOCH_KEY)  # Redis evicted the epoch: a new one starts, unlike any older

    assert client.get(url).status_code == 404


def test_the_cached_user_never_holds_the_password_hash(trader, account):
    _bearer(trader).get(reverse("guards-api:account-guards", kwargs={"account_id": account.pk}))

    entry = cache.get(f"principal:{trader.pk}")

    assert entry is not None
    assert "password" not in entry[2]
    assert trader.password not in repr(entry)


def test_jwt_reads_work_with_redis_down(trader, account, settings):
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": "dead",
        }
    }
    caches._settings = caches.settings = settings.CACHES  # type: ignore[attr-defined]
    caches._connections = threading.local()  # type: ignore[attr-defined]
    try:
        client = _bearer(trader)
        for name in CACHED_READS:
            assert client.get(reverse(name, kwargs={"account_id": account.pk})).status_code == 200
    finally:
        caches._connections = threading.local()  # type: ignore[attr-defined]
