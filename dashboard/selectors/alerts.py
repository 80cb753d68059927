"""The guard banner on every page: accounts the user may see whose guard is at warning or beyond."""

from django.db.models import Q, QuerySet

from accounts.models import TradingAccount, User
from accounts.selectors import trading_account_list_for_user
from guards.models import GuardStatus, Level

BANNER_LIMIT = 5


def guard_banner_accounts(*, user: User) -> QuerySet[TradingAccount]:
    """Tripped first (a liquidation is counting down), then halted, then warnings; one query."""
    from django.db.models import Case, IntegerField, Value, When

    return (
        trading_account_list_for_user(user=user)
        .select_related("guard_state")
        .filter(
            Q(guard_state__status__in=[GuardStatus.WARNING, GuardStatus.TRIPPED, GuardStatus.HALTED])
            | Q(guard_state__drawdown_level__in=[Level.WARNING, Level.CRITICAL])
            | Q(guard_state__daily_loss_level__in=[Level.WARNING, Level.CRITICAL])
        )
        .annotate(
            banner_rank=Case(
                When(guard_state__status=GuardStatus.TRIPPED, then=Value(0)),
                When(guard_state__status=GuardStatus.HALTED, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("banner_rank", "guard_state__liquidate_at", "server", "login")
    )
