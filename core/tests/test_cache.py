"""The cache backend reuses one redis client per connection pool instead of building one per call."""

from django.core.cache import cache, caches

from core.cache import RedisCache


def test_the_configured_cache_is_the_reusing_backend():
    assert isinstance(caches["default"], RedisCache)


def test_cache_calls_share_one_client_and_still_round_trip():
    first = cache._cache.get_client(write=True)
    cache.set("core-cache-test", {"a": 1}, timeout=30)
    assert cache.get("core-cache-test") == {"a": 1}
    assert cache.get_many(["core-cache-test", "core-cache-none"]) == {"core-cache-test": {"a": 1}}
    cache.delete("core-cache-test")
    assert cache._cache.get_client(write=True) is first
    assert cache._cache.get_client() is first  # one server: reads use the same pool


def test_an_account_version_bump_is_one_round_trip_that_creates_or_increments_and_keeps_its_lifetime():
    from core.readcache import VERSION_SECONDS, _bump, _version_key

    key = cache.make_and_validate_key(_version_key(987_654))
    client = cache._cache.get_client(write=True)
    client.delete(key)
    _bump(987_654)  # missing: created at 1 with its lifetime
    assert cache.get(_version_key(987_654)) == 1
    assert 0 < client.ttl(key) <= VERSION_SECONDS
    client.expire(key, 100)
    _bump(987_654)  # running: incremented, its lifetime left alone
    assert cache.get(_version_key(987_654)) == 2
    assert 0 < client.ttl(key) <= 100
    client.delete(key)
