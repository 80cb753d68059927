"""The cached account reads (status, positions, guards) answered without leaving the event loop.

Under ASGI, Django runs a sync view, and our sync middleware, on a thread it starts for each request, hopping
between it and the event loop three times; the full path of a cached read then makes three Redis round trips on
that thread (the JWT's principal, the throttle, the read). `CachedReadsFirst` wraps the project's ASGI application
(config/asgi.py) and answers a cached read itself when it can:

1. a GET, without a query string or a body, with `Authorization: Bearer <JWT>` and an Accept the JSON renderer
   answers as is, for a URL whose view declares `cached_read` (the name of its `account_read_cached` read);
2. the token is validated as simplejwt does (signature, expiry, type); the user id is its claim;
3. ONE pipelined round trip (redis.asyncio): the access epoch, the principal, the account's version, the entry and
   the user's access to the account (`readcache.account_read_keys`), plus every throttle's counting (INCR,
   EXPIRE, GET: `throttling._SlidingWindow.count_commands`);
4. if the principal and the access decision are of the current epoch, the entry of the current version and every
   throttle has room, the answer is the entry's rendered JSON, passed through Django's own middleware chain (host
   validation, security headers, ...; loaded in sync mode and run inline: none of it touches the database for this
   request) and sent: no thread, no query.

Everything else goes to Django unchanged (the DRF view, on its sync thread): other requests, an entry missing or
stale, a principal or access decision not cached, a throttle without room, an invalid token, Redis down. Errors,
401, 404, 429 with Retry-After and the Redis-down fallback are thus the DRF view's own. The throttle counts made in
step 3 go with the request (`throttling.precounted_for`), so a request is counted once either way, and are given
back if the view never reached its throttles (a 401, or a middleware answering first).
"""

import asyncio
import io
import logging
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import redis.asyncio as aioredis
from django.core import signals
from django.core.cache import caches
from django.core.cache.backends.redis import RedisSerializer
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver, set_script_prefix
from redis.exceptions import RedisError
from rest_framework import permissions
from rest_framework.renderers import JSONRenderer
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from core.api.auth import CachedJWTAuthentication
from core.api.throttling import PRECOUNTED_SCOPE_KEY, _SlidingWindow
from core.readcache import account_read_body, account_read_keys, account_read_needs_build

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_ACCEPTED = {None, b"", b"*/*", b"application/json"}
_CLIENT_OPTIONS = (
    "db",
    "username",
    "password",
    "socket_timeout",
    "socket_connect_timeout",
    "health_check_interval",
)
logger = logging.getLogger(__name__)
_serializer = RedisSerializer()
# A read whose entry expired (the 5 s backstop) or was invalidated is built by the first request that misses it; the
# requests of the same process that miss it meanwhile wait for that one (up to this long) and read it from Redis.
BUILD_WAIT_SECONDS = 2.0
# One async client per event loop and server (a client's connections belong to the loop that opened them).
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, aioredis.Redis]]" = (
    weakref.WeakKeyDictionary()
)


def _async_client() -> tuple[aioredis.Redis, Any]:
    """The running loop's client for the default cache's (first, writable) server, and the cache backend."""
    backend = caches["default"]
    server = backend._servers[0]  # type: ignore[attr-defined]
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(server)
    if client is None:
        options = {k: v for k, v in backend._options.items() if k in _CLIENT_OPTIONS}  # type: ignore[attr-defined]
        client = per_loop[server] = aioredis.Redis.from_url(server, **options)
    return client, backend


def fast_path_applies(view_class: Any) -> bool:
    """The view is a cached read whose checks the fast path makes itself, and nothing more: authentication by our
    JWT class first, IsAuthenticated, the JSON renderer only (a view asking for more always takes the full path)."""
    return (
        bool(getattr(view_class, "cached_read", None))
        and list(view_class.permission_classes) == [permissions.IsAuthenticated]
        and bool(view_class.authentication_classes)
        and view_class.authentication_classes[0] is CachedJWTAuthentication
        and list(view_class.renderer_classes) == [JSONRenderer]
    )


class _Principal:
    """What a throttle asks of `request.user` for a signed-in user."""

    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


