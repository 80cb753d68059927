"""Linking a Telegram chat: a one-time code sent to the bot (read by polling), or an owner entering a chat id."""

import pytest

from core.exceptions import PermissionDeniedError
from notifications.models import TelegramChat
from notifications.services import telegram_chat_set, telegram_link_code_create, telegram_updates_poll

pytestmark = pytest.mark.django_db


def _message(update_id: int, chat_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {"message_id": update_id, "chat": {"id": chat_id, "type": "private"}, "text": text,
                    "from": {"id": chat_id, "username": "alice"}},
    }  # fmt: skip


def test_a_code_sent_to_the_bot_links_that_chat_once(trader, other_trader, telegram):
    link = telegram_link_code_create(user=trader)
    telegram.updates = [_message(10, 555, "hello"), _message(11, 555, f"/start {link.code}")]
    assert telegram_updates_poll() == 1
    chat = TelegramChat.objects.get(user=trader)
    assert chat.chat_id == 555
    assert chat.username == "alice"
    assert "Linked to MT5 Guard user trader" in telegram.messages_to(555)[0]

    # the same code again (another chat, a replay): nothing happens; old updates are not read twice
    telegram.updates.append(_message(12, 777, link.code))
    assert telegram_updates_poll() == 0
    assert TelegramChat.objects.get(user=trader).chat_id == 555
    assert not TelegramChat.objects.filter(user=other_trader).exists()


def test_a_lower_case_code_typed_by_hand_works(trader, telegram):
    link = telegram_link_code_create(user=trader)
    telegram.updates = [_message(1, 321, link.code.lower())]
    assert telegram_updates_poll() == 1
    assert TelegramChat.objects.get(user=trader).chat_id == 321


def test_an_unknown_code_links_nothing(trader, telegram):
    telegram.updates = [_message(1, 321, "ABCDEFGH")]
    assert telegram_updates_poll() == 0
    assert not TelegramChat.objects.exists()


def test_the_bot_api_down_is_logged_not_raised(trader, telegram):
    telegram.stop()
    assert telegram_updates_poll() == 0


def test_only_an_owner_enters_a_chat_id(owner, support, trader):
    telegram_chat_set(actor=owner, user=trader, chat_id=-100123)
    assert TelegramChat.objects.get(user=trader).linked_by == owner
    with pytest.raises(PermissionDeniedError):
        telegram_chat_set(actor=support, user=trader, chat_id=1)
