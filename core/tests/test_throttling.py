"""Throttles on the shared cache: per user, per IP for anonymous callers, stricter on the token endpoint; a 429
carries Retry-After and the one error shape."""

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_rates(monkeypatch):
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "2/min", "token": "2/min"}
    )
    _forget_throttles()
    yield
    _forget_throttles()


def _forget_throttles():
    """Only the throttle history (other tests' cache entries stay): DRF keys it `throttle_<scope>_<ident>`."""
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match="*throttle_*"))
    if keys:
        client.delete(*keys)


def _assert_throttled(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert set(body) == {"message", "extra"}
    assert body["extra"]["retry_after"] == int(response["Retry-After"])


def test_a_user_is_throttled_per_user(api_client, trader, other_trader, low_rates):
    api_client.force_authenticate(trader)
    for _ in range(3):
        assert api_client.get(reverse("accounts-api:me")).status_code == 200
    _assert_throttled(api_client.get(reverse("accounts-api:me")))
    api_client.force_authenticate(other_trader)  # another user, same IP: their own budget
    assert api_client.get(reverse("accounts-api:me")).status_code == 200


def test_anonymous_callers_are_throttled_per_ip(api_client, trader, low_rates, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "token", "100/min")
    url = reverse("token_obtain_pair")
    credentials = {"username": "trader", "password": "trader-pass-123"}
    for _ in range(2):
        assert api_client.post(url, credentials, format="json").status_code == 200
    _assert_throttled(api_client.post(url, credentials, format="json"))
    assert api_client.post(url, credentials, format="json", REMOTE_ADDR="10.9.9.9").status_code == 200


def test_the_token_endpoint_is_stricter(api_client, trader, low_rates, monkeypatch):
    monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "anon", "100/min")
    url = reverse("token_obtain_pair")
    credentials = {"username": "trader", "password": "trader-pass-123"}
    for _ in range(2):
        assert api_client.post(url, credentials, format="json").status_code == 200
    _assert_throttled(api_client.post(url, credentials, format="json"))
