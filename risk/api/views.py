"""Thin DRF views: validate input, call one selector or service, render the output serializer."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from core.api.auth import authenticated_user
from core.api.pagination import StrictLimitOffsetPagination
from core.api.schema import PageParametersSerializer, paginated
from risk.api.serializers import (
    RiskConfigHistoryOutputSerializer,
    RiskConfigOutputSerializer,
    RiskConfigUpdateInputSerializer,
    TradeSetupSizeInputSerializer,
    TradeSetupSizeOutputSerializer,
)
from risk.selectors import risk_config_current, risk_config_history, risk_sizing_account_get
from risk.services import risk_config_update, trade_setup_size


class OwnerWritesOnly(permissions.BasePermission):
    message = "Only an owner may change the risk configuration."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return request.method in permissions.SAFE_METHODS or (isinstance(user, User) and user.is_owner)


class OperatorsOnly(permissions.BasePermission):
    message = "Only owners and support staff may read the configuration history."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return isinstance(user, User) and user.is_operator


class RiskConfigDetailApi(APIView):
    """GET: the configuration in force (any signed-in user). PUT (every setting) / PATCH (some): a new version,
    owners only; a reason is always required."""

    permission_classes = [permissions.IsAuthenticated, OwnerWritesOnly]

    @extend_schema(operation_id="risk_config", responses=RiskConfigOutputSerializer, tags=["risk"])
    def get(self, request: Request) -> Response:
        return Response(RiskConfigOutputSerializer(risk_config_current()).data)

    @extend_schema(
        operation_id="risk_config_replace",
        request=RiskConfigUpdateInputSerializer,
        responses=RiskConfigOutputSerializer,
        tags=["risk"],
    )
    def put(self, request: Request) -> Response:
        return self._update(request, partial=False)

    @extend_schema(
        operation_id="risk_config_update",
        request=RiskConfigUpdateInputSerializer(partial=True),
        responses=RiskConfigOutputSerializer,
        tags=["risk"],
    )
    def patch(self, request: Request) -> Response:
        return self._update(request, partial=True)

    def _update(self, request: Request, *, partial: bool) -> Response:
        serializer = RiskConfigUpdateInputSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        values: dict[str, Any] = dict(serializer.validated_data)
        config = risk_config_update(
            actor=authenticated_user(request), reason=values.pop("reason", ""), **values
        )
        return Response(RiskConfigOutputSerializer(config).data)


class RiskConfigHistoryPagination(StrictLimitOffsetPagination):
    max_limit = 200


class RiskConfigHistoryListApi(APIView):
    """Every version, newest first, with old and new values (owners and support)."""

    permission_classes = [permissions.IsAuthenticated, OperatorsOnly]

    @extend_schema(
        operation_id="risk_config_history",
        parameters=[PageParametersSerializer],
        responses=paginated(RiskConfigHistoryOutputSerializer, "PaginatedRiskConfigHistoryList"),
        tags=["risk"],
    )
    def get(self, request: Request) -> Response:
        paginator = RiskConfigHistoryPagination()
        page = paginator.paginate_queryset(risk_config_history(), request, view=self)
        return paginator.get_paginated_response(RiskConfigHistoryOutputSerializer(page, many=True).data)


class TradeSetupSizeApi(APIView):
    """Size a setup on an account: traders their own accounts, owners, support and the bot (risk.size_any_account)
    any. A rejection for the account's state is a 200 with approved=false; a wrong setup is a 400."""

    @extend_schema(
        operation_id="trade_setup_size",
        request=TradeSetupSizeInputSerializer,
        responses=TradeSetupSizeOutputSerializer,
        tags=["risk"],
    )
    def post(self, request: Request, account_id: int) -> Response:
        account = risk_sizing_account_get(user=authenticated_user(request), account_id=account_id)
        serializer = TradeSetupSizeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        log = trade_setup_size(
            account=account, actor=authenticated_user(request), **serializer.validated_data
        )
        return Response(TradeSetupSizeOutputSerializer(log).data)
