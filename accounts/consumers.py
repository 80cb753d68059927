"""One websocket for live updates. Owners and support receive every account's events; traders only their own.

Thin on purpose: authenticate, join the groups the user may see, forward events as JSON. Pages render them.
It lives in accounts because who may see which account is the accounts app's rule (core imports no domain app).
"""

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.selectors import trading_account_list_for_user
from core.realtime import STAFF_GROUP, account_group


class LiveUpdatesConsumer(AsyncJsonWebsocketConsumer):
    groups_joined: list[str]

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.groups_joined = await database_sync_to_async(_groups_for)(user)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Every high-level event (`sync.completed`, `alert.created`, ...) is forwarded as it is: ids and values only.
        if "event" in message and message["type"] not in {
            "websocket.connect",
            "websocket.receive",
            "websocket.disconnect",
        }:
            await self.send_json({k: v for k, v in message.items() if k not in {"type", "uid"}})
            return
        await super().dispatch(message)


def _groups_for(user: Any) -> list[str]:
    if user.is_operator:
        return [STAFF_GROUP]
    return [account_group(pk) for pk in trading_account_list_for_user(user=user).values_list("pk", flat=True)]
