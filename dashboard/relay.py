"""One channel-layer membership per group per process, shared by the process's open pages.

With one membership per socket, a broadcast to the staff group with 500 open overviews is 500 deliveries inside the
process: each socket's receive loop wakes, takes its copy from the channel layer's buffer and dispatches it (in
bench_live's profile, more server CPU per push than writing the 500 frames). Here a group has one channel of the
process in the channel layer, and one task per group hands each message to the sockets subscribed to it, in turn.

* Membership in the channel layer is re-added after a receive error (Redis restarted empty: every group forgotten)
  and on `refresh()` (the pages' periodic access re-check; the channel layer forgets a membership after its group
  expiry, a day), so a page never stops hearing silently.
* A socket's handler failing never stops the others' deliveries.
* Everything is per event loop: daphne has one, tests have one per test.
"""

import asyncio
import logging
import time
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
STOP_WAIT_SECONDS = 1.0


class Member(Protocol):
    async def dispatch(self, message: dict[str, Any]) -> None: ...


class _GroupRelay:
    def __init__(self, group: str) -> None:
        self.group = group
        self.members: dict[int, Member] = {}  # insertion-ordered: deliveries go in the order sockets joined
        self.channel: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.refreshed_at = 0.0
        self.dispatching = False

    async def start(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()  # the process's own key: one receive loop serves all
        await layer.group_add(self.group, self.channel)
        self.refreshed_at = time.monotonic()
        self.task = asyncio.create_task(self._run(), name=f"relay {self.group}")

    async def refresh(self, min_interval: float) -> None:
        if self.channel is None or time.monotonic() - self.refreshed_at < min_interval:
            return
        self.refreshed_at = time.monotonic()
        await get_channel_layer().group_add(self.group, self.channel)

    async def stop(self) -> None:
        if self.task is not None and self.task is not asyncio.current_task() and not self.dispatching:
            self.task.cancel()
            # Wait for it (bounded): the channel layer's receive counts its receivers per event loop, and a receive
            # left pending on a loop that closes would refuse every later loop's.
            await asyncio.wait({self.task}, timeout=STOP_WAIT_SECONDS)
        if self.channel is not None:
            try:
                await get_channel_layer().group_discard(self.group, self.channel)
            except Exception:  # the membership expires on its own; a page closing must not fail on it
                logger.warning("live relay could not leave %s", self.group, exc_info=True)

    async def _run(self) -> None:
        layer = get_channel_layer()
        failed = False
        while self.members:
            try:
                if failed:
                    await layer.group_add(self.group, self.channel)
                    self.refreshed_at = time.monotonic()
                message = await layer.receive(self.channel)
                failed = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failed:
                    logger.warning(
                        "live relay for %s lost the channel layer; retrying", self.group, exc_info=True
                    )
                failed = True
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.dispatching = True
            try:
                for member in list(self.members.values()):
                    try:
                        await member.dispatch(message)
                    except Exception:
                        logger.exception("live message %s failed for one page", message.get("type"))
            finally:
                self.dispatching = False


class ProcessRelays:
    """The relays of one event loop: group → the sockets subscribed to it."""

    def __init__(self) -> None:
        self._relays: dict[str, _GroupRelay] = {}
        self._lock = asyncio.Lock()

    async def join(self, group: str, member: Member) -> None:
        async with self._lock:
            relay = self._relays.get(group)
            if relay is None or relay.task is None or relay.task.done():
                relay = _GroupRelay(group)
                relay.members[id(member)] = member
                await relay.start()
                self._relays[group] = relay
            else:
                relay.members[id(member)] = member

    async def leave(self, group: str, member: Member) -> None:
        async with self._lock:
            relay = self._relays.get(group)
            if relay is None or relay.members.pop(id(member), None) is None or relay.members:
                return
            del self._relays[group]
        await relay.stop()

    async def refresh(self, groups: set[str], min_interval: float) -> None:
        for group in groups:
            relay = self._relays.get(group)
            if relay is not None:
                await relay.refresh(min_interval)

    def member_count(self, group: str) -> int:
        relay = self._relays.get(group)
        return len(relay.members) if relay is not None else 0


_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ProcessRelays]" = weakref.WeakKeyDictionary()


def process_relays() -> ProcessRelays:
    loop = asyncio.get_running_loop()
    relays = _by_loop.get(loop)
    if relays is None:
        relays = _by_loop[loop] = ProcessRelays()
    return relays
