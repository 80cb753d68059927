"""Reads: rule sets, their history, an account's assignment (scoped to the user)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, F, Prefetch, QuerySet
from django.utils import timezone

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_get_for_user
from core.exceptions import NotFoundError
from rules import evaluation
from rules.models import (
    AccountRuleSet,
    AccountRuleSetChange,
    AccountRulesState,
    RuleSet,
    RuleSetChange,
    RuleSetKind,
)
from rules.tracking import state_from_json


def rule_set_list() -> QuerySet[RuleSet]:
    return RuleSet.objects.order_by("name")


def rule_set_list_with_usage() -> QuerySet[RuleSet]:
    """Every rule set with `accounts_count` (accounts under it) and its history (`history`, newest first, with who
    changed it): the /risk/ page's "Rule sets" section in two queries."""
    return (
        RuleSet.objects.annotate(accounts_count=Count("assignments"))
        .prefetch_related(
            Prefetch(
                "changes",
                queryset=RuleSetChange.objects.select_related("changed_by").order_by("-revision"),
                to_attr="history",
            )
        )
        .order_by("name")
    )


def rule_set_get(*, rule_set_id: int) -> RuleSet:
    row = RuleSet.objects.filter(pk=rule_set_id).first()
    if row is None:
        raise NotFoundError("No such rule set.")
    return row


def rule_set_history(*, rule_set: RuleSet) -> QuerySet[RuleSetChange]:
    return rule_set.changes.select_related("changed_by").order_by("-revision")


def account_rule_set_get(*, account: TradingAccount) -> AccountRuleSet | None:
    return AccountRuleSet.objects.select_related("rule_set", "assigned_by").filter(account=account).first()


def account_rule_set_for_user(*, user: User, account_id: int) -> tuple[TradingAccount, AccountRuleSet | None]:
    """The account (another trader's is a 404) and its assignment, if any."""
    account = trading_account_get_for_user(user=user, account_id=account_id)
    return account, account_rule_set_get(account=account)


def account_rule_set_history(*, account: TradingAccount) -> QuerySet[AccountRuleSetChange]:
    return (
        AccountRuleSetChange.objects.filter(account=account)
        .select_related("changed_by")
        .order_by("-revision")
    )


RULES_STATE_JOINS = ("rules_state", "rule_set_assignment__rule_set")


def account_rules_state_current(*, account: TradingAccount) -> AccountRulesState | None:
    """The live rules state of an account, only while it belongs to the account's current assignment of a rule set
    with limits (a state left from an earlier assignment, or under `classic`, is none). No query when the account
    was read with `select_related(*RULES_STATE_JOINS)`, else one."""
    descriptor = type(account).rules_state  # the reverse one-to-one
    if descriptor.is_cached(account) and type(account).rule_set_assignment.is_cached(account):
        row = getattr(account, "rules_state", None)
        assignment = getattr(account, "rule_set_assignment", None)
        if (
            row is None
            or assignment is None
            or assignment.rule_set.kind != RuleSetKind.LIMITS
            or row.assignment_revision != assignment.revision
        ):
            return None
        return row
    return (
        AccountRulesState.objects.filter(
            account_id=account.pk,
            account__rule_set_assignment__rule_set__kind=RuleSetKind.LIMITS,
            assignment_revision=F("account__rule_set_assignment__revision"),
        )
        .select_related("account__rule_set_assignment__rule_set")
        .first()
    )


def account_rules_summary(*, account: TradingAccount, now: datetime | None = None) -> dict[str, Any] | None:
    """The account's rule set and where it stands, for the guard summary (API and pages): the headroom first
    (today's permitted loss, the permitted total loss, the used percents, the next reset), then the objectives.
    None without a rule set with limits. One query (or none when the account came with RULES_STATE_JOINS).

    `next_reset` is the next day boundary after `now` (evaluation.next_reset_live): the stored one goes stale
    once its boundary passes without a new reading, and a countdown to it would read 0:00."""
    assignment = (
        getattr(account, "rule_set_assignment", None)
        if type(account).rule_set_assignment.is_cached(account)
        else AccountRuleSet.objects.select_related("rule_set").filter(account_id=account.pk).first()
    )
    if assignment is None or assignment.rule_set.kind != RuleSetKind.LIMITS:
        return None
    account.rule_set_assignment = assignment
    row = account_rules_state_current(account=account)
    rule_set = assignment.rule_set
    return {
        "rule_set": rule_set.name,
        "rule_set_id": rule_set.pk,
        "initial_balance": assignment.initial_balance,
        "start": assignment.start,
        "evaluated": row is not None,
        "status": row.status if row else "active",
        "level": row.level if row else "normal",
        "breach": row.breach if row else None,
        "permitted_loss_today": row.permitted_loss_today if row else None,
        "permitted_loss_total": row.permitted_loss_total if row else None,
        "daily_limit": row.daily_limit if row else None,
        "max_loss_limit": row.max_loss_limit if row else None,
        "daily_used_percent": row.daily_used_percent if row else None,
        "total_used_percent": row.total_used_percent if row else None,
        "headroom": row.headroom if row else None,
        "next_reset": evaluation.next_reset_live(
            row.next_reset if row else None,
            now=now or timezone.now(),
            timezone=rule_set.timezone,
            reset_time=evaluation.parse_reset_time(rule_set.reset_time),
        ),
        "close_only": bool(row and row.close_only),
        "trading_days": row.trading_days if row else 0,
        "min_trading_days": rule_set.min_trading_days,
        "profit_target_percent": rule_set.profit_target_percent,
        "profit_target_met": row.profit_target_met if row else None,
        "best_day_share": row.best_day_share if row else None,
        "best_day_percent": rule_set.best_day_percent,
        "objectives_met_at": row.objectives_met_at if row else None,
        "evaluated_at": row.evaluated_at if row else None,
    }


def account_rules_days(*, account: TradingAccount) -> list[dict[str, Any]]:
    """The days of the account's evaluation, newest first, each with its base, limit, lowest equity, closed profit
    and whether it was a trading day (the objectives panel). Empty without an evaluated rule set."""
    row = account_rules_state_current(account=account)
    assignment = getattr(account, "rule_set_assignment", None) if row is not None else None
    if row is None or assignment is None or not row.state:
        return []
    rules = assignment.rule_set.as_rules(initial_balance=assignment.initial_balance, start=assignment.start)
    if rules is None:
        return []
    state = state_from_json(rules, row.state)
    daily_on = rules.daily_loss is not None
    return [
        {
            "day": day.day,
            "start": day.start,
            "base": day.base if daily_on else None,
            "daily_limit": state.daily_limit_of(day),
            "lowest_equity": day.lowest_equity,
            "closed_profit": day.closed_profit,
            "traded": day.traded,
        }
        for day in reversed(state.days)
    ]
