"""Linking a Telegram chat to a user: a one-time code the user sends to the bot (read by polling getUpdates), or
a chat id an owner enters. Codes live in Redis with a time limit and are taken with GETDEL, so one code links
one chat once, whichever worker reads it."""

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import User
from core.exceptions import PermissionDeniedError
from integrations.telegram import TelegramError
from notifications.channels import ChannelError, telegram_client
from notifications.models import TelegramChat
from notifications.ratelimit import redis_client as _redis
from notifications.ratelimit import redis_key

logger = logging.getLogger(__name__)

_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
_CODE = re.compile(r"^(?:/START(?:@\w+)?\s+)?([A-Z2-9]{8})$")


@dataclass(frozen=True)
class LinkCode:
    code: str
    expires_in: int


def _code_key(code: str) -> str:
    return redis_key(f"telegram:link:{code}")


def telegram_link_code_create(*, user: User) -> LinkCode:
    code = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    _redis().set(_code_key(code), str(user.pk), ex=settings.TELEGRAM_LINK_CODE_SECONDS)
    return LinkCode(code=code, expires_in=settings.TELEGRAM_LINK_CODE_SECONDS)


def _code_take(code: str) -> int | None:
    raw = _redis().getdel(_code_key(code))
    return int(raw) if raw else None


@transaction.atomic
def telegram_chat_link(
    *, user: User, chat_id: int, username: str = "", actor: User | None = None
) -> TelegramChat:
    chat, _ = TelegramChat.objects.update_or_create(
        user=user, defaults={"chat_id": chat_id, "username": username[:64], "linked_by": actor}
    )
    logger.info("telegram chat linked to user %s%s", user.pk, f" by {actor.pk}" if actor else "")
    return chat


def telegram_chat_set(*, actor: User, user: User, chat_id: int) -> TelegramChat:
    """An owner enters a user's chat id by hand."""
    if not actor.is_owner:
        raise PermissionDeniedError("Only an owner may enter a Telegram chat id for a user.")
    return telegram_chat_link(user=user, chat_id=chat_id, actor=actor)


def telegram_chat_unlink(*, user: User) -> None:
    TelegramChat.objects.filter(user=user).delete()


def telegram_update_handle(update: dict[str, Any]) -> tuple[int, User] | None:
    """A private message carrying a valid code links that chat; anything else is ignored."""
    message = update.get("message") or {}
    chat = message.get("chat") or {}
    text = str(message.get("text") or "").strip().upper()
    match = _CODE.match(text)
    if not match or not isinstance(chat.get("id"), int):
        return None
    user_id = _code_take(match.group(1))
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None:
        return None
    sender = message.get("from") or {}
    telegram_chat_link(user=user, chat_id=chat["id"], username=str(sender.get("username") or ""))
    return chat["id"], user


def telegram_updates_poll() -> int:
    """Read the bot's new messages once (getUpdates, no long poll) and link the chats that sent a code.
    One poller at a time (Redis lock); the offset is kept in Redis so no update is handled twice."""
    redis = _redis()
    offset_key, lock_key = redis_key("telegram:updates-offset"), redis_key("telegram:poll-lock")
    if not settings.TELEGRAM_BOT_TOKEN or not redis.set(lock_key, "1", nx=True, ex=60):
        return 0
    linked = 0
    try:
        raw = redis.get(offset_key)
        client = telegram_client()
        updates = client.get_updates(offset=int(raw) if raw else None)
        for update in updates:
            result = telegram_update_handle(update)
            redis.set(offset_key, int(update.get("update_id", 0)) + 1)
            if result is not None:
                linked += 1
                chat_id, user = result
                try:
                    client.send_message(
                        chat_id=chat_id,
                        text=f"Linked to MT5 Guard user {user.get_username()}: notifications will arrive here.",
                    )
                except TelegramError as exc:
                    logger.info("telegram link confirmation not sent: %s", exc)
    except (TelegramError, ChannelError) as exc:
        logger.warning("telegram updates not read: %s", exc)
    finally:
        redis.delete(lock_key)
    return linked