class _ThrottleRequest:
    """What a throttle asks of the request: its user, and META for the client's address."""

    def __init__(self, request: HttpRequest, user_id: int) -> None:
        self.user = _Principal(user_id)
        self.META = request.META


def _user_id_of(authorization: bytes) -> int | None:
    """The user id of a valid `Bearer <JWT>`, or None (the full path decides, and answers 401 if it must)."""
    parts = authorization.split()
    if len(parts) != 2 or parts[0] not in AUTH_HEADER_TYPE_BYTES:
        return None
    if jwt_settings.CHECK_REVOKE_TOKEN or jwt_settings.USER_ID_FIELD not in ("id", "pk"):
        return None  # a check that needs the user row: the full path
    for token_class in jwt_settings.AUTH_TOKEN_CLASSES:  # as JWTAuthentication.get_validated_token
        try:
            token = token_class(parts[1])
        except TokenError:
            continue
        user_id = token.get(jwt_settings.USER_ID_CLAIM)  # simplejwt writes it as a string
        if type(user_id) is int:
            return user_id
        return int(user_id) if isinstance(user_id, str) and user_id.isascii() and user_id.isdigit() else None
    return None


class _InlineHandler(BaseHandler):
    """Django's middleware chain in sync mode around a view that returns the prepared answer: run on the event
    loop's thread, for a request that touches neither the database nor the session."""

    chunk_size = ASGIHandler.chunk_size
    chunk_bytes = ASGIHandler.chunk_bytes
    send_response = ASGIHandler.send_response

    def __init__(self) -> None:
        super().__init__()
        self.load_middleware(is_async=False)

    def resolve_request(self, request: HttpRequest) -> Any:
        match: ResolverMatch = request._cached_read_match  # type: ignore[attr-defined]
        request.resolver_match = match
        return request._cached_read_view, match.args, match.kwargs  # type: ignore[attr-defined]


