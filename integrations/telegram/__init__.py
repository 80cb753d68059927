"""The Telegram Bot API (https://core.telegram.org/bots/api): the only code that knows its URLs and error shapes."""

from integrations.telegram.client import TelegramClient, TelegramError

__all__ = ["TelegramClient", "TelegramError"]
