"""Writes of the EA path: links and their keys, authenticated pushes, command hand-out and results.

Order of checks on every request (docs/EA-PROTOCOL.md): size → key id → timestamp window → signature over the raw
body → nonce (remembered in Redis, so a replay is refused) → only then is the body parsed and validated; a bad payload
stores nothing and is counted on the link.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import TradingAccount
from core.crypto import decrypt_secret, encrypt_secret
from core.exceptions import ApplicationError, NotFoundError, PermissionDeniedError
from ea.models import CommandState, EaCommand, EaDeal, EaLink
from integrations.mt5.ea import protocol

logger = logging.getLogger(__name__)

NONCE_TTL_SECONDS = 2 * protocol.MAX_CLOCK_SKEW_SECONDS + 60
PUSHES_PER_MINUTE = 120
SYNC_TRIGGER_MIN_SECONDS = 2


class EaAuthenticationError(ApplicationError):
    status_code = 401


class EaConflictError(ApplicationError):
    status_code = 409


class EaRateLimited(ApplicationError):
    status_code = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, extra={"retry_after": retry_after})
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """The key as the owner must copy it into the EA: shown once, never stored in clear."""

    key_id: str
    secret: str


def _new_key() -> tuple[str, str]:
    return secrets.token_hex(8), secrets.token_urlsafe(32)


@transaction.atomic
def ea_link_create(*, account: TradingAccount, fresh_for_seconds: int = 300) -> tuple[EaLink, IssuedKey]:
    if EaLink.objects.filter(account=account).exists():
        raise EaConflictError("This account already has an EA key; rotate it instead.")
    key_id, secret = _new_key()
    link = EaLink.objects.create(
        account=account,
        key_id=key_id,
        secret_encrypted=encrypt_secret(secret),
        secret_rotated_at=timezone.now(),
        fresh_for_seconds=fresh_for_seconds,
    )
    return link, IssuedKey(key_id=key_id, secret=secret)


@transaction.atomic
def ea_link_rotate(*, link: EaLink) -> IssuedKey:
    """A new key id and secret; the old ones stop working at once."""
    key_id, secret = _new_key()
    link.key_id, link.secret_encrypted, link.secret_rotated_at = (
        key_id,
        encrypt_secret(secret),
        timezone.now(),
    )
    link.save(update_fields=["key_id", "secret_encrypted", "secret_rotated_at", "updated_at"])
    return IssuedKey(key_id=key_id, secret=secret)


def ea_request_authenticate(*, headers: Mapping[str, str], method: str, path: str, body: bytes) -> EaLink:
    """The link whose key signed this request, or EaAuthenticationError saying what is wrong."""
    key_id = headers.get(protocol.HEADER_KEY, "")
    timestamp = headers.get(protocol.HEADER_TIMESTAMP, "")
    nonce = headers.get(protocol.HEADER_NONCE, "")
    signature = headers.get(protocol.HEADER_SIGNATURE, "")
    if not (key_id and timestamp and nonce and signature):
        raise EaAuthenticationError(f"Missing headers: {', '.join(protocol.HEADERS)} are required.")
    if not 8 <= len(nonce) <= 64:
        raise EaAuthenticationError("The nonce must have 8 to 64 characters.")
    link = EaLink.objects.select_related("account").filter(key_id=key_id).first()
    if link is None:
        raise EaAuthenticationError("Unknown key.")
    try:
        skew = abs(time.time() - int(timestamp))
    except ValueError as exc:
        raise EaAuthenticationError("The timestamp must be whole epoch seconds.") from exc
    if skew > protocol.MAX_CLOCK_SKEW_SECONDS:
        raise EaAuthenticationError(
            f"The timestamp is {skew:.0f} s away from our clock (at most {protocol.MAX_CLOCK_SKEW_SECONDS} s)."
        )
    secret = decrypt_secret(link.secret_encrypted)
    if not protocol.signature_matches(
        secret, signature, method=method, path=path, timestamp=timestamp, nonce=nonce, body=body
    ):
        raise EaAuthenticationError("Bad signature.")
    if not cache.add(f"ea:nonce:{link.key_id}:{nonce}", 1, timeout=NONCE_TTL_SECONDS):
        raise EaAuthenticationError("This nonce was already used.")
    return link


def _rate_limit(link: EaLink) -> None:
    window = int(time.time() // 60)
    key = f"ea:rate:{link.pk}:{window}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:
        count = 1
    if count > PUSHES_PER_MINUTE:
        raise EaRateLimited(
            f"More than {PUSHES_PER_MINUTE} requests a minute for this account.", retry_after=60
        )


def _refuse(link: EaLink, reason: str) -> None:
    EaLink.objects.filter(pk=link.pk).update(
        pushes_refused=F("pushes_refused") + 1, last_refusal=reason[:255], last_refusal_at=timezone.now()
    )


def _plain(value: Any) -> Any:
    """Decimals as strings: the stored push keeps exact values."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def ea_push_accept(*, link: EaLink, body: bytes) -> EaLink:
    """Validate and store a push (latest state + new deals), then ask for a sync of the account (rate-limited)."""
    _rate_limit(link)
    try:
        push = protocol.push_parse(body)
    except protocol.PayloadError as exc:
        _refuse(link, str(exc))
        raise ApplicationError(f"Bad push: {exc}") from exc
    account = link.account
    if push.login != account.login or push.server != account.server:
        _refuse(link, f"push for {push.login}@{push.server}")
        raise PermissionDeniedError(
            f"This key belongs to account {account.login}@{account.server}, not {push.login}@{push.server}."
        )
    now = timezone.now()
    data = _plain(
        {
            "login": push.login,
            "server": push.server,
            "server_time": push.server_time,
            "account": push.account,
            "terminal": push.terminal,
            "positions": push.positions,
            "ticks": push.ticks,
            "symbols": push.symbols,
        }
    )
    with transaction.atomic():
        EaDeal.objects.bulk_create(
            [
                EaDeal(
                    link=link,
                    ticket=deal["ticket"],
                    position_id=deal["position_id"],
                    time_msc=deal["time_msc"],
                    data=_plain(deal),
                )
                for deal in push.deals
            ],
            ignore_conflicts=True,  # overlapping cursors resend deals: one row per ticket
        )
        EaLink.objects.filter(pk=link.pk).update(
            latest_push=data,
            last_push_at=now,
            last_push_server_time_msc=push.server_time,
            ea_version=push.ea_version,
            pushes_accepted=F("pushes_accepted") + 1,
        )
        transaction.on_commit(lambda: _sync_trigger(account.pk))
    link.refresh_from_db()
    return link