class CachedReadsFirst:
    """ASGI application: the cached reads' fast path in front of `app` (the project's Django application)."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app
        self._handler: _InlineHandler | None = None
        self._building: dict[tuple[int, str], asyncio.Event] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        headers = dict(
            scope["headers"]
        )  # a repeated header keeps its last value: then Accept is unusual anyway
        authorization = headers.get(b"authorization")
        if not authorization or headers.get(b"accept") not in _ACCEPTED or b"content-length" in headers:
            await self.app(scope, receive, send)
            return
        first = await receive()  # the request's (empty) body; handed on to Django if it serves this request
        if first["type"] != "http.request" or first.get("body") or first.get("more_body"):
            await self.app(scope, _replaying(first, receive), send)
            return
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            served, building = await self._serve(scope, authorization, tracked_send)
        except Exception:
            if started:
                raise  # the answer is already on its way: nothing else can be sent
            # An unexpected failure of the fast path (an unreadable entry, a bug) must not be the client's 500: the
            # full path answers, as it does for every case the fast path does not decide.
            logger.exception("cached read fast path failed; answering on the full path")
            served, building = False, None
        if served:
            return
        try:
            await self.app(scope, _replaying(first, receive), send)
        finally:
            await _give_back(scope)
            if building is not None:
                self._building.pop(building).set()

    async def _serve(
        self, scope: Scope, authorization: bytes, send: Send
    ) -> tuple[bool, tuple[int, str] | None]:
        """(served, the read this request builds on the full path, if it is the one that builds it)."""
        set_script_prefix(get_script_prefix(scope))
        request = ASGIRequest(scope, io.BytesIO())
        try:
            match = get_resolver().resolve(request.path_info)
        except Resolver404:
            return False, None
        view_class = getattr(match.func, "cls", None)
        if view_class is None or not fast_path_applies(view_class) or "account_id" not in match.kwargs:
            return False, None
        user_id = _user_id_of(authorization)
        if user_id is None:
            return False, None
        throttles = [throttle() for throttle in view_class.throttle_classes]
        if not all(isinstance(throttle, _SlidingWindow) for throttle in throttles):
            return False, None
        throttle_request = _ThrottleRequest(request, user_id)
        counting = [
            (throttle, window)
            for throttle in throttles
            if (window := throttle.window_keys(throttle_request, view_class)) is not None
        ]
        keys = account_read_keys(
            user_id=user_id, account_id=match.kwargs["account_id"], name=view_class.cached_read
        )
        try:
            client, backend = _async_client()
            pipe = client.pipeline(transaction=False)
            pipe.mget([backend.make_and_validate_key(key) for key in keys])
            for throttle, window in counting:
                throttle.count_commands(pipe, window)
            replies = await pipe.execute()
        except (RedisError, OSError):
            return False, None  # the full path falls back to the database and logs the outage once
        precounted = scope.setdefault(PRECOUNTED_SCOPE_KEY, {})
        room = True
        for index, (throttle, window) in enumerate(counting):
            current, previous = throttle.counts_of(replies[1 + 3 * index : 4 + 3 * index])
            precounted[window[0]] = (current, previous)
            room = room and throttle.counts_fit(current, previous)
        values = [None if raw is None else _serializer.loads(raw) for raw in replies[0]]
        body = account_read_body(values) if room else None
        if body is None and room and account_read_needs_build(values):
            read = (match.kwargs["account_id"], view_class.cached_read)
            building = self._building.get(read)
            if building is None:
                self._building[read] = asyncio.Event()
                return False, read  # this request builds it (the full path)
            body = await _built(building, keys)
        if body is None:
            return False, None
        answer = HttpResponse(body, content_type="application/json")
        answer["Allow"] = _allow(view_class)  # DRF's only header of its own with one renderer
        response = self._run_middleware(request, match, answer)
        if response is not answer:
            await _give_back(scope)  # a middleware answered before the view: the request did not reach it
        else:
            precounted.clear()
        try:
            await self.handler.send_response(response, send)  # type: ignore[misc,arg-type]
        finally:
            response.close()  # closers and request_finished, as Django's handler (which sends request_started)
        return True, None

    @property
    def handler(self) -> _InlineHandler:
        if self._handler is None:
            self._handler = _InlineHandler()
        return self._handler

    def _run_middleware(
        self, request: HttpRequest, match: ResolverMatch, answer: HttpResponse
    ) -> HttpResponseBase:
        signals.request_started.send(sender=ASGIHandler, scope=request.scope)  # type: ignore[attr-defined]

        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return answer

        view.csrf_exempt = getattr(match.func, "csrf_exempt", False)  # type: ignore[attr-defined]
        request._cached_read_match = match  # type: ignore[attr-defined]
        request._cached_read_view = view  # type: ignore[attr-defined]
        response = self.handler.get_response(request)
        response._handler_class = ASGIHandler  # type: ignore[attr-defined]
        return response


_allow_cache: dict[type, str] = {}


def _allow(view_class: type) -> str:
    allow = _allow_cache.get(view_class)
    if allow is None:
        view = view_class()
        if hasattr(view, "get") and not hasattr(view, "head"):
            view.head = view.get  # as View.setup() does for every request
        allow = _allow_cache[view_class] = ", ".join(view.allowed_methods)
    return allow


def _replaying(first: dict[str, Any], receive: Receive) -> Receive:
    """`receive` with `first` (already received) given again first."""
    pending = [first]

    async def replay() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replay


async def _built(building: asyncio.Event, keys: list[str]) -> bytes | None:
    """The read another request of this process is building, from Redis once it is built (all checks again)."""
    try:
        await asyncio.wait_for(building.wait(), BUILD_WAIT_SECONDS)
        client, backend = _async_client()
        found = await client.mget([backend.make_and_validate_key(key) for key in keys])
    except (TimeoutError, RedisError, OSError):
        return None
    return account_read_body([None if raw is None else _serializer.loads(raw) for raw in found])  # type: ignore[arg-type]


async def _give_back(scope: Scope) -> None:
    """Throttle counts the fast path made that the full path did not use (it answered before its throttles)."""
    unused = list(scope.get(PRECOUNTED_SCOPE_KEY) or ())
    if not unused:
        return
    scope[PRECOUNTED_SCOPE_KEY] = {}
    try:
        client, _backend = _async_client()
        pipe = client.pipeline(transaction=False)
        for key in unused:
            pipe.decr(key)
        await pipe.execute()
    except (RedisError, OSError):
        pass
