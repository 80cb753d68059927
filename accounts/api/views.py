"""Thin DRF views of the accounts API: who am I, the accounts I may see, their snapshot history."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import (
    AccountListFilterSerializer,
    AccountOutputSerializer,
    MeOutputSerializer,
    SnapshotHistoryFilterSerializer,
    SnapshotHistoryOutputSerializer,
)
from accounts.models import Role
from accounts.selectors import (
    account_list_filtered,
    account_snapshot_history,
    trading_account_get_for_user,
    user_visible_account_ids,
)
from core.api.auth import authenticated_user
from core.api.pagination import StrictLimitOffsetPagination
from core.api.schema import paginated


class MeApi(APIView):
    """GET: the signed-in user, roles, permissions and the ids of the accounts they may see."""

    @extend_schema(operation_id="me", responses=MeOutputSerializer, tags=["accounts"])
    def get(self, request: Request) -> Response:
        user = authenticated_user(request)
        groups = set(user.groups.values_list("name", flat=True))
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "role": user.role,
            "roles": [role.value for role in Role if role.value in groups],
            "permissions": sorted(user.get_all_permissions()),
            "account_ids": user_visible_account_ids(user=user),
        }
        return Response(MeOutputSerializer(data).data)


class AccountListApi(APIView):
    """GET: the accounts the user may see (?status=, ?server=, ?search=), with the latest snapshot and its
    freshness, terminal health, margin mode and a guard summary."""

    @extend_schema(
        operation_id="accounts_list",
        parameters=[AccountListFilterSerializer],
        responses=paginated(AccountOutputSerializer, "PaginatedAccountList"),
        tags=["accounts"],
    )
    def get(self, request: Request) -> Response:
        filters = AccountListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = {k: v for k, v in filters.validated_data.items() if k in ("status", "server", "search")}
        accounts = account_list_filtered(user=authenticated_user(request), **params)
        paginator = StrictLimitOffsetPagination()
        page = paginator.paginate_queryset(accounts, request, view=self)
        return paginator.get_paginated_response(AccountOutputSerializer(page, many=True).data)


class AccountDetailApi(APIView):
    """GET: one account (another trader's account is a 404)."""

    @extend_schema(operation_id="account_detail", responses=AccountOutputSerializer, tags=["accounts"])
    def get(self, request: Request, account_id: int) -> Response:
        account = trading_account_get_for_user(user=authenticated_user(request), account_id=account_id)
        return Response(AccountOutputSerializer(account).data)


class AccountSnapshotHistoryApi(APIView):
    """GET ?since=&until=&step=: equity history for charts, downsampled on the server (one point per step)."""

    @extend_schema(
        operation_id="account_snapshots",
        parameters=[SnapshotHistoryFilterSerializer],
        responses=SnapshotHistoryOutputSerializer,
        tags=["accounts"],
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = trading_account_get_for_user(user=authenticated_user(request), account_id=account_id)
        filters = SnapshotHistoryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        window = filters.validated_data
        points = account_snapshot_history(
            account=account, since=window["since"], until=window["until"], step_seconds=window["step"]
        )
        return Response(
            SnapshotHistoryOutputSerializer({"account": account.pk, **window, "points": points}).data
        )
