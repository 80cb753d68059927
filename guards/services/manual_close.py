"""Closing positions by hand (API and dashboards), on top of the one close service (autoclose.py).

* Who: holders of `guards.close_position` (owners, support) on any account they see; a trader on their own accounts
  only while the global setting `traders_may_close_positions` is on (`guards.selectors.account_close_allowed`).
* Idempotency: the client's key is stored with a fingerprint of the request for MANUAL_CLOSE_KEY_HOURS. The same
  key and request give the first answer again; the same key with another request is a conflict. The unique
  (user, key) constraint decides between two concurrent submissions, so exactly one request row — and one set of
  close intents, one task — exists per key.
* The order is sent by a Celery task after commit: the caller gets the pending intents at once. The intents' own
  idempotency (one per ticket and request, a ticket lock, a re-read of the position before sending) means even two
  different requests for the same position send one order.
"""

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import TradingAccount, User
from core.exceptions import ApplicationError, ConflictError, NotFoundError, PermissionDeniedError
from guards.clock import guard_now
from guards.models import MANUAL_CLOSE_KEY_HOURS, CloseIntent, CloseTrigger, ManualCloseRequest
from guards.selectors import account_close_allowed
from guards.services.autoclose import close_intent_get_or_create

MAX_KEY_LENGTH = 128


def request_fingerprint_for(*, account_id: int, ticket: int | None, body: dict[str, Any]) -> str:
    """A stable digest of what was asked (target + canonical body), compared when a key is reused."""
    canonical = json.dumps(
        {"account": account_id, "ticket": ticket, "body": body},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _intent_payload(intent: CloseIntent) -> dict[str, Any]:
    return {
        "id": intent.pk,
        "ticket": intent.ticket,
        "symbol": intent.symbol,
        "state": intent.state,
        "trigger": intent.trigger,
        "created_at": intent.created_at.isoformat(),
    }


def _open_positions(account: TradingAccount, ticket: int | None) -> list[tuple[int, str]]:
    """(ticket, symbol) of the open positions the last sync stored. Read through the account's reverse relation:
    guards never import reconciliation (pipeline/tests/test_import_direction.py); the rows are plain data here."""
    positions = account.live_positions.all()  # type: ignore[attr-defined]
    if ticket is not None:
        positions = positions.filter(ticket=ticket)
    return list(positions.order_by("ticket").values_list("ticket", "symbol"))


def _replay(existing: ManualCloseRequest, fingerprint: str) -> ManualCloseRequest:
    if existing.request_fingerprint != fingerprint:
        raise ConflictError(
            "This Idempotency-Key was already used for a different request.",
            extra={"idempotency_key": existing.idempotency_key},
        )
    existing.replayed = True  # type: ignore[attr-defined]
    return existing


def manual_close_request(
    *,
    account: TradingAccount,
    user: User,
    idempotency_key: str,
    ticket: int | None,
    request_fingerprint: str,
    trigger: str = CloseTrigger.OPERATOR,
    reason: str = "",
) -> ManualCloseRequest:
    """Ask to close one position (`ticket`) or every position (`ticket=None`) of the account.

    Returns the stored request; `.response` holds the pending intents and `.replayed` says whether it is an
    earlier answer for the same key. Raises PermissionDeniedError, NotFoundError (no such open position),
    ConflictError (key reused for another request) or ApplicationError (bad key)."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ApplicationError(
            f"An Idempotency-Key header of 1 to {MAX_KEY_LENGTH} characters is required.",
            extra={"fields": {"Idempotency-Key": ["Required."]}},
        )
    if not account_close_allowed(user=user, account=account):
        raise PermissionDeniedError("You may not close positions of this account.")
    now = guard_now()
    with transaction.atomic():
        ManualCloseRequest.objects.filter(user=user, idempotency_key=key, expires_at__lte=now).delete()
        existing = ManualCloseRequest.objects.filter(user=user, idempotency_key=key).first()
        if existing is not None:
            return _replay(existing, request_fingerprint)
        positions = _open_positions(account, ticket)
        if ticket is not None and not positions:
            raise NotFoundError(f"No open position #{ticket} on this account (as of the last sync).")
        try:
            with transaction.atomic():
                request = ManualCloseRequest.objects.create(
                    user=user,
                    account=account,
                    idempotency_key=key,
                    request_fingerprint=request_fingerprint,
                    ticket=ticket,
                    trigger=trigger,
                    trigger_key=f"manual:{uuid.uuid4().hex}",
                    reason=reason[:255],
                    expires_at=now + timedelta(hours=MANUAL_CLOSE_KEY_HOURS),
                )
        except IntegrityError:
            # A concurrent submission with the same key committed first: answer as it did.
            return _replay(
                ManualCloseRequest.objects.get(user=user, idempotency_key=key), request_fingerprint
            )
        intents = [
            close_intent_get_or_create(
                account=account,
                ticket=position_ticket,
                trigger=trigger,
                trigger_key=request.trigger_key,
                actor=user,
                symbol=symbol,
            )[0]
            for position_ticket, symbol in positions
        ]
        request.response = {
            "request_id": request.pk,
            "account": account.pk,
            "ticket": ticket,
            "intents": [_intent_payload(intent) for intent in intents],
        }
        request.save(update_fields=["response", "updated_at"])
        transaction.on_commit(lambda: _queue(request.pk))
    request.replayed = False  # type: ignore[attr-defined]
    return request


def _queue(request_id: int) -> None:
    from guards.tasks import manual_close_execute_task

    manual_close_execute_task.delay(request_id)


def manual_close_execute(*, request: ManualCloseRequest, gateway: Any) -> list[Any]:
    """Send the closes of a stored request (the Celery task's body). Idempotent: re-running drives the same
    intents; a position already gone is confirmed without sending."""
    from guards.services.autoclose import positions_close_all

    return positions_close_all(
        account=request.account,
        trigger_key=request.trigger_key,
        gateway=gateway,
        trigger=request.trigger,
        actor=request.user,
        tickets=[request.ticket] if request.ticket is not None else None,
    )


def manual_close_requests_purge() -> int:
    """Forget keys older than MANUAL_CLOSE_KEY_HOURS (their intents stay: they are the record)."""
    deleted, _ = ManualCloseRequest.objects.filter(expires_at__lte=guard_now()).delete()
    return deleted
