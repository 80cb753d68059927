"""Thin DRF views: validate input, call one selector or service, render the output serializer.

Bot trades are written by the signal bot's API user (reconciliation.write_any_account), owners, and traders on
their own accounts; another trader's account is a 404. Events are read by whoever may see the account and
acknowledged/resolved by owners and support (reconciliation.change_reconciliationevent).
"""

from rest_framework import permissions, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import authenticated_user
from reconciliation.api.serializers import (
    BotTradeCloseInputSerializer,
    BotTradeListFilterSerializer,
    BotTradeOutputSerializer,
    BotTradeRegisterInputSerializer,
    EventListFilterSerializer,
    EventNoteInputSerializer,
    EventOutputSerializer,
)
from reconciliation.selectors import (
    bot_trade_account_get_for_writing,
    bot_trade_get_by_key,
    bot_trade_list_for_account,
    event_get_for_user,
    event_list_for_user,
)
from reconciliation.services import bot_trade_close, bot_trade_register, event_acknowledge, event_resolve


class ListPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


class MayHandleEvents(permissions.BasePermission):
    message = "Only owners and support staff may acknowledge or resolve events."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user.has_perm("reconciliation.change_reconciliationevent")


class BotTradeRegisterApi(APIView):
    """POST: register a bot trade (201), or re-send it (200, idempotent on account + signal_id + leg).
    GET: the account's bot trades, newest first (?status=open|closed)."""

    def post(self, request: Request, account_id: int) -> Response:
        account = bot_trade_account_get_for_writing(user=authenticated_user(request), account_id=account_id)
        serializer = BotTradeRegisterInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        registration = bot_trade_register(account=account, **serializer.validated_data)
        return Response(
            BotTradeOutputSerializer(registration.bot_trade).data,
            status=status.HTTP_201_CREATED if registration.created else status.HTTP_200_OK,
        )

    def get(self, request: Request, account_id: int) -> Response:
        account = bot_trade_account_get_for_writing(user=authenticated_user(request), account_id=account_id)
        filters = BotTradeListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = ListPagination()
        page = paginator.paginate_queryset(
            bot_trade_list_for_account(account=account, **filters.validated_data), request, view=self
        )
        return paginator.get_paginated_response(BotTradeOutputSerializer(page, many=True).data)


class BotTradeCloseApi(APIView):
    """POST {signal_id, leg, closed_at?}: the bot no longer expects this position. Idempotent."""

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
    """GET: events of the accounts the user may see, newest first (?account=, ?state=)."""

    def get(self, request: Request) -> Response:
        filters = EventListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        events = event_list_for_user(
            user=authenticated_user(request),
            account_id=filters.validated_data.get("account"),
            state=filters.validated_data.get("state"),
        ).select_related("acknowledged_by", "resolved_by")
        paginator = ListPagination()
        page = paginator.paginate_queryset(events, request, view=self)
        return paginator.get_paginated_response(EventOutputSerializer(page, many=True).data)


class EventAcknowledgeApi(APIView):
    permission_classes = [permissions.IsAuthenticated, MayHandleEvents]

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

    def post(self, request: Request, event_id: int) -> Response:
        event = event_get_for_user(user=authenticated_user(request), event_id=event_id)
        serializer = EventNoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        event = event_resolve(
            event=event, actor=authenticated_user(request), note=serializer.validated_data["note"]
        )
        return Response(EventOutputSerializer(event).data)
