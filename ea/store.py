"""DatabaseEaStore: the EaStore port (integrations.mt5.ea.store) on our database, registered at start-up."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ea.models import CommandState, EaCommand, EaDeal, EaLink
from integrations.mt5.ea.store import StoredPush


def _link(login: int, server: str) -> EaLink | None:
    return EaLink.objects.filter(account__login=login, account__server=server).first()


class DatabaseEaStore:
    def latest_push(self, *, login: int, server: str) -> StoredPush | None:
        link = (
            EaLink.objects.filter(account__login=login, account__server=server)
            .only("latest_push", "last_push_at", "fresh_for_seconds")
            .first()
        )
        if link is None or link.latest_push is None or link.last_push_at is None:
            return None
        return StoredPush(
            data=link.latest_push,
            received_at=link.last_push_at.timestamp(),
            fresh_for_seconds=float(link.fresh_for_seconds),
        )

    def deals(self, *, login: int, server: str, since_msc: int, until_msc: int) -> list[dict[str, Any]]:
        rows = EaDeal.objects.filter(
            link__account__login=login,
            link__account__server=server,
            time_msc__gte=since_msc,
            time_msc__lte=until_msc,
        ).order_by("time_msc", "ticket")
        return [row.data for row in rows]

    def deals_for_position(self, *, login: int, server: str, position_id: int) -> list[dict[str, Any]]:
        rows = EaDeal.objects.filter(
            link__account__login=login, link__account__server=server, position_id=position_id
        ).order_by("time_msc", "ticket")
        return [row.data for row in rows]

    def command_enqueue(
        self, *, login: int, server: str, request: dict[str, Any], deadline_seconds: float
    ) -> int:
        link = _link(login, server)
        if link is None:
            raise LookupError(f"no EA link for {login}@{server}")
        command = EaCommand.objects.create(
            link=link,
            idempotency_key=uuid.uuid4().hex,
            position_ticket=int(request["position"]),
            request=request,
            deadline=timezone.now() + timedelta(seconds=deadline_seconds),
        )
        return command.pk

    def command_result(self, *, command_id: int) -> dict[str, Any] | None:
        return (
            EaCommand.objects.filter(pk=command_id, state=CommandState.ANSWERED)
            .values_list("result", flat=True)
            .first()
        )

    def command_expire(self, *, command_id: int) -> dict[str, Any] | None:
        with transaction.atomic():
            command = EaCommand.objects.select_for_update().get(pk=command_id)
            if command.state == CommandState.ANSWERED:
                return command.result
            command.state = CommandState.EXPIRED
            command.save(update_fields=["state", "updated_at"])
            return None

    def unanswered_until(self, *, login: int, server: str) -> float | None:
        deadline = (
            EaCommand.objects.filter(
                link__account__login=login, link__account__server=server, state=CommandState.EXPIRED
            )
            .order_by("-deadline")
            .values_list("deadline", flat=True)
            .first()
        )
        return None if deadline is None else deadline.timestamp()
