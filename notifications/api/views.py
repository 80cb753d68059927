"""Thin DRF views over the notification services and selectors: a user's own preferences and time zone, a
Telegram link code, and the deliveries they may see (operators: all; others: their own)."""

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from core.api.auth import authenticated_user
from core.api.schema import paginated
from notifications.api.serializers import (
    NotificationOutputSerializer,
    NotificationPreferencesOutputSerializer,
    NotificationPreferencesUpdateInputSerializer,
    TelegramLinkCodeOutputSerializer,
)
from notifications.selectors import notification_list_for_user, preferences_for_user
from notifications.services import (
    notification_preference_update,
    telegram_link_code_create,
    user_time_zone_update,
)


def preferences_data(user: User) -> dict[str, Any]:
    return {
        "time_zone": user.time_zone,
        "channels": [
            {
                "channel": p.channel,
                "enabled": p.enabled,
                "min_severity": p.min_severity,
                "ready": bool(p.address),  # linked chat / e-mail address present
            }
            for p in preferences_for_user(user=user)
        ],
    }


class NotificationPreferencesApi(APIView):
    """GET: my channels (enabled, minimum severity, ready) and time zone. PUT/PATCH: change them."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=NotificationPreferencesOutputSerializer)
    def get(self, request: Request) -> Response:
        user = authenticated_user(request)
        return Response(NotificationPreferencesOutputSerializer(preferences_data(user)).data)

    @extend_schema(
        request=NotificationPreferencesUpdateInputSerializer,
        responses=NotificationPreferencesOutputSerializer,
    )
    def put(self, request: Request) -> Response:
        return self._update(request)

    @extend_schema(
        request=NotificationPreferencesUpdateInputSerializer,
        responses=NotificationPreferencesOutputSerializer,
    )
    def patch(self, request: Request) -> Response:
        return self._update(request)

    def _update(self, request: Request) -> Response:
        user = authenticated_user(request)
        serializer = NotificationPreferencesUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            if "time_zone" in data:
                user_time_zone_update(user=user, time_zone=data["time_zone"])
            for item in data.get("channels", []):
                notification_preference_update(user=user, **item)
        user.refresh_from_db()
        return Response(NotificationPreferencesOutputSerializer(preferences_data(user)).data)


class TelegramLinkCodeCreateApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={201: TelegramLinkCodeOutputSerializer})
    def post(self, request: Request) -> Response:
        link = telegram_link_code_create(user=authenticated_user(request))
        data = {
            "code": link.code,
            "expires_in": link.expires_in,
            "instructions": f"Send {link.code} to the MT5 Guard bot in Telegram within {link.expires_in // 60} min.",
        }
        return Response(TelegramLinkCodeOutputSerializer(data).data, status=201)


class NotificationListApi(APIView):
    permission_classes = [permissions.IsAuthenticated]

    class Pagination(LimitOffsetPagination):
        default_limit = 50
        max_limit = 200

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, description="Only deliveries in this state."),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
        ],
        responses=paginated(NotificationOutputSerializer, "PaginatedNotificationList"),
    )
    def get(self, request: Request) -> Response:
        qs = notification_list_for_user(user=authenticated_user(request))
        state = request.query_params.get("state")
        if state:
            qs = qs.filter(state=state)
        paginator = self.Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(NotificationOutputSerializer(page, many=True).data)
