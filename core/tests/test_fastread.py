"""The cached reads' fast path (core/api/fastread.py), driven through the project's ASGI stack as daphne drives it:
a hit is one Redis round trip and no query, answers exactly what the DRF view answers, and everything it cannot
decide (another trader's account, an invalid token, a spent throttle, Redis down) is the DRF view's own answer."""

import asyncio
import json
import threading
from decimal import Decimal

import pytest
import redis.asyncio.client
from asgiref.sync import async_to_sync
from django.core import signals
from django.core.cache import cache
from django.core.handlers.asgi import ASGIHandler
from django.db import close_old_connections
from django.urls import reverse
from rest_framework.throttling import SimpleRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.services import trading_account_create
from core.api.fastread import CachedReadsFirst
from core.cache import ReusingRedisCacheClient
from core.readcache import _bump
from guards.models import GuardState, GuardStatus

pytestmark = pytest.mark.django_db

CACHED_READS = (
    "guards-api:account-guards",
    "reconciliation-api:positions",
    "reconciliation-api:reconciliation",
)


class _Handler(ASGIHandler):
    """Django's ASGI handler without its per-request thread: the DRF view runs on the test's thread (the one that
    holds the test's transaction), as under Django's AsyncClient."""

    async def __call__(self, scope, receive, send):
        await self.handle(scope, receive, send)


