"""The guards API: guard status, close intents, manual closes with Idempotency-Key, the alert ledger."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import AccountSnapshotFactory, TradingAccountFactory
from guards.models import (
    AlertKind,
    CloseIntent,
    Guard,
    GuardAlert,
    GuardState,
    GuardStatus,
    ManualCloseRequest,
)
from guards.services import guard_settings_update
from guards.services.alerts import alert_build, alerts_record
from guards.services.ledger import alerts_sequence
from reconciliation.tests.factories import LivePositionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def trader_account(trader):
    account = TradingAccountFactory(owner=trader)
    snapshot = AccountSnapshotFactory(account=account, balance=Decimal("10000"), equity=Decimal("9000"))
    account.latest_snapshot = snapshot
    account.save(update_fields=["latest_snapshot"])
    return account


@pytest.fixture
def other_account(other_trader):
    return TradingAccountFactory(owner=other_trader)


@pytest.fixture
def no_tasks(monkeypatch):
    queued = []
    monkeypatch.setattr("guards.services.manual_close._queue", queued.append)
    return queued


def _alert(account, kind=AlertKind.GUARD_LEVEL, message="drawdown warning"):
    return alert_build(
        account_id=account.pk, kind=kind, guard=Guard.DRAWDOWN, message=message, now=timezone.now()
    )


def test_guard_status_shows_levels_headroom_and_state(api_client, trader, trader_account):
    GuardState.objects.create(
        account=trader_account,
        peak_equity=Decimal("10000"),
        day_anchor=Decimal("10000"),
        drawdown_percent=Decimal("10"),
        drawdown_level="warning",
        daily_loss_percent=Decimal("10"),
        daily_loss_level="critical",
        status=GuardStatus.WARNING,
    )
    api_client.force_authenticate(trader)
    body = api_client.get(
        reverse("guards-api:account-guards", kwargs={"account_id": trader_account.pk})
    ).json()
    assert body["state"] == "warning"
    assert body["drawdown"]["level"] == "warning"
    assert body["drawdown"]["critical_percent"] == "20.0000"
    # 20 % below the 10 000 peak is 8 000: 1 000 of equity left; daily 5 % of 10 000 → floor 9 500, already below.
    assert body["headroom"]["to_drawdown_limit"] == "1000.00"
    assert body["headroom"]["daily_loss_permitted"] == "0.00"
    assert 0 <= body["headroom"]["seconds_to_daily_reset"] <= 86_400
    assert body["trip"]["seconds_to_liquidation"] is None


def test_guard_status_is_cached_until_the_account_changes(api_client, trader, trader_account):
    from core.readcache import _bump

    url = reverse("guards-api:account-guards", kwargs={"account_id": trader_account.pk})
    api_client.force_authenticate(trader)
    assert api_client.get(url).json()["state"] == "normal"
    GuardState.objects.create(account=trader_account, status=GuardStatus.WARNING)  # behind the cache's back
    assert api_client.get(url).json()["state"] == "normal"
    _bump(trader_account.pk)  # what a sync commit does
    assert api_client.get(url).json()["state"] == "warning"


def test_guard_reads_work_with_redis_down(api_client, trader, trader_account, settings, caplog):
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "KEY_PREFIX": "dead",
        }
    }
    caches._settings = caches.settings = settings.CACHES  # type: ignore[attr-defined]
    caches._connections = threading.local()  # type: ignore[attr-defined]
    try:
        api_client.force_authenticate(trader)
        for name in (
            "guards-api:account-guards",
            "reconciliation-api:positions",
            "reconciliation-api:reconciliation",
        ):
            response = api_client.get(reverse(name, kwargs={"account_id": trader_account.pk}))
            assert response.status_code == 200, name
        assert sum("read cache unavailable" in r.message for r in caplog.records) == 1
    finally:
        caches._connections = threading.local()  # type: ignore[attr-defined]


def test_another_traders_guards_are_a_404(api_client, trader, other_account):
    api_client.force_authenticate(trader)
    for name in ("account-guards", "close-intents", "positions-close-all"):
        method = api_client.post if name == "positions-close-all" else api_client.get
        assert (
            method(reverse(f"guards-api:{name}", kwargs={"account_id": other_account.pk})).status_code == 404
        )


def _close(client, account, ticket=None, key="k-1", body=None):
    if ticket is None:
        url = reverse("guards-api:positions-close-all", kwargs={"account_id": account.pk})
    else:
        url = reverse("guards-api:position-close", kwargs={"account_id": account.pk, "ticket": ticket})
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(url, body or {}, format="json", headers=headers)


def test_manual_close_answers_202_with_the_pending_intent_and_replays(
    api_client, support, trader_account, no_tasks, django_capture_on_commit_callbacks
):
    position = LivePositionFactory(account=trader_account)
    api_client.force_authenticate(support)
    with django_capture_on_commit_callbacks(execute=True):
        first = _close(api_client, trader_account, position.ticket)
    assert first.status_code == 202
    assert first["Idempotent-Replayed"] == "false"
    (intent,) = first.json()["intents"]
    assert (intent["ticket"], intent["state"], intent["trigger"]) == (position.ticket, "pending", "api")
    with django_capture_on_commit_callbacks(execute=True):
        again = _close(api_client, trader_account, position.ticket)
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert len(no_tasks) == 1
    conflict = _close(api_client, trader_account, None)
    assert conflict.status_code == 409
    assert set(conflict.json()) == {"message", "extra"}


def test_manual_close_requires_the_key(api_client, support, trader_account, no_tasks):
    position = LivePositionFactory(account=trader_account)
    api_client.force_authenticate(support)
    response = _close(api_client, trader_account, position.ticket, key=None)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]
    assert _close(api_client, trader_account, position.ticket, body={"bogus": 1}).status_code == 400
    assert not ManualCloseRequest.objects.exists()


def test_a_trader_closes_only_when_the_owner_allows(api_client, owner, trader, trader_account, no_tasks):
    position = LivePositionFactory(account=trader_account)
    api_client.force_authenticate(trader)
    assert _close(api_client, trader_account, position.ticket).status_code == 403
    guard_settings_update(actor=owner, values={"traders_may_close_positions": True}, reason="allowed")
    assert _close(api_client, trader_account, position.ticket, key="k-2").status_code == 202


def test_close_of_an_unknown_position_is_a_404(api_client, owner, trader_account, no_tasks):
    api_client.force_authenticate(owner)
    assert _close(api_client, trader_account, 424242).status_code == 404


def test_close_intents_list(api_client, support, trader, trader_account, no_tasks):
    position = LivePositionFactory(account=trader_account)
    api_client.force_authenticate(support)
    _close(api_client, trader_account, None)
    api_client.force_authenticate(trader)
    body = api_client.get(
        reverse("guards-api:close-intents", kwargs={"account_id": trader_account.pk})
    ).json()
    assert [i["ticket"] for i in body["results"]] == [position.ticket]
    assert body["results"][0]["actor"] == "support"
    assert CloseIntent.objects.count() == 1


# ---------------------------------------------------------------- the alert ledger


def _ledger(client, **params):
    return client.get(reverse("guards-api:alerts"), {"wait": 0, **params})


def test_ledger_numbers_alerts_and_resumes_after_a_seq(api_client, trader, trader_account, other_account):
    alerts_record(alerts=[_alert(trader_account, message="one"), _alert(other_account, message="theirs")])
    alerts_record(alerts=[_alert(trader_account, kind=AlertKind.RESET, message="two")])
    api_client.force_authenticate(trader)
    body = _ledger(api_client).json()  # the reader numbers committed alerts the writer did not number yet
    assert [a["message"] for a in body["results"]] == ["one", "two"]
    seqs = [a["seq"] for a in body["results"]]
    assert seqs == sorted(seqs)
    assert body["last_seq"] == seqs[-1]
    assert _ledger(api_client, after=seqs[0]).json()["results"][0]["message"] == "two"
    empty = _ledger(api_client, after=body["last_seq"]).json()
    assert empty == {"results": [], "last_seq": body["last_seq"], "has_more": False}


def test_ledger_pages_with_has_more(api_client, support, trader_account):
    alerts_record(alerts=[_alert(trader_account, message=str(i)) for i in range(3)])
    api_client.force_authenticate(support)
    body = _ledger(api_client, limit=2).json()
    assert [a["message"] for a in body["results"]] == ["0", "1"]
    assert body["has_more"] is True
    assert [a["message"] for a in _ledger(api_client, after=body["last_seq"]).json()["results"]] == ["2"]


def test_ledger_account_filter_is_scoped(api_client, trader, trader_account, other_account):
    api_client.force_authenticate(trader)
    assert _ledger(api_client, account=other_account.pk).status_code == 404
    assert _ledger(api_client, account=trader_account.pk).status_code == 200
    assert _ledger(api_client, after=-1).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_a_late_commit_is_not_missed(api_client, support, trader_account):
    """Alert A is inserted first (lower id) but commits after alert B: a client that read B resumes and gets A."""
    inserted, release = threading.Event(), threading.Event()

    def slow_writer():
        try:
            with transaction.atomic():
                alerts_record(alerts=[_alert(trader_account, message="A (slow)")])
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert inserted.wait(10)
    with transaction.atomic():
        alerts_record(alerts=[_alert(trader_account, message="B")])
    api_client.force_authenticate(support)
    first = _ledger(api_client).json()
    assert [a["message"] for a in first["results"]] == ["B"]
    release.set()
    writer.join(10)
    second = _ledger(api_client, after=first["last_seq"]).json()
    assert [a["message"] for a in second["results"]] == ["A (slow)"]
    a, b = GuardAlert.objects.get(message="A (slow)"), GuardAlert.objects.get(message="B")
    assert a.pk < b.pk
    assert a.seq > b.seq


@pytest.mark.django_db(transaction=True)
def test_long_poll_answers_when_an_alert_arrives(api_client, support, trader_account):
    api_client.force_authenticate(support)
    alerts_sequence()
    start = _ledger(api_client).json()["last_seq"]

    def later():
        try:
            time.sleep(0.3)
            alerts_record(alerts=[_alert(trader_account, message="while waiting")])
        finally:
            connection.close()

    thread = threading.Thread(target=later)
    thread.start()
    body = api_client.get(reverse("guards-api:alerts"), {"after": start, "wait": 20}).json()
    thread.join(10)
    assert [a["message"] for a in body["results"]] == ["while waiting"]


def test_support_resets_a_guard_with_a_reason(api_client, support, trader, trader_account):
    GuardState.objects.create(account=trader_account, status=GuardStatus.WARNING)
    url = reverse("guards-api:account-guards-reset", kwargs={"account_id": trader_account.pk})
    api_client.force_authenticate(trader)
    assert api_client.post(url, {"reason": "mine"}, format="json").status_code == 403
    api_client.force_authenticate(support)
    assert api_client.post(url, {}, format="json").status_code == 400
    response = api_client.post(url, {"reason": "false alarm"}, format="json")
    assert response.status_code == 200
    assert response.json()["state"] == "normal"
    assert response.json()["reset_by"] == "support"
    assert GuardAlert.objects.filter(account=trader_account, kind=AlertKind.RESET).count() == 1