def _sync_trigger(account_id: int) -> None:
    if cache.add(f"ea:sync-trigger:{account_id}", 1, timeout=SYNC_TRIGGER_MIN_SECONDS):
        from pipeline.tasks import account_sync

        account_sync.delay(account_id)


def ea_commands_fetch(*, link: EaLink) -> list[EaCommand]:
    """Hand out the queued commands still before their deadline, each exactly once (a duplicate poll gets none)."""
    now = timezone.now()
    with transaction.atomic():
        commands = list(
            EaCommand.objects.select_for_update(skip_locked=True)
            .filter(link=link, state=CommandState.QUEUED, deadline__gt=now)
            .order_by("pk")
        )
        for command in commands:
            command.state, command.fetched_at, command.fetch_count = (
                CommandState.FETCHED,
                now,
                command.fetch_count + 1,
            )
        EaCommand.objects.bulk_update(commands, ["state", "fetched_at", "fetch_count"])
    return commands


def ea_commands_pending_exist(*, link: EaLink) -> bool:
    return EaCommand.objects.filter(
        link=link, state=CommandState.QUEUED, deadline__gt=timezone.now()
    ).exists()


@transaction.atomic
def ea_command_result_record(*, link: EaLink, command_id: int, body: bytes) -> EaCommand:
    """Record what order_send returned in the terminal. A repeat of the same result is accepted (the EA retries
    lost answers); a different result for an answered command is a conflict. A late answer is kept, but the command
    stays expired: only a push after its deadline tells what happened."""
    command = EaCommand.objects.select_for_update().filter(pk=command_id, link=link).first()
    if command is None:
        raise NotFoundError("No such command for this account.")
    try:
        result = _plain(protocol.result_parse(body))
    except protocol.PayloadError as exc:
        raise ApplicationError(f"Bad result: {exc}") from exc
    if command.result is not None:
        if command.result != result:
            raise EaConflictError("This command already has a different result.")
        return command
    if command.state == CommandState.QUEUED:
        raise EaConflictError("This command was never fetched.")
    command.result, command.answered_at = result, timezone.now()
    if command.state == CommandState.EXPIRED:
        command.answered_late = True
    else:
        command.state = CommandState.ANSWERED
    command.save(update_fields=["result", "answered_at", "answered_late", "state", "updated_at"])
    return command


def command_payload(command: EaCommand) -> dict[str, Any]:
    request = command.request
    return {
        "id": command.pk,
        "action": "close",
        "ticket": command.position_ticket,
        "symbol": request.get("symbol", ""),
        "volume": str(request.get("volume", "")),
        "type": int(request.get("type", 0)),
        "magic": int(request.get("magic", 0)),
        "deviation": int(request.get("deviation", 0)),
        "idempotency_key": command.idempotency_key,
        "deadline": int(command.deadline.astimezone(UTC).timestamp() * 1000),
    }


def server_now_msc() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)
