"""Reconciliation settings with their defaults. Each can be set in Django settings under the same name
(config/settings/base.py reads them from the environment where an operator should be able to change them)."""

from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # The beat interval declared by setup_periodic_tasks (editable afterwards in the admin).
    "RECONCILIATION_SYNC_INTERVAL_SECONDS": 10,
    # A bot trade no sync has matched yet is reported missing only after being unmatched this long (the bot may
    # register before the order fills).
    "RECONCILIATION_MISSING_GRACE_SECONDS": 15,
    # Close reasons: a missing position whose deals are not there yet stays `pending`; the look-up is repeated on
    # later syncs (one deals_for_position call each, no sleeping) and settles on `unknown` only after both this
    # long and this many look-ups.
    "RECONCILIATION_CLOSE_REASON_WAIT_SECONDS": 30,
    "RECONCILIATION_CLOSE_REASON_MIN_LOOKUPS": 3,
    "RECONCILIATION_CLOSE_REASON_LOOKUPS_PER_SYNC": 10,
    # Deals are read from the previous sync minus this overlap (history can lag), or this far back on a first sync.
    "RECONCILIATION_DEALS_OVERLAP_SECONDS": 60,
    "RECONCILIATION_DEALS_FIRST_LOOKBACK_SECONDS": 24 * 3600,
    # Terminal symbol specs (digits, point) are cached this long.
    "RECONCILIATION_SYMBOL_CACHE_SECONDS": 3600,
    # Per-account sync task: soft/hard time limits; the account lock outlives the hard limit so two syncs of one
    # account never overlap, and a killed worker's lock expires by itself.
    "RECONCILIATION_SYNC_SOFT_TIME_LIMIT": 35,
    "RECONCILIATION_SYNC_TIME_LIMIT": 40,
    # A cycle's statistics are final once it is older than this (longer than any sync can run).
    "RECONCILIATION_LOCK_SECONDS": 45,
    # The per-account sync lock's lifetime, renewed while the sync runs: a killed worker holds it at most this long.
    "RECONCILIATION_LOCK_TTL_SECONDS": 10,
    # Celery queue of the per-account tasks (run a dedicated worker with its own --concurrency on it if wanted).
    "RECONCILIATION_SYNC_QUEUE": "celery",
    # Retention of the run log (AccountSync) and the cycle log (SyncCycle).
    "RECONCILIATION_RUN_RETENTION_HOURS": 24,
    # Matcher tolerances (shared/spec/reconciliation.md defaults).
    "RECONCILIATION_TOLERANCES": {
        "match_volume_percent": Decimal(5),
        "match_entry_pips": Decimal(2),
        "slippage_pips": Decimal(5),
        "volume_mismatch_percent": Decimal(10),
        "sltp_pips": Decimal(10),
    },
}


def setting(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
