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


def test_refused_requests_do_not_count_and_the_window_slides(api_client, trader, low_rates, monkeypatch):
    """3/min: three requests, refusals while the budget is spent (not counted), and the budget back once the
    first requests have left the trailing minute."""
    from core.api import throttling

    clock = {"now": 6_000_000.0}  # the start of a minute window
    monkeypatch.setattr(throttling._SlidingWindow, "timer", lambda self: clock["now"])
    api_client.force_authenticate(trader)
    url = reverse("accounts-api:me")
    for _ in range(3):
        assert api_client.get(url).status_code == 200
    clock["now"] += 10
    for _ in range(5):
        refused = api_client.get(url)
        _assert_throttled(refused)
    # The window's three count as spread over it: the next window, and a third of it (3 x 2/3 + 1 = 3), so 70 s;
    # conservative (exactly, the three of t=0 leave the trailing minute at t=60).
    assert int(refused["Retry-After"]) == 70
    clock["now"] += 71  # t=81: the previous window weighs 3 x (1 - 21/60) = 1.95 → one more fits, not two
    assert api_client.get(url).status_code == 200
    _assert_throttled(api_client.get(url))


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "expected"),
    [
        (0, 3, 10, 70),  # this window is full: wait for the next, then for a third of it
        (3, 0, 10, 10),  # the previous window still weighs 3 x 5/6 + 1 > 3 until a third of this one
        (3, 1, 40, 0),  # it already fits
        (0, 0, 0, 0),
    ],
)
def test_the_wait_until_a_request_fits(previous, current, elapsed, expected):
    from core.api.throttling import sliding_window_wait

    wait = sliding_window_wait(limit=3, duration=60, elapsed=elapsed, previous=previous, current=current)

    assert wait == pytest.approx(expected)
