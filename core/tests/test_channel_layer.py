"""The channel layer's group send (core.channel_layer): what channels_redis's does, in fewer Redis round trips.

Against the test Redis, with the layer the settings name (production's)."""

import asyncio
import logging
import time
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from redis.asyncio.client import Pipeline, Redis

from core.channel_layer import RedisChannelLayer


@pytest.fixture
def layer():
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    made = get_channel_layer()
    assert isinstance(made, RedisChannelLayer)
    async_to_sync(made.flush)()  # the test prefix's keys only: groups and channels left by earlier tests
    yield made
    async_to_sync(made.flush)()
    channel_layers.backends.clear()


def _receive(layer, channel: str, *, timeout: float = 5) -> dict:
    async def one() -> dict:
        return await asyncio.wait_for(layer.receive(channel), timeout=timeout)

    return async_to_sync(one)()


def _nothing_for(layer, channel: str) -> bool:
    try:
        _receive(layer, channel, timeout=0.3)
    except TimeoutError:
        return True
    return False


def test_a_group_send_reaches_plain_and_process_local_member_channels(layer):
    local = async_to_sync(layer.new_channel)()  # "<prefix>.<id>!<id>", as a websocket consumer's
    for channel in ("reader.plain", local):
        async_to_sync(layer.group_add)("layer.group", channel)
    async_to_sync(layer.group_send)("layer.group", {"type": "sync.completed", "account_id": 3})
    assert _receive(layer, "reader.plain")["account_id"] == 3
    assert _receive(layer, local) == {"type": "sync.completed", "account_id": 3}


def test_several_groups_at_once_reach_their_own_members_only(layer):
    async_to_sync(layer.group_add)("layer.account.1", "reader.one")
    async_to_sync(layer.group_add)("layer.staff", "reader.staff")
    async_to_sync(layer.group_send_many)(
        [
            ("layer.account.1", {"type": "a", "n": 1}),
            ("layer.empty", {"type": "a", "n": 2}),
            ("layer.staff", {"type": "a", "n": 3}),
        ]
    )
    assert _receive(layer, "reader.one")["n"] == 1
    assert _receive(layer, "reader.staff")["n"] == 3
    assert _nothing_for(layer, "reader.one")
    assert _nothing_for(layer, "reader.staff")


def test_members_are_read_in_one_round_trip_and_an_empty_group_costs_nothing_more(layer):
    """The sync's two sends: one pipelined read of both groups' members, then one script per group that has any."""
    async_to_sync(layer.group_add)("layer.staff", "reader.staff")
    with (
        mock.patch.object(Pipeline, "execute", autospec=True, side_effect=Pipeline.execute) as pipelines,
        mock.patch.object(
            Redis, "execute_command", autospec=True, side_effect=Redis.execute_command
        ) as commands,
    ):
        async_to_sync(layer.group_send_many)(
            [("layer.account.9", {"type": "a"}), ("layer.staff", {"type": "a"})]
        )
    assert pipelines.call_count == 1
    assert [call.args[1] for call in commands.call_args_list] == ["EVAL"]
    _receive(layer, "reader.staff")


def test_a_member_past_the_group_expiry_is_not_sent_to(layer):
    async_to_sync(layer.group_add)("layer.old", "reader.old")
    key = layer._group_key("layer.old")

    async def age_member() -> None:
        await layer.connection(0).zadd(key, {"reader.old": int(time.time()) - layer.group_expiry - 10})

    async_to_sync(age_member)()
    async_to_sync(layer.group_send)("layer.old", {"type": "a"})
    assert _nothing_for(layer, "reader.old")


def test_a_full_channel_drops_the_message_and_says_so_while_expired_messages_make_room(layer, caplog):
    layer.capacity = 2
    async_to_sync(layer.group_add)("layer.full", "reader.full")
    channel_key = layer.prefix + "reader.full"

    async def queue_expired() -> None:
        old = time.time() - layer.expiry - 10
        await layer.connection(0).zadd(channel_key, {b"stale-1": old, b"stale-2": old})

    async_to_sync(queue_expired)()
    caplog.set_level(logging.INFO, logger="channels_redis.core")
    for n in range(3):  # the expired two are discarded first: two fit, the third is over capacity
        async_to_sync(layer.group_send)("layer.full", {"type": "a", "n": n})
    assert [_receive(layer, "reader.full")["n"] for _ in range(2)] == [0, 1]
    assert _nothing_for(layer, "reader.full")
    assert any("1 of 1 channels over capacity in group layer.full" in r.getMessage() for r in caplog.records)
