"""The live evaluation of an account's rule set on every fresh snapshot (issue #16 step 3), called by the guards
inside their transaction, with the rows the guards' one locking query already brought (the assignment, its rule set
and this state, joined): one INSERT of `AccountRulesState` on its first snapshot, then one UPDATE per snapshot, sent
with the account sync's last statement (`core.db.WriteBatch`) when the sync passes its batch; nothing else.

The evaluation is `rules.evaluation.RulesState` (the one `rules_case` runs), kept as JSON between snapshots, so a
snapshot costs O(1) plus its own deals, never a replay of history. A changed assignment (another rule set, initial
balance or start: its `revision`) starts the evaluation afresh from the next snapshot; an edit of the rule set's
terms applies to the kept state from the next snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from core.db import WriteBatch
from core.exceptions import ApplicationError, PermissionDeniedError
from core.readcache import account_reads_invalidate
from rules import evaluation
from rules.models import AccountRuleSet, AccountRulesState, RulesLevel, RulesStatus
from rules.tracking import DealLike, TradeBook, observe, state_from_json, state_to_json

if TYPE_CHECKING:
    from accounts.models import TradingAccount, User

logger = logging.getLogger(__name__)

LIFT_PERMISSION = "rules.lift_close_only"
# The close-only fields are the operator's too (a lift): a sync writes them only when it sets close-only itself,
# so a lift that commits while a sync is under way is never overwritten with the sync's older copy.
_CLOSE_ONLY_FIELDS = ("close_only", "close_only_since")
_OPERATOR_FIELDS = ("close_only_lifted_at", "close_only_lifted_by", "close_only_lift_reason")
_SAVED_FIELDS = [
    f.name
    for f in AccountRulesState._meta.local_fields
    if not f.primary_key and f.name not in _CLOSE_ONLY_FIELDS + _OPERATOR_FIELDS
]


@dataclass(frozen=True)
class RulesOutcome:
    """What one snapshot changed, for the guards to act on (alerts, liquidation)."""

    row: AccountRulesState
    rule_set_name: str
    level_from: str
    level_to: str
    breach: evaluation.Breach | None  # breached by this snapshot
    passed_now: bool
    close_only_set: bool
    restarted: bool
    summary: evaluation.Summary


def _fresh_row(
    *, account_id: int, assignment: AccountRuleSet, row: AccountRulesState | None
) -> AccountRulesState:
    fresh = AccountRulesState(
        account_id=account_id,
        assignment_revision=assignment.revision,
        rule_set_revision=assignment.rule_set.revision,
        state={},
        book={},
    )
    if row is not None:
        fresh._state.adding = False  # the same primary key: an UPDATE of the old row
    return fresh


def account_rules_observe(
    *,
    account_id: int,
    assignment: AccountRuleSet | None,
    row: AccountRulesState | None,
    snapshot_id: int,
    time: datetime,
    balance: Decimal,
    equity: Decimal,
    deals: Iterable[DealLike],
    now: datetime,
    writes: WriteBatch | None = None,
) -> RulesOutcome | None:
    """Evaluate one fresh snapshot under the account's rule set; None when it has none (or `classic`), or when the
    snapshot is before the assignment's start. Saves the state row: one INSERT on its first snapshot, else one
    UPDATE, which goes with the account sync's last statement when the sync passes its batch (`writes`)."""
    if assignment is None or assignment.rule_set.is_classic:
        return None
    rule_set = assignment.rule_set
    rules = rule_set.as_rules(initial_balance=assignment.initial_balance, start=assignment.start)
    if rules is None or time < rules.start:
        return None
    if row is None or row.assignment_revision != assignment.revision or not row.state:
        restarted = True
        row = _fresh_row(account_id=account_id, assignment=assignment, row=row)
        state, book = evaluation.RulesState.begin(rules), TradeBook()
    else:
        restarted = False
        state, book = state_from_json(rules, row.state), TradeBook.from_json(row.book)
    level_from, status_from = row.level, row.status
    breach, _moved = observe(state, book, reading=evaluation.Reading(time, balance, equity), deals=deals)
    summary = state.summary()
    headroom = summary.headroom
    row.rule_set_revision = rule_set.revision
    row.state = state_to_json(state)
    row.book = book.to_json()
    row.status = summary.status
    row.level = summary.level
    row.breach = None if summary.breach is None else evaluation.breach_dict(summary.breach)
    row.trading_days = summary.trading_days
    row.best_day_share = summary.best_day_share
    row.profit_target_met = summary.profit_target_met
    if headroom is not None:
        row.daily_limit = headroom.daily_limit
        row.permitted_loss_today = headroom.permitted_loss_today
        row.max_loss_limit = headroom.max_loss_limit
        row.permitted_loss_total = headroom.permitted_loss_total
        row.headroom = headroom.amount
        row.daily_used_percent = headroom.daily_used_percent
        row.total_used_percent = headroom.total_used_percent
        row.next_reset = headroom.next_reset
    passed_now = summary.status == RulesStatus.PASSED and row.objectives_met_at is None
    if passed_now:
        row.objectives_met_at = now
    close_only_set = (
        rule_set.close_only_on_warning
        and summary.level == RulesLevel.WARNING
        and level_from != RulesLevel.WARNING
        and not row.close_only
    )
    if close_only_set:
        row.close_only = True
        row.close_only_since = now
    row.last_snapshot_id = snapshot_id
    row.evaluated_at = now
    fields = [*_SAVED_FIELDS, *(_CLOSE_ONLY_FIELDS if close_only_set else ())]
    if row._state.adding:
        row.save(force_insert=True)
    elif writes is not None:
        writes.update(row, fields)
    else:
        row.save(update_fields=fields)
    if status_from != row.status or level_from != row.level:
        logger.info(
            "account %s rules: %s/%s → %s/%s", account_id, status_from, level_from, row.status, row.level
        )
    return RulesOutcome(
        row=row,
        rule_set_name=rule_set.name,
        level_from=level_from,
        level_to=row.level,
        breach=breach,
        passed_now=passed_now,
        close_only_set=close_only_set,
        restarted=restarted,
        summary=summary,
    )


@transaction.atomic
def account_rules_close_only_lift(*, actor: User, account: TradingAccount, reason: str) -> AccountRulesState:
    """An operator lifts close-only (a reason required; audited on the row). The account becomes close-only again
    only when its level next enters warning."""
    if not (actor.is_superuser or actor.has_perm(LIFT_PERMISSION)):
        raise PermissionDeniedError("Only owners and support staff may lift close-only.")
    text = (reason or "").strip()
    if not text:
        raise ValidationError({"reason": ["A reason is required: say why close-only is lifted."]})
    row = AccountRulesState.objects.select_for_update().filter(account=account).first()
    if row is None or not row.close_only:
        raise ApplicationError("The account is not close-only.")
    from django.utils import timezone

    row.close_only = False
    row.close_only_lifted_at = timezone.now()
    row.close_only_lifted_by = actor
    row.close_only_lift_reason = text
    row.save(
        update_fields=["close_only", "close_only_lifted_at", "close_only_lifted_by", "close_only_lift_reason"]
    )
    account_reads_invalidate(account_id=account.pk)
    logger.info("account %s: close-only lifted by %s: %s", account.pk, actor.pk, text)
    return row
