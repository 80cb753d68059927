"""Thin DRF views of the guards: status (cached), close intents, manual closes (Idempotency-Key), the alert ledger."""

import time

from django.conf import settings
from django.db import connection
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import trading_account_get_for_user
from core.api.auth import authenticated_user
from core.api.pagination import StrictLimitOffsetPagination
from core.api.schema import paginated
from core.readcache import account_read_cached
from guards.api.serializers import (
    AlertLedgerOutputSerializer,
    AlertListFilterSerializer,
    CloseIntentListFilterSerializer,
    CloseIntentOutputSerializer,
    GuardResetInputSerializer,
    GuardResetOutputSerializer,
    GuardStatusOutputSerializer,
    ManualCloseInputSerializer,
    ManualCloseOutputSerializer,
)
from guards.models import CloseTrigger
from guards.selectors import account_guard_status, close_intent_list_for_account, guard_alert_list_after
from guards.services import guard_reset
from guards.services.ledger import AlertWaiter, alerts_sequence, alerts_unsequenced_exist
from guards.services.manual_close import manual_close_request, request_fingerprint_for
from guards.services.reset import RESET_PERMISSION

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=True,
    description="Your unique key for this close (1-128 characters), kept 24 h: the same key and body replay the "
    "first answer (header Idempotent-Replayed: true), the same key with another body is a 409.",
)
LEDGER_RECHECK_SECONDS = 2.0  # a long poll re-reads the database at least this often (Redis may be down)


class AccountGuardStatusApi(APIView):
    """GET: drawdown and daily loss with their levels, peak, day anchor, headroom, state, time to liquidation and
    the market guard per symbol (cached per account, invalidated when a sync commits)."""

    # the account_read_cached read it answers; a hit is served on the event loop (core/api/fastread.py)
    cached_read = "guards"

    @extend_schema(operation_id="account_guards", responses=GuardStatusOutputSerializer, tags=["guards"])
    def get(self, request: Request, account_id: int) -> Response:
        user = authenticated_user(request)
        data = account_read_cached(
            user_id=user.pk,
            account_id=account_id,
            name=self.cached_read,
            load_account=lambda: trading_account_get_for_user(user=user, account_id=account_id),
            build=lambda account: GuardStatusOutputSerializer(account_guard_status(account=account)).data,
        )
        return Response(data)


class MayResetGuards(permissions.BasePermission):
    message = "Only owners and support staff may reset a guard."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm(RESET_PERMISSION)


class GuardResetApi(APIView):
    """POST {reason, confirm_open_positions}: the audited reset of a tripped or halted guard (owners and support).
    Closes still in flight are a 409; closes that failed need confirm_open_positions=true (else a 400 listing
    them in extra.open_tickets)."""

    permission_classes = [permissions.IsAuthenticated, MayResetGuards]

    @extend_schema(
        operation_id="account_guards_reset",
        request=GuardResetInputSerializer,
        responses=GuardResetOutputSerializer,
        tags=["guards"],
    )
    def post(self, request: Request, account_id: int) -> Response:
        user = authenticated_user(request)
        account = trading_account_get_for_user(user=user, account_id=account_id)
        body = GuardResetInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        state = guard_reset(account=account, actor=user, **body.validated_data)
        return Response(GuardResetOutputSerializer(state).data)


class CloseIntentListApi(APIView):
    """GET: the account's close intents, newest first (?state=)."""

    @extend_schema(
        operation_id="account_close_intents",
        parameters=[CloseIntentListFilterSerializer],
        responses=paginated(CloseIntentOutputSerializer, "PaginatedCloseIntentList"),
        tags=["guards"],
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = trading_account_get_for_user(user=authenticated_user(request), account_id=account_id)
        filters = CloseIntentListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        intents = close_intent_list_for_account(
            account=account, state=filters.validated_data.get("state")
        ).select_related("actor")
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(intents, request, view=self)
        return paginator.get_paginated_response(CloseIntentOutputSerializer(page, many=True).data)


class _ManualCloseApi(APIView):
    def _close(self, request: Request, account_id: int, ticket: int | None) -> Response:
        user = authenticated_user(request)
        account = trading_account_get_for_user(user=user, account_id=account_id)
        body = ManualCloseInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        close = manual_close_request(
            account=account,
            user=user,
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
            ticket=ticket,
            request_fingerprint=request_fingerprint_for(
                account_id=account.pk, ticket=ticket, body=dict(body.validated_data)
            ),
            trigger=CloseTrigger.API,
            reason=body.validated_data["reason"],
        )
        response = Response(ManualCloseOutputSerializer(close.response).data, status=status.HTTP_202_ACCEPTED)
        response["Idempotent-Replayed"] = "true" if close.replayed else "false"
        return response


class PositionCloseApi(_ManualCloseApi):
    """POST (header Idempotency-Key): close one position. 202 with the pending intent; the same key and body
    replay the first answer, the same key with another body is a 409. Owners and support; a trader on their own
    accounts when the owner allows it."""

    @extend_schema(
        operation_id="position_close",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ManualCloseInputSerializer,
        responses={202: ManualCloseOutputSerializer},
        tags=["guards"],
    )
    def post(self, request: Request, account_id: int, ticket: int) -> Response:
        return self._close(request, account_id, ticket)


class PositionsCloseAllApi(_ManualCloseApi):
    """POST (header Idempotency-Key): close every position of the account; as the single close otherwise."""

    @extend_schema(
        operation_id="positions_close_all",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=ManualCloseInputSerializer,
        responses={202: ManualCloseOutputSerializer},
        tags=["guards"],
    )
    def post(self, request: Request, account_id: int) -> Response:
        return self._close(request, account_id, None)


class AlertListApi(APIView):
    """GET ?after=<seq>: the alerts numbered after `after` (guard levels, liquidations, closes, resets) of the
    accounts the user sees (?account= one of them), oldest first. When there is none yet, waits up to `wait`
    seconds (long poll) without holding a database connection, and answers as soon as one is numbered."""

    @extend_schema(
        operation_id="alerts",
        parameters=[AlertListFilterSerializer],
        responses=AlertLedgerOutputSerializer,
        tags=["guards"],
    )
    def get(self, request: Request) -> Response:
        user = authenticated_user(request)
        filters = AlertListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        account = None
        if "account" in params:
            account = trading_account_get_for_user(user=user, account_id=params["account"])
        wait = min(float(params["wait"]), float(settings.API_ALERTS_MAX_WAIT_SECONDS))
        deadline = time.monotonic() + wait
        waiter = AlertWaiter() if wait > 0 else None
        try:
            while True:
                if alerts_unsequenced_exist():
                    alerts_sequence()
                alerts = guard_alert_list_after(
                    user=user, after=params["after"], account=account, limit=params["limit"] + 1
                )
                remaining = deadline - time.monotonic()
                if alerts or waiter is None or remaining <= 0:
                    break
                if not connection.in_atomic_block:
                    connection.close()  # wait without holding a database connection
                waiter.wait(min(remaining, LEDGER_RECHECK_SECONDS))
        finally:
            if waiter is not None:
                waiter.close()
        has_more = len(alerts) > params["limit"]
        alerts = alerts[: params["limit"]]
        last_seq = alerts[-1].seq if alerts else params["after"]
        return Response(
            AlertLedgerOutputSerializer({"results": alerts, "last_seq": last_seq, "has_more": has_more}).data
        )
