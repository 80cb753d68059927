"""core.db.WriteBatch: the writes nobody reads back, sent as one statement that also sets the commit mode."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import TradingAccount
from accounts.tests.factories import TradingAccountFactory
from core.db import WriteBatch

pytestmark = pytest.mark.django_db(transaction=True)


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_every_batched_write_runs_in_one_statement_and_the_commit_is_asynchronous():
    first, second, third = TradingAccountFactory(), TradingAccountFactory(), TradingAccountFactory()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        writes = WriteBatch()
        first.label, second.label = "one", "two"
        writes.update(first, ["label"])
        writes.update(
            second, ["label"]
        )  # (never two writes of one row in a batch: one of them would be lost)
        writes.update_queryset(TradingAccount.objects.filter(pk=third.pk), broker_company="Broker Three")
        writes.flush()
        assert _synchronous_commit() == "off"  # this transaction only
    assert len(queries) == 2  # the batch, and SHOW
    assert _synchronous_commit() == "on"
    assert {a.pk: (a.label, a.broker_company) for a in TradingAccount.objects.all()} == {
        first.pk: ("one", first.broker_company),
        second.pk: ("two", second.broker_company),
        third.pk: (third.label, "Broker Three"),
    }


def test_a_durable_batch_keeps_the_synchronous_commit():
    account = TradingAccountFactory()
    with transaction.atomic():
        writes = WriteBatch()
        account.label = "durable"
        writes.update(account, ["label"])
        writes.require_durable()
        writes.flush()
        assert _synchronous_commit() == "on"
    assert TradingAccount.objects.get(pk=account.pk).label == "durable"


def test_a_failing_savepoint_drops_the_writes_batched_inside_it():
    account = TradingAccountFactory()
    with transaction.atomic():
        writes = WriteBatch()
        account.label = "kept"
        writes.update(account, ["label"])
        account.broker_company = "lost"

        def failing_block():
            with writes.savepoint():
                writes.update(account, ["broker_company"])
                raise RuntimeError("the block failed")

        with pytest.raises(RuntimeError):
            failing_block()
        assert len(writes) == 1
        writes.flush()
    stored = TradingAccount.objects.get(pk=account.pk)
    assert (stored.label, stored.broker_company) == (
        "kept",
        TradingAccountFactory._meta.model().broker_company,
    )


def test_a_batch_is_flushed_inside_a_transaction_only():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        WriteBatch().flush()
