"""Fewer database round trips on hot paths: writes compiled by the ORM, sent together as one statement.

`WriteBatch` collects INSERTs and UPDATEs whose results nobody reads (a touch of `last_seen_at`, the run record,
the guard state) and sends them at the end of the transaction as ONE statement: PostgreSQL runs every
data-modifying `WITH` part exactly once and to completion, whether or not the main statement reads it
(https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING). The main statement is
`SELECT set_config('synchronous_commit', ..., true)`, so the same round trip decides how the transaction commits:

* `durable=False` → `synchronous_commit = off` for this transaction only (`SET LOCAL`): the commit returns before its
  WAL is flushed. A database crash can lose the last moments of such transactions (at most 3 x wal_writer_delay,
  0.6 s by default), never corrupt anything or commit half of one.
* `durable=True` → the server's setting (on): the commit waits for the flush, as every other transaction does.

Rules for what may be batched (the parts all see the database as it was when the statement began, and one row must
not be changed by two parts): nothing in the transaction may read what a batched write writes, and two batched
writes never touch the same row. Statements are ORM-compiled, so field preparation (JSON, decimals, times) is the
ORM's. `pre_save` runs as in `save()` (auto_now fields). Validation is the caller's: these are service-written rows
whose columns the database constrains.

`PreparedQuery` is the read side: a hot queryset compiled once per process.

`mark()` / `truncate(mark)` drop the writes added since a point, for the caller's savepoints (`savepoint()` does
both: a failing block loses its batched writes with its savepoint). Its savepoint is a `lazy_savepoint`: the
SAVEPOINT is sent in the same round trip as the block's first statement and never released, so isolating a block
costs no round trip unless it fails.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from django.db import connections, models, transaction
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery, UpdateQuery


def insert_sql(
    objs: Sequence[models.Model], *, using: str = "default", returning: Sequence[str] = ()
) -> tuple[str, list[Any]]:
    """`INSERT` of every concrete, non-primary-key field of `objs` (one model), as `save()` would insert them."""
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    query = InsertQuery(model)
    query.insert_values(fields, objs)
    ((sql, params),) = query.get_compiler(using=using).as_sql()
    if returning:
        columns = ", ".join(model._meta.get_field(name).column for name in returning)
        sql = f"{sql} RETURNING {columns}"
    return sql, list(params)


def update_sql(obj: models.Model, fields: Iterable[str], *, using: str = "default") -> tuple[str, list[Any]]:
    """`UPDATE … WHERE pk = obj.pk` of `fields`, as `obj.save(update_fields=fields)` would write them."""
    model = type(obj)
    query = UpdateQuery(model)
    query.add_q(models.Q(pk=obj.pk))
    values = []
    for name in fields:
        field = model._meta.get_field(name)
        values.append((field, None, field.pre_save(obj, False)))
    query.add_update_fields(values)
    sql, params = query.get_compiler(using=using).as_sql()
    return sql, list(params)


def queryset_update_sql(queryset: models.QuerySet, **values: Any) -> tuple[str, list[Any]]:
    """What `queryset.update(**values)` sends."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    query.annotations = {}
    sql, params = query.get_compiler(queryset.db).as_sql()
    return sql, list(params)


