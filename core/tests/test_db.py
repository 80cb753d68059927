"""core.db.WriteBatch: the writes nobody reads back, sent as one statement that also sets the commit mode."""

import pytest
from django.db import DataError, connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.test.utils import CaptureQueriesContext

from accounts.models import TradingAccount
from accounts.tests.factories import TradingAccountFactory
from core.db import PreparedQuery, WriteBatch, lazy_savepoint, sql_statements

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


def test_a_lazy_savepoint_rides_with_the_first_statement_of_its_block_and_is_never_released():
    account = TradingAccountFactory()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        with lazy_savepoint():
            pass  # no statement: nothing sent
        with lazy_savepoint():
            TradingAccount.objects.filter(pk=account.pk).update(label="inside")
            assert TradingAccount.objects.get(pk=account.pk).label == "inside"
    sent = [q["sql"] for q in queries]
    assert len(sent) == 2, sent  # the UPDATE with its SAVEPOINT, the SELECT
    assert sent[0].startswith('SAVEPOINT "lazy')
    assert "; UPDATE " in sent[0]
    assert not any("RELEASE" in sql for sql in sent)
    assert sql_statements(queries) == [sent[0].split("; ", 1)[1], sent[1]]
    assert TradingAccount.objects.get(pk=account.pk).label == "inside"


def test_a_database_error_in_a_lazy_savepoint_undoes_its_block_only(django_capture_on_commit_callbacks):
    account = TradingAccountFactory()
    ran = []
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        TradingAccount.objects.filter(pk=account.pk).update(label="before")
        transaction.on_commit(lambda: ran.append("before"))

        def block():
            with lazy_savepoint():
                TradingAccount.objects.filter(pk=account.pk).update(broker_company="undone")
                transaction.on_commit(lambda: ran.append("undone"))
                with transaction.atomic():  # Django's own savepoints nest inside
                    TradingAccount.objects.filter(pk=account.pk).update(label="undone too")
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 / 0")

        with pytest.raises(DataError):
            block()
        # the transaction goes on
        TradingAccount.objects.filter(pk=account.pk).update(label=Concat(F("label"), Value(" and after")))
    stored = TradingAccount.objects.get(pk=account.pk)
    assert (stored.label, stored.broker_company) == ("before and after", account.broker_company)
    assert ran == ["before"]  # the failed block's callback went with it


def test_a_python_error_before_any_statement_costs_no_round_trip():
    def block():
        with lazy_savepoint():
            raise RuntimeError("before any statement")

    with transaction.atomic(), CaptureQueriesContext(connection) as queries, pytest.raises(RuntimeError):
        block()
    assert [q["sql"] for q in queries] == []


def test_a_prepared_query_gives_what_its_queryset_gives_and_sends_its_text_without_parameters():
    """Rendered once with its constant values (a `%` among them too), only the one value changes per run."""
    accounts = [TradingAccountFactory(label="100% sure"), TradingAccountFactory(label="it's 50%")]
    prepared = PreparedQuery(
        lambda account_id: (
            TradingAccount.objects.select_related("owner")
            .filter(pk=account_id, label__contains="%")
            .exclude(broker_company="50%")
        )
    )
    for account in accounts:
        with CaptureQueriesContext(connection) as queries:
            (got,) = prepared.list(account.pk)
        expected = TradingAccount.objects.select_related("owner").get(pk=account.pk)
        assert (got.pk, got.label, got.owner.username) == (
            expected.pk,
            expected.label,
            expected.owner.username,
        )
        assert [
            f.attname
            for f in got._meta.concrete_fields
            if getattr(got, f.attname) != getattr(expected, f.attname)
        ] == []
        assert f'"id" = {account.pk}' in queries[0]["sql"]
    assert prepared.list(-1) == []


def test_lazy_savepoints_in_a_row_and_nested_undo_exactly_their_own_block():
    account = TradingAccountFactory(label="start")

    def label(value):
        TradingAccount.objects.filter(pk=account.pk).update(label=Concat(F("label"), Value(value)))

    def failing(block):
        with pytest.raises(RuntimeError):
            block()

    def outer_then_failing_inner():
        with lazy_savepoint():
            label(" outer")

            def inner():
                with lazy_savepoint():
                    label(" inner")
                    raise RuntimeError("inner")

            failing(inner)
            label(" outer-again")

    def nested_unsent_outer():
        with lazy_savepoint():
            with CaptureQueriesContext(connection) as queries, lazy_savepoint():
                label(" deep")  # both savepoints ride with it, the outer one first
            assert queries[0]["sql"].startswith('SAVEPOINT "lazy1"; SAVEPOINT "lazy2"; UPDATE')
            raise RuntimeError("outer")

    with transaction.atomic():
        with lazy_savepoint():
            label(" kept")  # a block that completed: its savepoint's name is used again below
        outer_then_failing_inner()
        failing(nested_unsent_outer)

        def same_depth_fails():
            with lazy_savepoint():
                label(" lost")
                raise RuntimeError("same depth")

        failing(same_depth_fails)
    assert TradingAccount.objects.get(pk=account.pk).label == "start kept outer outer-again"


def test_a_compiled_statement_shape_gives_what_the_orm_compiles():
    """insert_sql / update_sql keep a statement per shape and prepare the values themselves: the text and the values
    must be the ORM's, whichever values are None, JSON or decimals, and an expression still goes through the ORM."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from core import db
    from guards.models import GuardState
    from guards.services.evaluate import _STATE_FIELDS
    from reconciliation.models import AccountSync

    def orm(build):
        db._COMPILED.clear()
        return build()

    def same(a, b):
        norm = (
            [(type(v), getattr(v, "obj", v)) for v in a[1]],
            [(type(v), getattr(v, "obj", v)) for v in b[1]],
        )
        return a[0] == b[0] and norm[0] == norm[1]

    account = TradingAccountFactory()
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for peak, market, trip in [
        (None, {}, ""),
        (Decimal("10.50"), {"EURUSD": {"level": "normal"}}, "drawdown"),
    ]:
        state = GuardState(
            account_id=account.pk, peak_equity=peak, peak_at=now, market=market, trip_guard=trip
        )
        expected = orm(lambda state=state: db.update_sql(state, _STATE_FIELDS))
        db.update_sql(state, _STATE_FIELDS)  # compiled now
        assert same(db.update_sql(state, _STATE_FIELDS), expected)
    run = AccountSync(account=account, started_at=now, finished_at=now, ok=True, positions=3)
    expected = orm(lambda: db.insert_sql([run]))
    db.insert_sql([run])
    assert same(db.insert_sql([run]), expected)

    # An expression among the values: the ORM's statement, even with the plain shape cached.
    account.label = "plain"
    db.update_sql(account, ["label"])
    assert db.update_sql(account, ["label"])[1] == ["plain", account.pk]
    account.label = Concat(Value("x"), F("label"))
    sql, _params = db.update_sql(account, ["label"])
    assert "CONCAT" in sql.upper() or "||" in sql


def test_statements_fetched_together_are_one_round_trip_and_counted_one_by_one():
    from core.db import fetch_together

    with CaptureQueriesContext(connection) as ctx:
        first, second = fetch_together(["SELECT 1, 'a; b'", "SELECT x FROM generate_series(1, 3) AS x"])
    assert first == [(1, "a; b")]
    assert second == [(1,), (2,), (3,)]
    assert len(ctx.captured_queries) == 1
    assert len(sql_statements(ctx.captured_queries)) == 2
