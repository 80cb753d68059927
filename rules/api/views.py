"""Thin DRF views of rule sets and assignments: owners write, operators (owner, support) read everything, a trader
reads the rule set of their own account."""

from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from core.api.auth import authenticated_user
from core.api.pagination import StrictLimitOffsetPagination
from core.api.schema import PageParametersSerializer, paginated
from core.exceptions import PermissionDeniedError
from rules.api.serializers import (
    AccountRuleSetAssignInputSerializer,
    AccountRuleSetOutputSerializer,
    ChangeOutputSerializer,
    CloseOnlyLiftInputSerializer,
    CloseOnlyLiftOutputSerializer,
    PresetOutputSerializer,
    RuleSetCreateInputSerializer,
    RuleSetOutputSerializer,
    RuleSetTermsInputSerializer,
)
from rules.models import TERM_FIELDS, RuleSet
from rules.presets import PRESETS
from rules.selectors import (
    account_rule_set_for_user,
    account_rule_set_history,
    rule_set_get,
    rule_set_history,
    rule_set_list,
)
from rules.services import (
    account_rule_set_assign,
    account_rules_close_only_lift,
    rule_set_create,
    rule_set_update,
)


class OperatorsReadOwnersWrite(permissions.BasePermission):
    message = "Only owners change rule sets; owners and support staff read them."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not isinstance(user, User):
            return False
        return user.is_operator if request.method in permissions.SAFE_METHODS else user.is_owner


class OwnersWrite(permissions.BasePermission):
    message = "Only an owner may assign a rule set."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return request.method in permissions.SAFE_METHODS or (isinstance(user, User) and user.is_owner)


class RulesPagination(StrictLimitOffsetPagination):
    max_limit = 200


def _page(view: APIView, request: Request, rows: Any, serializer: Any) -> Response:
    paginator = RulesPagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class RuleSetListApi(APIView):
    """GET: every rule set (owners, support). POST: a new rule set, from a preset or custom (owners)."""

    permission_classes = [permissions.IsAuthenticated, OperatorsReadOwnersWrite]

    @extend_schema(
        operation_id="rule_sets",
        parameters=[PageParametersSerializer],
        responses=paginated(RuleSetOutputSerializer, "PaginatedRuleSetList"),
        tags=["rules"],
    )
    def get(self, request: Request) -> Response:
        return _page(self, request, rule_set_list(), RuleSetOutputSerializer)

    @extend_schema(
        operation_id="rule_set_create",
        request=RuleSetCreateInputSerializer,
        responses={201: RuleSetOutputSerializer},
        tags=["rules"],
    )
    def post(self, request: Request) -> Response:
        serializer = RuleSetCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        row = rule_set_create(
            actor=authenticated_user(request),
            name=values.pop("name"),
            reason=values.pop("reason"),
            preset=values.pop("preset", None),
            description=values.pop("description", None),
            **values,
        )
        return Response(RuleSetOutputSerializer(row).data, status=status.HTTP_201_CREATED)


class RuleSetDetailApi(APIView):
    """GET: one rule set (owners, support). PATCH: change some of its terms, with a reason (owners); accounts under
    it use the new terms from their next snapshot."""

    permission_classes = [permissions.IsAuthenticated, OperatorsReadOwnersWrite]

    @extend_schema(operation_id="rule_set", responses=RuleSetOutputSerializer, tags=["rules"])
    def get(self, request: Request, rule_set_id: int) -> Response:
        return Response(RuleSetOutputSerializer(rule_set_get(rule_set_id=rule_set_id)).data)

    @extend_schema(
        operation_id="rule_set_update",
        request=RuleSetTermsInputSerializer(partial=True),
        responses=RuleSetOutputSerializer,
        tags=["rules"],
    )
    def patch(self, request: Request, rule_set_id: int) -> Response:
        row = rule_set_get(rule_set_id=rule_set_id)
        serializer = RuleSetTermsInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        if "reason" not in values:
            raise ValidationError({"reason": ["A reason is required: say why."]})
        row = rule_set_update(
            actor=authenticated_user(request), rule_set=row, reason=values.pop("reason"), **values
        )
        return Response(RuleSetOutputSerializer(row).data)