class WriteBatch:
    """Writes sent as one statement at the end of a transaction (see the module's docstring)."""

    def __init__(self, *, using: str = "default") -> None:
        self.using = using
        self._statements: list[tuple[str, list[Any]]] = []
        self.durable = False

    def __len__(self) -> int:
        return len(self._statements)

    def add(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A data-modifying statement (INSERT / UPDATE / DELETE, no RETURNING needed)."""
        self._statements.append((sql, list(params)))

    def insert(self, objs: Sequence[models.Model]) -> None:
        if objs:
            self.add(*insert_sql(objs, using=self.using))

    def update(self, obj: models.Model, fields: Iterable[str]) -> None:
        self.add(*update_sql(obj, fields, using=self.using))

    def update_queryset(self, queryset: models.QuerySet, **values: Any) -> None:
        self.add(*queryset_update_sql(queryset, **values))

    def require_durable(self) -> None:
        """This transaction must commit synchronously (it changed something people or orders act on)."""
        self.durable = True

    def mark(self) -> int:
        return len(self._statements)

    def truncate(self, mark: int) -> None:
        del self._statements[mark:]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A savepoint inside the caller's transaction whose failure also drops the writes batched inside it, at no
        round trip of its own on the usual path (see `lazy_savepoint`)."""
        mark = self.mark()
        try:
            with lazy_savepoint(using=self.using):
                yield
        except BaseException:
            self.truncate(mark)
            raise

    def sql(self) -> tuple[str, list[Any]]:
        """The one statement: every write a `WITH` part, the commit mode the main part."""
        parts = [f"w{index} AS ({sql})" for index, (sql, _params) in enumerate(self._statements)]
        params = [value for _sql, values in self._statements for value in values]
        # durable: the server's own setting, nothing to change
        mode = "SELECT 1" if self.durable else "SELECT set_config('synchronous_commit', 'off', true)"
        return (f"WITH {', '.join(parts)} {mode}" if parts else mode), params

    def flush(self) -> None:
        """Send the batch (inside the caller's transaction, before it commits). Empties it."""
        if not transaction.get_connection(self.using).in_atomic_block:
            raise RuntimeError("WriteBatch.flush() belongs inside the transaction it sets the commit mode of")
        if not self._statements and self.durable:
            return
        sql, params = self.sql()
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
        self._statements.clear()


_savepoint_ids = itertools.count(1)

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
_RIDING_SAVEPOINT = re.compile(r'^SAVEPOINT "[^"]+"; ')


def sql_statements(captured: Iterable[dict[str, Any]]) -> list[str]:
    """The SQL statements among queries captured by `CaptureQueriesContext`: transaction control left out, a
    SAVEPOINT riding in front of a statement (`lazy_savepoint`) taken off it."""
    statements = (_RIDING_SAVEPOINT.sub("", query["sql"]) for query in captured)
    return [sql for sql in statements if not sql.startswith(TRANSACTION_CONTROL)]


class _SavepointPrefix:
    """An execute wrapper that puts `SAVEPOINT name;` in front of the first statement run inside its block (the
    same round trip, psycopg's client-side binding sending both as one simple query)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = False

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if self.sent:
            return execute(sql, params, many, context)
        self.sent = True  # from here on the savepoint may exist: a failure below rolls back to it
        cursor = context["cursor"].cursor
        if many or not isinstance(sql, str) or not isinstance(cursor, psycopg.ClientCursor):
            with context["connection"].connection.cursor() as own:  # executemany, a server-side cursor: apart
                own.execute(f'SAVEPOINT "{self.name}"')
            return execute(sql, params, many, context)
        result = execute(f'SAVEPOINT "{self.name}"; {sql}', params, many, context)
        cursor.nextset()  # the statement's own result, not the SAVEPOINT's
        return result


@contextmanager
def lazy_savepoint(*, using: str = "default") -> Iterator[None]:
    """What `transaction.atomic()` gives inside a transaction (a failing block is undone, the transaction goes on),
    in fewer round trips: the SAVEPOINT rides with the block's first statement, none at all if the block runs no
    statement, and it is never RELEASEd (the commit ends it; a savepoint left open costs nothing until then). Only a
    failure pays a round trip (ROLLBACK TO SAVEPOINT). The on-commit callbacks registered inside a failed block are
    dropped with it, as `atomic()` drops them.

    Inside the block, `transaction.atomic()` works as usual (its savepoint nests in this one)."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise RuntimeError("lazy_savepoint() belongs inside a transaction")
    prefix = _SavepointPrefix(f"lazy{next(_savepoint_ids)}")
    callbacks = len(connection.run_on_commit)
    needed_rollback = connection.needs_rollback
    try:
        with connection.execute_wrapper(prefix):
            yield
    except BaseException:
        if prefix.sent:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f'ROLLBACK TO SAVEPOINT "{prefix.name}"')
            except Exception:
                connection.needs_rollback = True  # the transaction can no longer be trusted
            else:
                del connection.run_on_commit[callbacks:]
                connection.needs_rollback = needed_rollback
        else:
            del connection.run_on_commit[callbacks:]
        raise


class PreparedQuery:
    """A queryset compiled to SQL once per process, run with a new value for one parameter each time, its rows
    turned into model instances exactly as the ORM's own iterator does (converters, select_related, annotations).

    For the account sync's hot reads, whose SQL never changes but whose compilation (joins, sub-selects, 20-60
    columns) cost more CPU than the database spent answering them. `build(value)` returns the queryset for one
    value; it is called once, with a sentinel that must appear among the compiled parameters."""

    _SENTINEL = -7_365_021_984_113

    def __init__(self, build: Callable[[Any], models.QuerySet], *, using: str = "default") -> None:
        self._build = build
        self._using = using
        self._prepared: tuple[Any, ...] | None = None

    def _prepare(self) -> tuple[Any, ...]:
        queryset = self._build(self._SENTINEL)
        compiler = queryset.query.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        slots = [index for index, value in enumerate(params) if value == self._SENTINEL]
        if not slots:
            raise ValueError("the sentinel is not among the compiled parameters")
        klass_info, select = compiler.klass_info, compiler.select
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, self._using)
        return (compiler, sql, list(params), slots, klass_info["model"], start, end, init_list, populators)

    def list(self, value: Any) -> list[models.Model]:
        if self._prepared is None:
            self._prepared = self._prepare()
        compiler, sql, params, slots, model, start, end, init_list, populators = self._prepared
        params = list(params)
        for index in slots:
            params[index] = value
        with connections[self._using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        objects = []
        annotations = compiler.annotation_col_map
        for row in compiler.results_iter([rows]):
            obj = model.from_db(self._using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in (annotations or {}).items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects
