"""The overview: a fleet summary and one row per account the user may see, in a constant number of queries.

Everything a row shows comes from one SELECT: the account with its latest snapshot, guard state, terminal health
and guard overrides joined, the latest sync and the open-divergence count as subqueries, and the effective critical
limits computed in SQL (override, else the global value read once). Headroom is computed in SQL too, so the page
can sort 1 000 accounts by it and fetch one page.

"Least headroom first" (the default sort) orders by the binding permitted loss, the smallest of the money figures
the Headroom column shows (today's and overall, guard or rule set: guards.headroom), as a percent of equity, and
the column shows that percent under the money. Decision (issue #11): the operator's question is "which account is
nearest its end"; money cannot answer it across a fleet of different sizes and currencies (200 left of 5 000 is
nearer than 2 000 left of 200 000, and USD and JPY do not compare), a share of equity can, and printing it in the
column lets the reader see the order. The old key mixed units (guard limits in points of the peak or day anchor,
rule sets in percent of equity) and matched nothing on the page.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import OrderBy
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_list_for_user
from guards.headroom import PermittedLoss, permitted_loss_binding
from guards.models import GuardStatus, Level
from guards.selectors import guard_day_resets_at, guard_settings_global_values
from reconciliation.models import AccountSync, EventState, ReconciliationEvent
from rules.evaluation import next_reset_live, parse_reset_time
from rules.models import RuleSetKind

_PCT = DecimalField(max_digits=12, decimal_places=4)
_MONEY = DecimalField(max_digits=24, decimal_places=2)
# A figure that is off (daily loss disabled, no rule set) never bounds the headroom: above any equity.
_NO_LIMIT = Decimal("1000000000000000000")
# The permitted-loss figures of a row (money), the binding one is the smallest.
_BOUNDS = ("daily_headroom", "drawdown_headroom", "rules_today", "rules_total")

SORTS: dict[str, tuple[str | OrderBy, ...]] = {
    "headroom": (F("headroom_percent").asc(nulls_last=True), "server", "login"),
    "login": ("login", "server"),
    "equity": ("-equity_value", "server", "login"),
    "drawdown": ("-dd_percent", "server", "login"),
    "daily_loss": ("-dl_percent", "server", "login"),
    "divergences": ("-open_divergences", "server", "login"),
}
LEVEL_FILTERS = ("normal", "warning", "critical")


@dataclass(frozen=True)
class OverviewFilters:
    level: str = ""
    stale: bool = False
    halted: bool = False
    divergences: bool = False
    sort: str = "headroom"

    @classmethod
    def from_query(cls, query: Any) -> "OverviewFilters":
        level = query.get("level", "")
        sort = query.get("sort", "headroom")
        return cls(
            level=level if level in LEVEL_FILTERS else "",
            stale=query.get("stale") == "1",
            halted=query.get("halted") == "1",
            divergences=query.get("divergences") == "1",
            sort=sort if sort in SORTS else "headroom",
        )

    def as_query(self) -> dict[str, str]:
        query = {"sort": self.sort}
        if self.level:
            query["level"] = self.level
        for name in ("stale", "halted", "divergences"):
            if getattr(self, name):
                query[name] = "1"
        return query


def _open_divergences() -> Subquery:
    return Subquery(
        ReconciliationEvent.objects.filter(account_id=OuterRef("pk"), gone_at__isnull=True)
        .exclude(state=EventState.RESOLVED)
        .order_by()
        .values("account_id")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )


def _last_sync(field: str) -> Subquery:
    return Subquery(
        AccountSync.objects.filter(account_id=OuterRef("pk")).order_by("-started_at", "-pk").values(field)[:1]
    )


_RULES_CURRENT = Q(rule_set_assignment__rule_set__kind=RuleSetKind.LIMITS) & Q(
    rules_state__assignment_revision=F("rule_set_assignment__revision")
)


def _rules_value(path: str, output_field: Any) -> Case:
    """A column of the live rules state (or the rule set's name) while it belongs to the current assignment of a
    rule set with limits; else NULL."""
    name = path if "__" in path else f"rules_state__{path}"
    return Case(
        When(_RULES_CURRENT, then=F(name)),
        default=Value(None, output_field=output_field),
        output_field=output_field,
    )


def row_permitted_loss(account: TradingAccount, now: datetime | None = None) -> PermittedLoss:
    """The binding permitted loss of an overview row (its annotations; no query). The rule set's next reset is
    rolled past `now` when its stored boundary has passed (rules.evaluation.next_reset_live)."""
    now = now or timezone.now()
    rules_resets_at = getattr(account, "rules_next_reset", None)
    if rules_resets_at is not None and rules_resets_at <= now:
        rules_resets_at = next_reset_live(
            rules_resets_at,
            now=now,
            timezone=getattr(account, "rules_timezone", "UTC"),
            reset_time=parse_reset_time(getattr(account, "rules_reset_time", "00:00")),
        )
    return permitted_loss_binding(
        guard_today=getattr(account, "daily_headroom", None),
        guard_total=getattr(account, "drawdown_headroom", None),
        guard_resets_at=broker_day_resets_at(account=account, now=now),
        rule_set_name=getattr(account, "rules_name", None),
        rules_today=getattr(account, "rules_today", None),
        rules_total=getattr(account, "rules_total", None),
        rules_resets_at=rules_resets_at,
    )


def overview_accounts(*, user: User) -> QuerySet[TradingAccount]:
    """Every account the user may see, annotated with what a row shows. Ordered by nothing yet."""
    glob = guard_settings_global_values()
    dd_critical = Coalesce(
        F("guard_settings__drawdown_critical_percent"),
        Value(glob["drawdown_critical_percent"]),
        output_field=_PCT,
    )
    dl_global = glob["daily_loss_critical_percent"]
    dl_critical = Case(
        When(guard_settings__daily_loss_enabled=False, then=Value(None, output_field=_PCT)),
        default=Coalesce(
            F("guard_settings__daily_loss_critical_percent"),
            Value(dl_global, output_field=_PCT),
            output_field=_PCT,
        ),
        output_field=_PCT,
    )
    stale_before = timezone.now() - timedelta(seconds=settings.ACCOUNT_SNAPSHOT_STALE_SECONDS)
    return (
        trading_account_list_for_user(user=user)
        .select_related("guard_state", "health", "guard_settings")
        .annotate(
            equity_value=F("latest_snapshot__equity"),
            dd_critical=dd_critical,
            dl_critical=dl_critical,
            dd_percent=Coalesce(F("guard_state__drawdown_percent"), Value(Decimal("0")), output_field=_PCT),
            dl_percent=Coalesce(F("guard_state__daily_loss_percent"), Value(Decimal("0")), output_field=_PCT),
            # The rule set's own figures (same condition), for the binding permitted loss (guards.headroom).
            rules_today=_rules_value("permitted_loss_today", _MONEY),
            rules_total=_rules_value("permitted_loss_total", _MONEY),
            rules_next_reset=_rules_value("next_reset", DateTimeField()),
            rules_name=_rules_value("rule_set_assignment__rule_set__name", CharField()),
            rules_timezone=_rules_value("rule_set_assignment__rule_set__timezone", CharField()),
            rules_reset_time=_rules_value("rule_set_assignment__rule_set__reset_time", CharField()),
            # Money before the daily-loss limit: equity - anchor * (1 - limit%); before the drawdown limit:
            # equity - peak * (1 - limit%).
            daily_headroom=ExpressionWrapper(
                F("latest_snapshot__equity")
                - F("guard_state__day_anchor")
                * (Value(Decimal("1")) - F("dl_critical") / Value(Decimal("100"))),
                output_field=_MONEY,
            ),
            drawdown_headroom=ExpressionWrapper(
                F("latest_snapshot__equity")
                - F("guard_state__peak_equity")
                * (Value(Decimal("1")) - F("dd_critical") / Value(Decimal("100"))),
                output_field=_MONEY,
            ),
            # "Least headroom first": the binding permitted loss (the smallest of the four money figures the
            # Headroom column shows, guards.headroom) as a percent of equity, the figure the column shows under
            # them. NULL (sorted last) without equity or without any figure.
            headroom_percent=Case(
                When(
                    Q(latest_snapshot__equity__gt=0)
                    & (
                        Q(daily_headroom__isnull=False)
                        | Q(drawdown_headroom__isnull=False)
                        | Q(rules_today__isnull=False)
                        | Q(rules_total__isnull=False)
                    ),
                    then=ExpressionWrapper(
                        Greatest(
                            Least(
                                *(
                                    Coalesce(F(name), Value(_NO_LIMIT), output_field=_MONEY)
                                    for name in _BOUNDS
                                )
                            ),
                            Value(Decimal("0")),
                            output_field=_MONEY,
                        )
                        * Value(Decimal("100"))
                        / F("latest_snapshot__equity"),
                        output_field=_PCT,
                    ),
                ),
                default=Value(None, output_field=_PCT),
                output_field=_PCT,
            ),
            open_divergences=Coalesce(_open_divergences(), Value(0)),
            last_sync_ok=_last_sync("ok"),
            last_sync_at=_last_sync("finished_at"),
            last_sync_error=_last_sync("error_message"),
            is_stale=Case(
                When(
                    Q(latest_snapshot__isnull=True) | Q(latest_snapshot__taken_at__lt=stale_before),
                    then=Value(True),
                ),
                default=Value(False),
                output_field=BooleanField(),
            ),
            worst_level=Case(
                When(
                    Q(guard_state__status__in=[GuardStatus.TRIPPED, GuardStatus.HALTED])
                    | Q(guard_state__drawdown_level=Level.CRITICAL)
                    | Q(guard_state__daily_loss_level=Level.CRITICAL),
                    then=Value(Level.CRITICAL),
                ),
                When(
                    Q(guard_state__drawdown_level=Level.WARNING)
                    | Q(guard_state__daily_loss_level=Level.WARNING),
                    then=Value(Level.WARNING),
                ),
                default=Value(Level.NORMAL),
            ),
        )
    )


def overview_filter(
    *, accounts: QuerySet[TradingAccount], filters: OverviewFilters
) -> QuerySet[TradingAccount]:
    if filters.level:
        accounts = accounts.filter(worst_level=filters.level)
    if filters.stale:
        accounts = accounts.filter(is_stale=True)
    if filters.halted:
        accounts = accounts.filter(guard_state__status__in=[GuardStatus.TRIPPED, GuardStatus.HALTED])
    if filters.divergences:
        accounts = accounts.filter(open_divergences__gt=0)
    return accounts.order_by(*SORTS[filters.sort])


def overview_row_get(*, user: User, account_id: int) -> TradingAccount | None:
    """One row (for a live push); None when the user may not see the account."""
    return overview_accounts(user=user).filter(pk=account_id).first()


@dataclass(frozen=True)
class FleetSummary:
    accounts: int
    by_level: dict[str, int]
    halted: int
    stale: int
    disconnected: int
    open_divergences: int
    equity_by_currency: list[tuple[str, Decimal]]


def fleet_summary(*, user: User) -> FleetSummary:
    """Two aggregate queries, whatever the fleet's size."""
    accounts = overview_accounts(user=user)
    totals = accounts.aggregate(
        n=Count("pk"),
        normal=Count("pk", filter=Q(worst_level=Level.NORMAL)),
        warning=Count("pk", filter=Q(worst_level=Level.WARNING)),
        critical=Count("pk", filter=Q(worst_level=Level.CRITICAL)),
        halted=Count("pk", filter=Q(guard_state__status__in=[GuardStatus.TRIPPED, GuardStatus.HALTED])),
        stale=Count("pk", filter=Q(is_stale=True)),
        disconnected=Count("pk", filter=Q(health__connected=False)),
        divergences=Coalesce(Sum("open_divergences"), Value(0)),
    )
    equity = (
        trading_account_list_for_user(user=user)
        .filter(latest_snapshot__isnull=False)
        .order_by()
        .values_list("latest_snapshot__currency")
        .annotate(total=Sum("latest_snapshot__equity"))
        .order_by("latest_snapshot__currency")
    )
    return FleetSummary(
        accounts=totals["n"],
        by_level={level: totals[level] for level in LEVEL_FILTERS},
        halted=totals["halted"],
        stale=totals["stale"],
        disconnected=totals["disconnected"],
        open_divergences=totals["divergences"],
        equity_by_currency=[(currency, total) for currency, total in equity],
    )


def broker_day_resets_at(*, account: TradingAccount, now: datetime | None = None) -> datetime | None:
    """The next midnight of the broker's wall clock after now (the daily-loss anchor's reset), as aware UTC; None
    without a snapshot or while the broker's clock offset is unknown (guards.selectors.guard_day_resets_at)."""
    return guard_day_resets_at(snapshot=account.latest_snapshot, now=now or timezone.now())
