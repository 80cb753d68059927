"""Thin DRF views: validate input, call one selector or service, render the output serializer.

Bot trades are written by the signal bot's API user (reconciliation.write_any_account), owners, and traders on
their own accounts; another trader's account is a 404. Events are read by whoever may see the account and
acknowledged/resolved by owners and support (reconciliation.change_reconciliationevent).
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import TradingAccount
from accounts.selectors import trading_account_get_for_user
from core.api.auth import authenticated_user
from core.api.pagination import StrictLimitOffsetPagination
from core.api.schema import paginated
from core.readcache import account_read_cached
from reconciliation.api.serializers import (
    BotTradeCloseInputSerializer,
    BotTradeListFilterSerializer,
    BotTradeOutputSerializer,
    BotTradeRegisterInputSerializer,
    EventListFilterSerializer,
    EventNoteInputSerializer,
    EventOutputSerializer,
    PositionListOutputSerializer,
    ReconciliationStatusOutputSerializer,
)
from reconciliation.selectors import (
    account_positions_read,
    account_reconciliation_status,
    bot_trade_account_get_for_reading,
    bot_trade_account_get_for_writing,
    bot_trade_get_by_key,
    bot_trade_list_for_account,
    event_get_for_user,
    event_list_for_user,
)
from reconciliation.services import bot_trade_close, bot_trade_register, event_acknowledge, event_resolve


class MayHandleEvents(permissions.BasePermission):
    message = "Only owners and support staff may acknowledge or resolve events."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm("reconciliation.change_reconciliationevent")


class BotTradeRegisterApi(APIView):
    """POST: register a bot trade (201), or re-send it (200, idempotent on account + signal_id + leg).
    GET: the account's bot trades, newest first (?status=open|closed)."""

    @extend_schema(
        operation_id="bot_trade_register",
        request=BotTradeRegisterInputSerializer,
        responses={201: BotTradeOutputSerializer, 200: BotTradeOutputSerializer},
        tags=["reconciliation"],
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = bot_trade_account_get_for_writing(user=authenticated_user(request), account_id=account_id)
        serializer = BotTradeRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        registration = bot_trade_register(account=account, **serializer.validated_data)
        return Response(
            BotTradeOutputSerializer(registration.bot_trade).data,
            status=status.HTTP_201_CREATED if registration.created else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="bot_trades_list",
        parameters=[BotTradeListFilterSerializer],
        responses=paginated(BotTradeOutputSerializer, "PaginatedBotTradeList"),
        tags=["reconciliation"],
    )
    def get(self, request: Request, account_id: int) -> Response:
        # Reading needs only to see the account (support included); writing is checked in post().
        account = bot_trade_account_get_for_reading(user=authenticated_user(request), account_id=account_id)
        filters = BotTradeListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(
            bot_trade_list_for_account(account=account, status=filters.validated_data.get("status")),
            request,
            view=self,
        )
        return paginator.get_paginated_response(BotTradeOutputSerializer(page, many=True).data)


class BotTradeCloseApi(APIView):
    """POST {signal_id, leg, closed_at?}: the bot no longer expects this position. Idempotent."""

    @extend_schema(
        operation_id="bot_trade_close",
        request=BotTradeCloseInputSerializer,
        responses=BotTradeOutputSerializer,
        tags=["reconciliation"],
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = bot_trade_account_get_for_writing(user=authenticated_user(request), account_id=account_id)
        serializer = BotTradeCloseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        trade = bot_trade_get_by_key(account=account, signal_id=data["signal_id"], leg=data["leg"])
        trade = bot_trade_close(
            bot_trade=trade, closed_at=data["closed_at"], actor=authenticated_user(request)
        )
        return Response(BotTradeOutputSerializer(trade).data)


class EventListApi(APIView):
    """GET: events of the accounts the user may see, newest first (?account=, ?state=, ?kind=, ?since=).
    `account` of an account the user may not see is a 404."""

    @extend_schema(
        operation_id="events_list",
        parameters=[EventListFilterSerializer],
        responses=paginated(EventOutputSerializer, "PaginatedEventList"),
        tags=["reconciliation"],
    )
    def get(self, request: Request) -> Response:
        filters = EventListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        events = event_list_for_user(
            user=authenticated_user(request),
            account_id=params.get("account"),
            state=params.get("state"),
            kind=params.get("kind"),
            since=params.get("since"),
        ).select_related("acknowledged_by", "resolved_by")
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventOutputSerializer(page, many=True).data)


class EventDetailApi(APIView):
    """GET: one event of an account the user may see."""

    @extend_schema(operation_id="event_detail", responses=EventOutputSerializer, tags=["reconciliation"])
    def get(self, request: Request, event_id: int) -> Response:
        return Response(
            EventOutputSerializer(
                event_get_for_user(user=authenticated_user(request), event_id=event_id)
            ).data
        )


class AccountPositionsApi(APIView):
    """GET: open positions with the matched bot trade, match method and divergences, plus totals (cached per
    account, invalidated when a sync commits)."""

    # the account_read_cached read it answers; a hit is served on the event loop (core/api/fastread.py)
    cached_read = "positions"

    @extend_schema(
        operation_id="account_positions", responses=PositionListOutputSerializer, tags=["reconciliation"]
    )
    def get(self, request: Request, account_id: int) -> Response:
        user = authenticated_user(request)

        def build(account: TradingAccount) -> dict[str, Any]:
            read = account_positions_read(account=account)
            return PositionListOutputSerializer(read, context={"divergences": read["divergences"]}).data

        return Response(
            account_read_cached(
                user_id=user.pk,
                account_id=account_id,
                name=self.cached_read,
                load_account=lambda: trading_account_get_for_user(user=user, account_id=account_id),
                build=build,
            )
        )


class AccountReconciliationApi(APIView):
    """GET: the last sync (time, duration, ok or error), matched / unmatched / missing / open divergence counts and
    recent events (cached per account, invalidated when a sync commits)."""

    # the account_read_cached read it answers; a hit is served on the event loop (core/api/fastread.py)
    cached_read = "reconciliation"

    @extend_schema(
        operation_id="account_reconciliation",
        responses=ReconciliationStatusOutputSerializer,
        tags=["reconciliation"],
    )
    def get(self, request: Request, account_id: int) -> Response:
        user = authenticated_user(request)
        return Response(
            account_read_cached(
                user_id=user.pk,
                account_id=account_id,
                name=self.cached_read,
                load_account=lambda: trading_account_get_for_user(user=user, account_id=account_id),
                build=lambda account: (
                    ReconciliationStatusOutputSerializer(account_reconciliation_status(account=account)).data
                ),
            )
        )


class EventAcknowledgeApi(APIView):
    permission_classes = [permissions.IsAuthenticated, MayHandleEvents]

    @extend_schema(
        operation_id="event_acknowledge",
        request=EventNoteInputSerializer,
        responses=EventOutputSerializer,
        tags=["reconciliation"],
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = event_get_for_user(user=authenticated_user(request), event_id=event_id)
        serializer = EventNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_acknowledge(
            event=event, actor=authenticated_user(request), note=serializer.validated_data["note"]
        )
        return Response(EventOutputSerializer(event).data)


class EventResolveApi(APIView):
    permission_classes = [permissions.IsAuthenticated, MayHandleEvents]

    @extend_schema(
        operation_id="event_resolve",
        request=EventNoteInputSerializer,
        responses=EventOutputSerializer,
        tags=["reconciliation"],
    )
    def post(self, request: Request, event_id: int) -> Response:
        event = event_get_for_user(user=authenticated_user(request), event_id=event_id)
        serializer = EventNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_resolve(
            event=event, actor=authenticated_user(request), note=serializer.validated_data["note"]
        )
        return Response(EventOutputSerializer(event).data)
