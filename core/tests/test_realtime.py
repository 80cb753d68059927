"""The live-update sender: broadcasts after commit, in the background, and none lost to a burst."""

import asyncio
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from core.realtime import broadcast, broadcast_groups, realtime_flush

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield get_channel_layer()
    channel_layers.backends.clear()


def _receive_all(layer, channel: str, expected: int) -> list[dict]:
    async def drain() -> list[dict]:
        got = []
        while len(got) < expected:
            got.append(await asyncio.wait_for(layer.receive(channel), timeout=5))
        return got

    return async_to_sync(drain)()


def test_a_burst_of_broadcasts_is_delivered_whole(layer, caplog):
    """A worker syncing faster than Redis answers for a moment (a stall, a starved sender thread) hands the sender
    more sends than the channel layer's connection pool holds (100 per loop): they wait their turn, none is lost."""
    # 50 messages per channel: under the channel layer's capacity (100), which drops the rest silently.
    groups = [f"burst.{g}" for g in range(8)]
    channels = {}
    for group in groups:
        channels[group] = f"reader.{group}"  # a plain channel: read straight from Redis, from any event loop
        async_to_sync(layer.group_add)(group, channels[group])
    caplog.set_level(logging.ERROR, logger="core.realtime")
    with transaction.atomic():
        for n in range(400):
            broadcast(groups[n % 8], "sync.completed", account_id=n)
    realtime_flush(timeout=30)
    assert not [r for r in caplog.records if "was not delivered" in r.getMessage()]
    received = [m for group in groups for m in _receive_all(layer, channels[group], 50)]
    assert sorted(m["account_id"] for m in received) == list(range(400))


def test_nothing_is_sent_for_a_rolled_back_write(layer):
    channel = "reader.rollback"
    async_to_sync(layer.group_add)("rollback.test", channel)

    def failed_write() -> None:
        with transaction.atomic():
            broadcast("rollback.test", "sync.completed", account_id=1)
            raise RuntimeError("the write failed")

    with pytest.raises(RuntimeError):
        failed_write()
    realtime_flush()
    broadcast("rollback.test", "sync.completed", account_id=2)  # outside a transaction: sent at once
    realtime_flush()
    assert [m["account_id"] for m in _receive_all(layer, channel, 1)] == [2]


def test_one_broadcast_to_several_groups_reaches_each_with_its_own_message_id(layer):
    """The sync's `sync.completed` goes to the account's group and to staff in one hand-over to the sender; each
    group's message is named on its own, so a page's shared rendering never mixes two of them."""
    channels = {group: f"reader.{group}" for group in ("several.account", "several.staff")}
    for group, channel in channels.items():
        async_to_sync(layer.group_add)(group, channel)
    with transaction.atomic():
        broadcast_groups(list(channels), "sync.completed", account_id=7)
        broadcast_groups(list(channels), "sync.completed", account_id=8)
    realtime_flush(timeout=10)
    received = {group: _receive_all(layer, channel, 2) for group, channel in channels.items()}
    for messages in received.values():
        assert sorted(m["account_id"] for m in messages) == [7, 8]  # each a re-read signal: order not kept
        assert {m["type"] for m in messages} == {"sync_completed"}
    uids = [m["uid"] for messages in received.values() for m in messages]
    assert len(set(uids)) == 4


def _a_message_id() -> str:
    from core.realtime import _message_ids

    return _message_ids.new()


def test_message_ids_are_unique_and_a_forked_child_draws_its_own():
    """Ids come from a per-process random prefix and a counter (no system call each); a Celery prefork child must
    not repeat its parent's ids, or two workers' events would share one rendering on a page."""
    import multiprocessing

    from core.realtime import _message_ids

    ids = {_message_ids.new() for _ in range(10_000)}
    assert len(ids) == 10_000
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child_id = pool.apply(_a_message_id)
    assert child_id[:16] != _message_ids.new()[:16]


def _a_broadcast_from_a_child() -> bool:
    from channels.layers import channel_layers

    channel_layers.backends.clear()  # the parent's layer holds connections of the parent's loop
    with transaction.atomic():
        broadcast("fork.test", "sync.completed", account_id=5)
    realtime_flush(timeout=5)
    return True


def test_a_child_forked_while_the_sender_is_busy_can_still_send(layer):
    """A fork while the parent's sender thread holds the sender's lock must not leave the child waiting for it
    forever (nothing in the child would release it)."""
    import multiprocessing

    from core.realtime import _sender

    async_to_sync(layer.group_add)("fork.test", "reader.fork")
    context = multiprocessing.get_context("fork")
    with _sender._lock:  # as if the sender thread were inside its critical section at the fork
        pool = context.Pool(1)
    with pool:
        assert pool.apply_async(_a_broadcast_from_a_child).get(timeout=20)
    assert _receive_all(layer, "reader.fork", 1)[0]["account_id"] == 5
