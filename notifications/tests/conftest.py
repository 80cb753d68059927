"""Fixtures of the notification tests: the fake Telegram API and webhook receiver on loopback, people with
channels set up, and the guard fixtures (simulated terminal, account of `trader`)."""

import pytest
from django.core.cache import cache

from guards.tests.conftest import account, clock, dispatched, gateway, sim, terminal  # noqa: F401
from notifications.models import TelegramChat
from notifications.ratelimit import redis_client, redis_key
from notifications.services import webhook_endpoint_create
from notifications.tests.fakes import FakeTelegram, WebhookReceiver

TOKEN = "123456:test-token"


@pytest.fixture(autouse=True)
def _clean_redis_keys():
    """Rate windows and link codes are shared Redis state: start every test without them."""
    client = redis_client()
    for key in client.scan_iter(match=redis_key("*")):
        client.delete(key)
    yield
    cache.clear()


@pytest.fixture
def telegram(settings):
    fake = FakeTelegram(token=TOKEN)
    fake.start()
    settings.TELEGRAM_BOT_TOKEN = TOKEN
    settings.TELEGRAM_API_BASE_URL = fake.base_url
    settings.NOTIFY_HTTP_TIMEOUT_SECONDS = 2.0
    yield fake
    fake.stop()


@pytest.fixture
def people(db, trader, other_trader, owner, support):
    """Everyone with an e-mail address and a linked Telegram chat (chat id = 100 + user id)."""
    for user in (trader, other_trader, owner, support):
        user.email = f"{user.username}@example.test"
        user.save(update_fields=["email"])
        TelegramChat.objects.create(user=user, chat_id=1000 + user.pk)
    return {"trader": trader, "other_trader": other_trader, "owner": owner, "support": support}


@pytest.fixture
def receiver(owner):
    created = webhook_endpoint_create(
        actor=owner, name="ops", url="http://127.0.0.1:9/", min_severity="critical"
    )
    fake = WebhookReceiver(secret=created.secret)
    fake.start()
    created.endpoint.url = f"{fake.base_url}/hooks/mt5guard"
    created.endpoint.save(update_fields=["url"])
    fake.endpoint = created.endpoint  # type: ignore[attr-defined]
    yield fake
    fake.stop()


def chat_of(user) -> int:
    return 1000 + user.pk
