"""The live socket of the pages (htmx ws extension): high-level events in, rendered partials out.

* Anonymous users are refused (4401); a page for an account the user may not see is refused (4403). Foreign
  origins are refused before this consumer runs (AllowedHostsOriginValidator in config/asgi.py).
* Group membership is re-checked every LIVE_ACCESS_RECHECK_SECONDS (role or ownership changed, session ended) and at
  once when the user logs out (`session.ended` on the user's own group), so access lost means pushes stop.
* Many pages show the same partial: each rendering is shared by every socket of this process that would render it
  identically (same event, same partial, same time zone, same audience), so a sync costs one render per process,
  not one per open page.
"""

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from core.realtime import STAFF_GROUP, account_group
from dashboard import live
from dashboard.middleware import TIMEZONE_COOKIE
from dashboard.relay import process_relays

logger = logging.getLogger(__name__)


def user_group(user_id: int) -> str:
    return f"live.user.{user_id}"


MAX_ROWS_SHOWN = 1000


def _shown_rows(text: str | None) -> frozenset[int] | None:
    """`{"rows": [1, 2, …]}` → the ids; None for anything else (not JSON, not a list of ids, too long)."""
    try:
        rows = json.loads(text or "").get("rows")
    except (ValueError, AttributeError):
        return None
    if not isinstance(rows, list) or len(rows) > MAX_ROWS_SHOWN:
        return None
    if not all(isinstance(row, int) and not isinstance(row, bool) for row in rows):
        return None
    return frozenset(rows)


class _RenderCache:
    """Renders shared between the sockets of one process: key → future of the HTML (kept a few seconds)."""

    ttl_seconds = 10.0

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[float, asyncio.Future[str]]] = {}

    async def get(self, key: tuple[Any, ...], render: Callable[[], str]) -> str:
        now = time.monotonic()
        entry = self._entries.get(key)
        if (
            entry is not None
            and now - entry[0] < self.ttl_seconds
            and entry[1].get_loop() is asyncio.get_running_loop()
        ):
            return await asyncio.shield(entry[1])
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._entries[key] = (now, future)
        if len(self._entries) > 2000:
            self._prune(now)
        try:
            # Off the thread that serves the sockets' access checks, so a push never queues behind them.
            html = await database_sync_to_async(render, thread_sensitive=False)()
        except Exception as exc:
            future.set_exception(exc)
            self._entries.pop(key, None)
            raise
        future.set_result(html)
        return html

    def _prune(self, now: float) -> None:
        for key in [k for k, (at, _f) in self._entries.items() if now - at >= self.ttl_seconds]:
            del self._entries[key]


_renders = _RenderCache()


async def _shared_render(key: tuple[Any, ...], render: Callable[[], str]) -> str:
    """The rendering shared under `key` by this process's sockets; "" (logged) when it fails."""
    try:
        return await _renders.get(key, render)
    except Exception:
        logger.exception("live partial %s could not be rendered", key)
        return ""


class _AccessChecks(_RenderCache):
    ttl_seconds = 5.0


_access_checks = _AccessChecks()


