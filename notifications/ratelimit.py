"""Rate limits shared by every process: a sliding one-second log per key in Redis, checked and taken atomically.

Telegram allows about one message per second to a chat and 30 per second in all; a sender asks for a slot in
both windows at once and either gets it or learns how long to wait. Times come from Redis (TIME), so processes
on different hosts agree.
"""

import uuid
from functools import cache

import redis
from django.conf import settings

WINDOW_MS = 1000

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 + i]) then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
end
return 0
"""


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.CACHES["default"]["LOCATION"], socket_timeout=2, socket_connect_timeout=2
    )


@cache
def _script() -> "redis.commands.core.Script":
    return redis_client().register_script(_ACQUIRE)


def rate_slot_acquire(*, limits: dict[str, int]) -> float:
    """Take one slot in every window named in `limits` ({redis key: max per second}); 0.0 when taken, else the
    seconds to wait before asking again (nothing is taken then). Redis errors propagate: callers do not send
    unthrottled."""
    keys = list(limits)
    result = _script()(keys=keys, args=[WINDOW_MS, uuid.uuid4().hex, *[limits[k] for k in keys]])
    return int(result) / 1000


def redis_key(name: str) -> str:
    """Our keys share the cache's prefix, so test runs and installations on one Redis stay apart."""
    return f"{settings.CACHES['default'].get('KEY_PREFIX', 'mt5guard')}:notify:{name}"


def telegram_limits(chat_id: int) -> dict[str, int]:
    return {
        redis_key(f"rate:telegram:chat:{chat_id}"): settings.TELEGRAM_RATE_PER_CHAT_PER_SECOND,
        redis_key("rate:telegram:all"): settings.TELEGRAM_RATE_TOTAL_PER_SECOND,
    }
