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