@pytest.fixture
def app():
    """The project's HTTP stack as config/asgi.py builds it, keeping the test's connection (as Django's test
    client does: close_old_connections would close the connection that holds the test's transaction)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield CachedReadsFirst(_Handler())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _entries_outlive_a_slow_test(monkeypatch):
    """The 5 s backstop could expire an entry between two requests of a test on a loaded machine."""
    from core import readcache

    monkeypatch.setattr(readcache, "READ_CACHE_SECONDS", 300)


@pytest.fixture
def account(trader):
    return trading_account_create(owner=trader, login=7101, server="Fast-Demo")


@pytest.fixture
def round_trips(monkeypatch):
    """Redis round trips by client: the fast path's async pipelines, the full path's sync client."""
    counts = {"async": 0, "sync": 0}
    execute = redis.asyncio.client.Pipeline.execute
    get_client = ReusingRedisCacheClient.get_client

    async def counting_execute(self, *args, **kwargs):
        counts["async"] += 1
        return await execute(self, *args, **kwargs)

    def counting_get_client(self, *args, **kwargs):
        counts["sync"] += 1
        return get_client(self, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", counting_execute)
    monkeypatch.setattr(ReusingRedisCacheClient, "get_client", counting_get_client)
    return counts


def _token(user) -> str:
    return str(RefreshToken.for_user(user).access_token)


def _scope(path: str, token: str | None, *, host: bytes = b"testserver", query: bytes = b"") -> dict:
    headers = [(b"host", host)]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _call(app, scope):
    sent = []
    pending = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if pending:
            return pending.pop()
        await asyncio.Event().wait()  # the client stays connected until the answer is in

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def _get(app, path: str, token: str | None, **kwargs):
    """One GET through the ASGI application: (status, headers, body)."""
    return async_to_sync(_call)(app, _scope(path, token, **kwargs))


def _url(name, account):
    return reverse(name, kwargs={"account_id": account.pk})


@pytest.mark.parametrize("name", CACHED_READS)
def test_a_hit_is_one_round_trip_no_query_and_the_same_answer(
    name, app, trader, account, round_trips, django_assert_num_queries
):
    token = _token(trader)
    full = _get(app, _url(name, account), token)  # a miss: the DRF view builds and caches it
    assert full[0] == 200
    assert round_trips["sync"] > 0
    round_trips.update({"async": 0, "sync": 0})

    with django_assert_num_queries(0):
        hit = _get(app, _url(name, account), token)

    assert round_trips == {"async": 1, "sync": 0}
    assert hit == full  # status, every header (the middleware's too), the same bytes


def test_a_sync_commit_is_seen_by_the_next_read(app, trader, account):
    url = _url("guards-api:account-guards", account)
    token = _token(trader)
    assert b'"state":"normal"' in _get(app, url, token)[2]
    GuardState.objects.create(account=account, status=GuardStatus.WARNING, peak_equity=Decimal("1"))
    assert b'"state":"normal"' in _get(app, url, token)[2]  # cached: nothing told the cache yet

    _bump(account.pk)  # what a sync commit does

    assert b'"state":"warning"' in _get(app, url, token)[2]


def test_an_account_given_to_another_trader_is_a_404_at_once(app, trader, other_trader, account):
    url = _url("guards-api:account-guards", account)
    assert _get(app, url, _token(trader))[0] == 200
    assert _get(app, url, _token(trader))[0] == 200  # a hit

    account.owner = other_trader
    account.save(update_fields=["owner", "updated_at"])

    status, _headers, body = _get(app, url, _token(trader))
    assert status == 404
    assert set(json.loads(body)) == {"message", "extra"}
    assert _get(app, url, _token(other_trader))[0] == 200


def test_another_traders_cached_read_is_a_404(app, trader, other_trader, account, round_trips):
    url = _url("reconciliation-api:positions", account)
    assert _get(app, url, _token(trader))[0] == 200  # the read is cached now
    assert _get(app, url, _token(trader))[0] == 200

    assert _get(app, url, _token(other_trader))[0] == 404
    assert _get(app, url, _token(other_trader))[0] == 404  # a refusal is never cached


def test_an_invalid_token_is_the_views_401_and_not_counted(app, trader, account):
    token = _token(trader)
    url = _url("guards-api:account-guards", account)
    assert _get(app, url, token)[0] == 200

    status, headers, _body = _get(app, url, token[:-2] + "xx")

    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")


def _throttle_counts(user) -> int:
    client = cache._cache.get_client(write=True)
    return sum(int(client.get(key)) for key in client.scan_iter(match=f"*throttle_user_{user.pk}:*"))


@pytest.fixture
def low_rates(monkeypatch):
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"user": "3/min", "anon": "100/min", "token": "2/min"}
    )
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match="*throttle_*"))
    if keys:
        client.delete(*keys)


def test_hits_count_against_the_throttle_once_and_a_429_is_the_views(app, trader, account, low_rates):
    token = _token(trader)
    url = _url("guards-api:account-guards", account)
    for _ in range(3):  # a miss, then two hits
        assert _get(app, url, token)[0] == 200
    assert _throttle_counts(trader) == 3

    status, headers, body = _get(app, url, token)

    assert status == 429
    assert int(headers["retry-after"]) > 0
    assert json.loads(body)["extra"]["retry_after"] == int(headers["retry-after"])
    assert _throttle_counts(trader) == 3  # the refusal is not counted, nor counted twice


def test_a_request_a_middleware_refuses_gives_its_count_back(app, trader, account, low_rates, settings):
    token = _token(trader)
    url = _url("guards-api:account-guards", account)
    assert _get(app, url, token)[0] == 200
    assert _get(app, url, token)[0] == 200  # cached now

    status, _headers, _body = _get(app, url, token, host=b"evil.example")  # ALLOWED_HOSTS: CommonMiddleware

    assert status == 400
    assert _throttle_counts(trader) == 2


def test_a_query_string_takes_the_full_path(app, trader, account, round_trips):
    token = _token(trader)
    url = _url("guards-api:account-guards", account)
    assert _get(app, url, token)[0] == 200
    round_trips.update({"async": 0, "sync": 0})

    assert _get(app, url, token, query=b"format=json")[0] == 200
    assert round_trips["async"] == 0
    assert _get(app, url, token, query=b"format=xml")[0] == 404  # DRF's answer to an unknown format


def test_cached_reads_work_with_redis_down(app, trader, account, settings, caplog):
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
        token = _token(trader)
        for name in CACHED_READS:
            for _ in range(2):
                assert _get(app, _url(name, account), token)[0] == 200, name
        assert sum("read cache unavailable" in r.message for r in caplog.records) == 1
    finally:
        caches._connections = threading.local()  # type: ignore[attr-defined]


def test_an_expired_read_is_built_once_for_the_requests_of_the_moment(app, trader, account, monkeypatch):
    from guards.api import views

    builds = []
    status_of = views.account_guard_status
    monkeypatch.setattr(views, "account_guard_status", lambda **kw: builds.append(1) or status_of(**kw))
    token = _token(trader)
    url = _url("guards-api:account-guards", account)
    assert _get(app, url, token)[0] == 200  # principal and access cached
    assert len(builds) == 1
    _bump(account.pk)  # the entry is stale now, as after a sync commit

    async def together():
        return await asyncio.gather(*(_call(app, _scope(url, token)) for _ in range(5)))

    answers = async_to_sync(together)()

    assert [status for status, _h, _b in answers] == [200] * 5
    assert len({body for _s, _h, body in answers}) == 1
    assert len(builds) == 2  # once more, not five times


def test_an_unexpected_failure_of_the_fast_path_is_answered_by_the_view_not_a_500(
    app, trader, account, monkeypatch, caplog
):
    from core.api import fastread

    url = _url("guards-api:account-guards", account)
    token = _token(trader)
    expected = _get(app, url, token)  # a miss: built and cached by the DRF view

    def unreadable(values):
        raise ValueError("an entry the fast path cannot read")

    monkeypatch.setattr(fastread, "account_read_body", unreadable)
    status, _headers, body = _get(app, url, token)
    assert status == 200
    assert body == expected[2]
    assert "fast path failed" in caplog.text
