"""The one hook for live updates: services call broadcast() and it sends after the transaction commits.

Sending never blocks the caller: messages go to one long-lived event loop per process (a daemon thread that keeps
its Redis connections), so a sync does not pay for a new loop and connection per message. Live updates are
best-effort by design; the database is the record, pages re-read it.
"""

import asyncio
import atexit
import contextlib
import itertools
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

from core.channel_layer import RedisChannelLayer

logger = logging.getLogger(__name__)

STAFF_GROUP = "accounts.staff"


def account_group(account_id: int) -> str:
    return f"accounts.account.{account_id}"


def broadcast(group: str, event: str, **payload: Any) -> None:
    """Send a high-level event (`<noun>.<verb>`, ids and plain values only) to a channel-layer group after commit.

    A failing channel layer never breaks the write that triggered it: errors are logged, not raised.
    """
    broadcast_groups([group], event, **payload)


def broadcast_groups(groups: Sequence[str], event: str, **payload: Any) -> None:
    """`broadcast` to several groups, handed to the sender at once (one commit hook, one wake-up of its thread:
    each wake-up is a system call, which a sync pays on every run)."""
    # `uid` names this one message, so every socket of a process that renders the same partial for it can share one
    # rendering (dashboard.consumers).
    messages = [
        (group, {"type": event.replace(".", "_"), "event": event, "uid": _message_ids.new(), **payload})
        for group in groups
    ]
    transaction.on_commit(lambda: _sender.submit_many(messages))


def realtime_flush(timeout: float = 2.0) -> None:
    """Wait for messages already handed to the sender (tests, and commands about to exit)."""
    _sender.flush(timeout)


class _MessageIds:
    """Unique message ids without a system call each: uuid4 reads the OS's random source every time (~3 % of a
    sync's CPU in a sandboxed container), so one random prefix per process (a new one in a forked child) and a
    counter."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = uuid.uuid4().hex[:16]
        self._next = itertools.count().__next__  # atomic under the GIL

    def new(self) -> str:
        return f"{self._prefix}{self._next():x}"


_message_ids = _MessageIds()
os.register_at_fork(after_in_child=_message_ids.reset)


# Sends in flight at once. The channel layer's Redis pool holds 100 connections per loop and each send holds one:
# a burst beyond it (a worker syncing while Redis stalls for a moment, or while this thread waits for the GIL) was
# refused with "Too many connections" and its pushes lost. Beyond this many, a send waits for its turn instead.
MAX_SENDS_IN_FLIGHT = 32


class _Sender:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[Future[None]] = set()
        self._slots: asyncio.Semaphore | None = None  # made on the sender's loop, by its first send

    def after_fork(self) -> None:
        """In a forked child: a new lock (the parent's sender thread may have held it at the fork, and no thread of
        the child would ever release it) and no loop (the child inherits no running thread)."""
        self._lock = threading.Lock()
        self._loop, self._pending, self._slots = None, set(), None

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:  # the first send of this process (after_fork clears it in a child)
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-sender", daemon=True).start()
                self._loop, self._pending, self._slots = loop, set(), None
            return self._loop

    def submit(self, group: str, message: dict[str, Any]) -> None:
        self.submit_many([(group, message)])

    def submit_many(self, messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """The messages go to the loop together, and to Redis together where the layer can (a failure loses them
        all, and is logged for each)."""
        layer = get_channel_layer()
        if layer is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._send_all(layer, messages), self._running_loop())
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(lambda f: self._done(f, messages))

    async def _send_all(self, layer: Any, messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(MAX_SENDS_IN_FLIGHT)
        async with self._slots:
            # Ours reads the members of every group in one round trip.
            if isinstance(layer, RedisChannelLayer):
                await layer.group_send_many(messages)
                return
            for group, message in messages:
                await layer.group_send(group, message)

    def _done(self, future: Future[None], messages: Sequence[tuple[str, dict[str, Any]]]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            for group, message in messages:
                logger.error(
                    "live update %s to %s was not delivered: %s", message["event"], group, future.exception()
                )

    def flush(self, timeout: float) -> None:
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            with contextlib.suppress(Exception):  # failures are already logged by _done
                future.result(timeout=timeout)


_sender = _Sender()
os.register_at_fork(after_in_child=_sender.after_fork)
atexit.register(realtime_flush, 1.0)
