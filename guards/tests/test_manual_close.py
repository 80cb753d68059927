"""Manual close requests: who may, Idempotency-Key replay / conflict / expiry, the order sent once by the task."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from core.exceptions import ConflictError, NotFoundError, PermissionDeniedError
from guards.models import CloseIntent, GuardSettings, IntentState, ManualCloseRequest
from guards.selectors import account_close_allowed
from guards.services import guard_settings_update
from guards.services.manual_close import (
    manual_close_execute,
    manual_close_request,
    manual_close_requests_purge,
    request_fingerprint_for,
)
from reconciliation.tests.factories import LivePositionFactory

pytestmark = pytest.mark.django_db


def _ask(account, user, key="key-1", ticket=None, body=None):
    return manual_close_request(
        account=account,
        user=user,
        idempotency_key=key,
        ticket=ticket,
        request_fingerprint=request_fingerprint_for(account_id=account.pk, ticket=ticket, body=body or {}),
    )


@pytest.fixture
def open_position(account, sim):
    ticket = sim.sim_open_manual("EURUSD", "buy", "1.0")
    LivePositionFactory(account=account, ticket=ticket)
    return ticket


def test_owner_and_support_may_close_traders_only_when_the_setting_allows(
    account, owner, support, trader, other_trader
):
    assert account_close_allowed(owner, account)
    assert account_close_allowed(support, account)
    assert not account_close_allowed(trader, account)
    assert not account_close_allowed(other_trader, account)
    guard_settings_update(actor=owner, values={"traders_may_close_positions": True}, reason="desk policy")
    assert account_close_allowed(trader, account)
    assert not account_close_allowed(other_trader, account)  # never someone else's account


def test_the_setting_change_is_kept_in_the_history(owner):
    from guards.models import GuardSettingsChange

    guard_settings_update(actor=owner, values={"traders_may_close_positions": True}, reason="desk policy")
    change = GuardSettingsChange.objects.get(field="traders_may_close_positions")
    assert (change.old_value, change.new_value, change.changed_by) == (False, True, owner)


def test_a_trader_without_the_setting_is_refused(account, trader, open_position):
    with pytest.raises(PermissionDeniedError):
        _ask(account, trader, ticket=open_position)
    assert not ManualCloseRequest.objects.exists()
    assert not CloseIntent.objects.exists()


def test_a_request_stores_pending_intents_and_queues_one_task(
    account, support, open_position, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("guards.services.manual_close._queue", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        request = _ask(account, support, ticket=open_position)
    assert request.replayed is False
    (intent,) = CloseIntent.objects.all()
    assert (intent.ticket, intent.state, intent.actor) == (open_position, IntentState.PENDING, support)
    assert request.response["intents"][0]["id"] == intent.pk
    assert request.response["intents"][0]["state"] == "pending"
    assert queued == [request.pk]


def test_same_key_same_request_replays_the_first_answer(
    account, support, open_position, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr("guards.services.manual_close._queue", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        first = _ask(account, support, ticket=open_position)
    with django_capture_on_commit_callbacks(execute=True):
        again = _ask(account, support, ticket=open_position)
    assert again.replayed is True
    assert again.pk == first.pk
    assert again.response == first.response
    assert CloseIntent.objects.count() == 1
    assert queued == [first.pk]  # one task, so one order


def test_same_key_different_request_is_a_conflict(account, support, open_position):
    _ask(account, support, ticket=open_position)
    with pytest.raises(ConflictError):
        _ask(account, support, ticket=None)
    with pytest.raises(ConflictError):
        _ask(account, support, ticket=open_position, body={"reason": "other"})


def test_keys_are_per_user(account, owner, support, open_position):
    a = _ask(account, support, ticket=open_position)
    b = _ask(account, owner, ticket=open_position)
    assert a.pk != b.pk


def test_an_expired_key_can_be_used_again(account, support, open_position):
    first = _ask(account, support, ticket=open_position)
    ManualCloseRequest.objects.filter(pk=first.pk).update(expires_at=first.expires_at - timedelta(hours=25))
    second = _ask(account, support, ticket=None)
    assert second.pk != first.pk
    assert second.replayed is False
    assert manual_close_requests_purge() == 0  # the expired one was replaced already


def test_purge_forgets_expired_keys_but_keeps_intents(account, support, open_position):
    first = _ask(account, support, ticket=open_position)
    ManualCloseRequest.objects.filter(pk=first.pk).update(expires_at=first.expires_at - timedelta(hours=25))
    assert manual_close_requests_purge() == 1
    assert CloseIntent.objects.count() == 1


def test_an_unknown_ticket_is_not_found(account, support):
    with pytest.raises(NotFoundError):
        _ask(account, support, ticket=999_999)
    assert not ManualCloseRequest.objects.exists()


def test_a_missing_key_is_refused(account, support, open_position):
    from core.exceptions import ApplicationError

    with pytest.raises(ApplicationError):
        _ask(account, support, key="  ", ticket=open_position)


def test_executing_sends_exactly_one_order_even_twice(
    account, support, open_position, sim, terminal, gateway, clock
):
    request = _ask(account, support, ticket=open_position)
    manual_close_execute(request=request, gateway=gateway)
    manual_close_execute(request=request, gateway=gateway)
    assert terminal.order_sends[open_position] == 1
    assert CloseIntent.objects.get().state == IntentState.CONFIRMED
    assert sim.sim_find_positions() == []


def test_close_all_closes_every_position_including_ones_not_synced_yet(
    account, support, open_position, sim, terminal, gateway, clock
):
    unsynced = sim.sim_open_manual("EURUSD", "sell", "0.5")
    request = _ask(account, support, ticket=None)
    assert [i["ticket"] for i in request.response["intents"]] == [open_position]
    manual_close_execute(request=request, gateway=gateway)
    assert sim.sim_find_positions() == []
    assert set(CloseIntent.objects.values_list("ticket", flat=True)) == {open_position, unsynced}
    assert set(CloseIntent.objects.values_list("state", flat=True)) == {IntentState.CONFIRMED}


@pytest.mark.django_db(transaction=True)
def test_a_double_submission_makes_one_request(account, support, open_position, monkeypatch):
    monkeypatch.setattr("guards.services.manual_close._queue", lambda request_id: None)
    results, errors = [], []
    barrier = threading.Barrier(2)

    def submit():
        try:
            barrier.wait()
            results.append(_ask(account, support, ticket=open_position))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.pk for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False, True]
    assert ManualCloseRequest.objects.count() == 1
    assert CloseIntent.objects.count() == 1
    assert GuardSettings.objects.exists()
