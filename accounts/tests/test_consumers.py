"""The live-updates websocket: authenticated only, and each user hears only the accounts they may see."""

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.routing import websocket_urlpatterns
from accounts.services import trading_account_create
from core.realtime import STAFF_GROUP, account_group

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

app = URLRouter(websocket_urlpatterns)


async def _connect(user):
    communicator = WebsocketCommunicator(app, "/ws/live/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def test_anonymous_connection_is_refused():
    from django.contrib.auth.models import AnonymousUser

    _communicator, connected, code = await _connect(AnonymousUser())
    assert not connected
    assert code == 4401


async def test_trader_hears_only_their_own_accounts(trader, other_trader):
    mine = await sync_to_async(trading_account_create)(owner=trader, login=11, server="S")
    theirs = await sync_to_async(trading_account_create)(owner=other_trader, login=12, server="S")
    communicator, connected, _ = await _connect(trader)
    assert connected
    layer = get_channel_layer()
    await layer.group_send(
        account_group(theirs.pk),
        {"type": "sync_completed", "event": "sync.completed", "account_id": theirs.pk},
    )
    await layer.group_send(
        account_group(mine.pk), {"type": "sync_completed", "event": "sync.completed", "account_id": mine.pk}
    )
    message = await communicator.receive_json_from(timeout=3)
    assert message == {"event": "sync.completed", "account_id": mine.pk}
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_support_hears_every_account(support):
    communicator, connected, _ = await _connect(support)
    assert connected
    await get_channel_layer().group_send(
        STAFF_GROUP, {"type": "alert_created", "event": "alert.created", "account_id": 99}
    )
    assert await communicator.receive_json_from(timeout=3) == {"event": "alert.created", "account_id": 99}
    await communicator.disconnect()