class LivePagesConsumer(AsyncWebsocketConsumer):
    user: Any
    view: live.LiveView
    tz: str | None
    audience: Any
    groups_joined: set[str]
    _summary_task: "asyncio.Task[None] | None" = None
    _summary_sent_at = float("-inf")  # monotonic time of this socket's last fleet summary
    _summary_owed = False  # a change happened that no summary sent since covers
    rows_shown: frozenset[int] | None = None  # the overview's rows on screen; None: not said (push every row)

    async def connect(self) -> None:
        self.groups_joined = set()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        view = live.LiveView.from_query(query)
        if view is None:
            await self.close(code=4400)
            return
        self.user, self.view, self.tz = user, view, self._cookie_tz()
        access = await database_sync_to_async(self._access)()
        if access is None:
            await self.close(code=4403)
            return
        self._accepted = asyncio.Event()
        await self._join(access)  # before accepting, so nothing sent once the page is open is missed
        await self.accept()
        self._accepted.set()
        self._recheck_task = asyncio.create_task(self._recheck_loop())

    async def disconnect(self, code: int) -> None:
        for name in ("_recheck_task", "_summary_task"):
            task = getattr(self, name, None)
            if task is not None:
                task.cancel()
        relays = process_relays()
        for group in list(getattr(self, "groups_joined", ())):
            await relays.leave(group, self)
        self.groups_joined = set()

    # --- access -------------------------------------------------------------------------------------------------

    def _cookie_tz(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name == b"cookie":
                cookie: SimpleCookie = SimpleCookie()
                with contextlib.suppress(Exception):
                    cookie.load(value.decode("latin-1"))
                if TIMEZONE_COOKIE in cookie:
                    from urllib.parse import unquote

                    return unquote(cookie[TIMEZONE_COOKIE].value)
        return None

    def _access(self) -> set[str] | None:
        """The groups this socket may be in now; None when it may no longer be open at all."""
        from accounts.selectors import trading_account_list_for_user

        user = get_user_model().objects.filter(pk=self.user.pk, is_active=True).first()
        if user is None:
            return None
        session = self.scope.get("session")
        if session is not None and session.session_key and not session.exists(session.session_key):
            return None  # logged out (or the session expired) since the socket opened
        self.user = user
        self.audience = "staff" if user.is_operator else f"user-{user.pk}"
        if self.view.kind == "account" and not live.user_may_see_account(
            user=user, account_id=self.view.account_id
        ):
            return None
        groups = {user_group(user.pk)}
        if user.is_operator:
            groups.add(STAFF_GROUP)
        else:
            ids = trading_account_list_for_user(user=user).values_list("pk", flat=True)
            groups.update(account_group(pk) for pk in ids)
        return groups

    async def _access_shared(self) -> set[str] | None:
        """The re-check, shared by this user's sockets on the same view and session in this process (one set of
        queries per user and interval, however many tabs are open)."""
        session = self.scope.get("session")
        key = ("access", self.user.pk, getattr(session, "session_key", None), self.view)
        marker = "\x00none"  # the render cache holds text: None (no access) travels as a marker
        result = await _access_checks.get(key, lambda: self._access_text(marker))
        if result == marker:
            return None
        return set(result.split("\n")) if result else set()

    def _access_text(self, marker: str) -> str:
        access = self._access()
        return marker if access is None else "\n".join(sorted(access))

    async def _join(self, groups: set[str], *, refresh: bool = False) -> None:
        """Groups are joined through the process's relays (one channel-layer membership per group and process).
        `refresh` adds every group to the channel layer again: it forgets a membership after its group expiry (a
        day) and all of them when Redis restarts empty, while the socket itself may stay open."""
        relays = process_relays()
        before, self.groups_joined = self.groups_joined, set(groups)  # what _may_hear reads from now on
        for group in groups - before:
            await relays.join(group, self)
        for group in before - groups:
            await relays.leave(group, self)
        if refresh:
            await relays.refresh(groups, min_interval=settings.LIVE_ACCESS_RECHECK_SECONDS / 2)

    async def _recheck_loop(self) -> None:
        interval = settings.LIVE_ACCESS_RECHECK_SECONDS
        # Spread the re-checks of many sockets over the interval instead of running them all at once.
        await asyncio.sleep(random.uniform(0, interval))
        while True:
            try:
                access = await self._access_shared()
            except Exception:
                logger.exception("live access re-check failed; keeping the socket as it is")
                await asyncio.sleep(interval)
                continue
            if access is None:
                await self._join(set())
                await self.close(code=4403)
                return
            await self._join(access, refresh=True)
            await asyncio.sleep(interval)

    def _may_hear(self, account_id: Any) -> bool:
        """Staff hear every account; a trader only accounts whose group this socket is in (re-checked above)."""
        return STAFF_GROUP in self.groups_joined or account_group(int(account_id)) in self.groups_joined

    # --- events -------------------------------------------------------------------------------------------------

    async def _rendered(self, fragment: str, message: dict[str, Any], render: Callable[[], str]) -> str:
        return await _shared_render(
            (message.get("uid") or id(message), fragment, self.tz, self.audience), render
        )

    async def _push(self, fragment: str, message: dict[str, Any], render: Callable[[], str]) -> None:
        html = await self._rendered(fragment, message, render)
        if html.strip():
            await self.send(text_data=html)

    async def _summary_with_row(self, message: dict[str, Any]) -> str:
        """The overview's fleet summary, at most one per LIVE_SUMMARY_SECONDS per socket, preferably in a row's own
        frame (one frame per socket instead of two; the cost of a push is mostly its frames):

        * a row carries the summary when the socket's last summary went at least a period ago (rendered after the
          change committed, once per event and process);
        * a change whose row cannot carry it (too soon after the last summary) leaves the summary owed: the next
          row that may carries it, and if none comes, it goes alone at the end of the next period
          (`_summary_push`; periods aligned on the clock, so a process's sockets of one audience share that
          rendering). A summary is thus at most two periods behind the fleet."""
        period = float(settings.LIVE_SUMMARY_SECONDS)
        if time.monotonic() - self._summary_sent_at >= period:
            user = self.user
            html = await self._rendered(
                "fleet-summary", message, lambda: live.render_fleet_summary(user=user)
            )
            if html:
                self._summary_sent()
                return html
        self._summary_owed = True
        if self._summary_task is None:
            self._summary_task = asyncio.create_task(self._summary_push())
        return ""

    async def _summary_push(self) -> None:
        """An owed summary that no row carried, alone at the end of the next period."""
        period = float(settings.LIVE_SUMMARY_SECONDS)
        now = time.time()
        bucket = int(now // period) + 2
        try:
            await asyncio.sleep(bucket * period - now)
        finally:
            self._summary_task = None
        if not self._summary_owed:
            return  # a row carried it meanwhile
        user = self.user
        html = await _shared_render(
            ("fleet-summary", bucket, self.audience), lambda: live.render_fleet_summary(user=user)
        )
        if html:
            self._summary_sent()
            await self.send(text_data=html)

    def _summary_sent(self) -> None:
        self._summary_sent_at = time.monotonic()
        self._summary_owed = False

    async def _account_changed(self, message: dict[str, Any]) -> None:
        account_id = message.get("account_id")
        if account_id is None or not self._may_hear(account_id):
            return
        user, tz = self.user, self.tz
        if self.view.kind == "overview":
            row = ""
            if self.rows_shown is None or int(account_id) in self.rows_shown:
                row = await self._rendered(
                    f"row-{account_id}",
                    message,
                    lambda: live.render_overview_row(user=user, account_id=int(account_id), tz=tz),
                )
            # A row off this page still changes the fleet: its summary is due or owed all the same.
            # The summary after the row: htmx swaps each out-of-band element of a frame in turn.
            html = row + await self._summary_with_row(message)
            if html.strip():
                await self.send(text_data=html)
        elif self.view.kind == "account" and self.view.account_id == int(account_id):
            await self._push(
                f"account-{account_id}",
                message,
                lambda: live.render_account_live(user=user, account_id=int(account_id), tz=tz),
            )

    async def sync_completed(self, message: dict[str, Any]) -> None:
        await self._account_changed(message)

    async def sync_failed(self, message: dict[str, Any]) -> None:
        await self._account_changed(message)

    async def health_updated(self, message: dict[str, Any]) -> None:
        if self.view.kind == "overview":
            await self._account_changed(message)

    async def guard_alert(self, message: dict[str, Any]) -> None:
        account_id = message.get("account_id")
        if account_id is None or not self._may_hear(account_id):
            return
        user, tz = self.user, self.tz
        await self._push("banner", message, lambda: live.render_banner(user=user, tz=tz))
        await self._account_changed(message)

    async def _divergence(self, message: dict[str, Any], *, new: bool) -> None:
        account_id = message.get("account_id")
        if account_id is None or not self._may_hear(account_id):
            return
        if self.view.kind == "divergences" and message.get("event_id") is not None:
            user, tz, event_id = self.user, self.tz, int(message["event_id"])
            await self._push(
                f"divergence-{event_id}-{new}",
                message,
                lambda: live.render_divergence_row(user=user, event_id=event_id, new=new, tz=tz),
            )
        else:
            await self._account_changed(message)

    async def event_opened(self, message: dict[str, Any]) -> None:
        await self._divergence(message, new=True)

    async def event_reopened(self, message: dict[str, Any]) -> None:
        await self._divergence(message, new=False)

    async def event_gone(self, message: dict[str, Any]) -> None:
        await self._divergence(message, new=False)

    async def event_acknowledged(self, message: dict[str, Any]) -> None:
        await self._divergence(message, new=False)

    async def event_resolved(self, message: dict[str, Any]) -> None:
        await self._divergence(message, new=False)

    async def session_ended(self, message: dict[str, Any]) -> None:
        await self.close(code=4401)  # first: a logged-out user's page stops at once, whatever leaving costs
        await self._join(set())

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' AsyncConsumer.dispatch, without its `aclose_old_connections()` before every message: that is a
        hop to the sync thread per message per socket (500 open overviews: 500 serialized hops per broadcast, the
        largest cost of a push in bench_live's profile). Every database access of this consumer already runs in
        `database_sync_to_async`, which closes old connections around the call in its own thread."""
        accepted = getattr(self, "_accepted", None)
        if accepted is not None and not accepted.is_set():
            try:  # delivered by a relay between joining and accepting
                await asyncio.wait_for(accepted.wait(), timeout=5)
            except TimeoutError:
                return  # never accepted (the client went away): nothing to deliver to
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            if "event" in message:
                return  # an event this page has no partial for (another app's broadcast) is ignored, not fatal
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The one message a page sends: the overview's rows on screen, `{"rows": [account ids]}` (static/dashboard/
        app.js, on every (re)connect and table swap). Only a filter on what the socket may hear anyway; anything
        else is ignored (logged), and the socket then keeps pushing every row it may hear."""
        rows = _shown_rows(text_data)
        if rows is None:
            logger.debug(
                "live socket of user %s sent something that is not a list of rows; ignored", self.user.pk
            )
            return
        if self.view.kind == "overview":
            self.rows_shown = rows
