"""The three ways a notification leaves: Telegram (Bot API), e-mail (Django's backend), a signed webhook POST.

Each sender either returns (delivered) or raises ChannelError saying whether a retry can help. No sender runs
inside a guard, sync or close transaction: only the delivery task calls them.
"""

import json
import os
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import EmailMessage

from integrations.telegram import TelegramClient, TelegramError
from notifications.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_compute,
)


@dataclass
class ChannelError(Exception):
    message: str
    status_code: int | None = None
    permanent: bool = False
    retry_after: float | None = None

    def __str__(self) -> str:
        return self.message


# One HTTP client per process and configuration: building one costs an SSL context (tens of ms), and a kept
# connection saves a handshake per message. httpx clients are thread-safe; a forked worker builds its own.
_clients: dict[tuple[Any, ...], Any] = {}


def _cached(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    key = (os.getpid(), *key)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = build()
    return client


def telegram_client() -> TelegramClient:
    token, base, timeout = (
        settings.TELEGRAM_BOT_TOKEN,
        settings.TELEGRAM_API_BASE_URL,
        settings.NOTIFY_HTTP_TIMEOUT_SECONDS,
    )
    try:
        return _cached(
            ("telegram", token, base, timeout),
            lambda: TelegramClient(token=token, base_url=base, timeout=timeout),
        )
    except TelegramError as exc:
        raise ChannelError(str(exc)) from None


def _http() -> httpx.Client:
    timeout = settings.NOTIFY_HTTP_TIMEOUT_SECONDS
    return _cached(("http", timeout), lambda: httpx.Client(timeout=timeout, follow_redirects=False))


def telegram_send(*, chat_id: int, text: str) -> int | None:
    try:
        telegram_client().send_message(chat_id=chat_id, text=text)
    except TelegramError as exc:
        raise ChannelError(
            str(exc), status_code=exc.status_code, permanent=exc.permanent, retry_after=exc.retry_after
        ) from None
    return 200


def email_send(*, address: str, subject: str, text: str) -> int | None:
    message = EmailMessage(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[address])
    try:
        message.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise ChannelError(f"recipient refused: {exc}"[:400], permanent=True) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"{type(exc).__name__}: {exc}"[:400]) from None
    return None


def webhook_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def webhook_send(
    *, url: str, secret: str, event: str, delivery_id: str, payload: dict[str, Any]
) -> int | None:
    body = webhook_body(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "MT5-Guard-Webhooks/1",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature_compute(secret=secret, timestamp=timestamp, body=body),
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = httpx.post(
            url,
            content=body,
            headers=headers,
            timeout=settings.NOTIFY_HTTP_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        raise ChannelError("webhook: timed out") from None
    except httpx.HTTPError as exc:
        raise ChannelError(f"webhook: {type(exc).__name__}") from None
    if 200 <= response.status_code < 300:
        return response.status_code
    raise ChannelError(
        f"webhook: HTTP {response.status_code}",
        status_code=response.status_code,
        permanent=response.status_code == 410,  # the receiver says the endpoint is gone for good
    )