class RuleSetHistoryApi(APIView):
    """Every revision of a rule set, newest first: who, when, why, old → new (owners, support)."""

    permission_classes = [permissions.IsAuthenticated, OperatorsReadOwnersWrite]

    @extend_schema(
        operation_id="rule_set_history",
        parameters=[PageParametersSerializer],
        responses=paginated(ChangeOutputSerializer, "PaginatedRuleSetHistoryList"),
        tags=["rules"],
    )
    def get(self, request: Request, rule_set_id: int) -> Response:
        row = rule_set_get(rule_set_id=rule_set_id)
        return _page(self, request, rule_set_history(rule_set=row), ChangeOutputSerializer)


class RuleSetPresetListApi(APIView):
    """The presets a rule set can start from, with their terms (owners, support)."""

    permission_classes = [permissions.IsAuthenticated, OperatorsReadOwnersWrite]

    @extend_schema(
        operation_id="rule_set_presets", responses=PresetOutputSerializer(many=True), tags=["rules"]
    )
    def get(self, request: Request) -> Response:
        rows = [
            {
                "key": key,
                "name": preset["name"],
                "description": preset["description"],
                "terms": RuleSet(**{name: preset[name] for name in TERM_FIELDS}).terms
                | {"name": preset["name"], "description": preset["description"]},
            }
            for key, preset in PRESETS.items()
        ]
        return Response(PresetOutputSerializer(rows, many=True).data)


class AccountRuleSetApi(APIView):
    """GET: the account's rule set with its initial balance and start (`assigned: false` without one; a trader
    their own accounts). PUT: assign or change it, with a reason (owners); it applies from the next snapshot."""

    permission_classes = [permissions.IsAuthenticated, OwnersWrite]

    @extend_schema(operation_id="account_rule_set", responses=AccountRuleSetOutputSerializer, tags=["rules"])
    def get(self, request: Request, account_id: int) -> Response:
        account, row = account_rule_set_for_user(user=authenticated_user(request), account_id=account_id)
        return Response(
            AccountRuleSetOutputSerializer(
                AccountRuleSetOutputSerializer.shape(account_id=account.pk, row=row)
            ).data
        )

    @extend_schema(
        operation_id="account_rule_set_assign",
        request=AccountRuleSetAssignInputSerializer,
        responses=AccountRuleSetOutputSerializer,
        tags=["rules"],
    )
    def put(self, request: Request, account_id: int) -> Response:
        actor = authenticated_user(request)
        account, _ = account_rule_set_for_user(user=actor, account_id=account_id)
        serializer = AccountRuleSetAssignInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = dict(serializer.validated_data)
        rule_set = RuleSet.objects.filter(pk=values["rule_set"]).first()
        if rule_set is None:
            raise ValidationError({"rule_set": [f"No rule set with id {values['rule_set']}."]})
        row = account_rule_set_assign(
            actor=actor,
            account=account,
            rule_set=rule_set,
            initial_balance=values["initial_balance"],
            start=values.get("start"),
            reason=values["reason"],
        )
        return Response(
            AccountRuleSetOutputSerializer(
                AccountRuleSetOutputSerializer.shape(account_id=account.pk, row=row)
            ).data
        )


class AccountRuleSetHistoryApi(APIView):
    """Every assignment and change of the account's rule set, newest first (owners, support)."""

    permission_classes = [permissions.IsAuthenticated, OperatorsReadOwnersWrite]

    @extend_schema(
        operation_id="account_rule_set_history",
        parameters=[PageParametersSerializer],
        responses=paginated(ChangeOutputSerializer, "PaginatedAccountRuleSetHistoryList"),
        tags=["rules"],
    )
    def get(self, request: Request, account_id: int) -> Response:
        account, _ = account_rule_set_for_user(user=authenticated_user(request), account_id=account_id)
        return _page(self, request, account_rule_set_history(account=account), ChangeOutputSerializer)


class AccountCloseOnlyLiftApi(APIView):
    """POST: lift the account's close-only state with a reason (owners, support: `rules.lift_close_only`). A 400
    when the account is not close-only."""

    @extend_schema(
        operation_id="account_close_only_lift",
        request=CloseOnlyLiftInputSerializer,
        responses=CloseOnlyLiftOutputSerializer,
        tags=["rules"],
    )
    def post(self, request: Request, account_id: int) -> Response:
        actor = authenticated_user(request)
        if not actor.has_perm("rules.lift_close_only"):
            raise PermissionDeniedError("Only owners and support staff may lift close-only.")
        account, _ = account_rule_set_for_user(user=actor, account_id=account_id)
        serializer = CloseOnlyLiftInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = account_rules_close_only_lift(
            actor=actor, account=account, reason=serializer.validated_data["reason"]
        )
        return Response(CloseOnlyLiftOutputSerializer(row).data)
