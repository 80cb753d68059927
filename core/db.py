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

import builtins
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import psycopg
from django.db import connections, models, transaction
from django.db.models.query import get_related_populators
from django.db.models.sql import InsertQuery, UpdateQuery

# Compiled statements of insert_sql / update_sql by shape (model, fields, rows): the ORM compiles the same text on
# every sync (cProfile: ~10 % of a steady sync's CPU); only the values change, and those are prepared here exactly as
# the compiler prepares them (`pre_save`, then `get_db_prep_save`). A shape is cached only when nothing in it needs
# the compiler: no field with its own placeholder, no expression among the values (those go through the ORM).
_COMPILED: dict[tuple[Any, ...], tuple[str, list[models.Field]] | None] = {}
_COMPILED_MAX = 512  # shapes per process; past it, the ORM compiles as before


def _prepared(field: models.Field, value: Any, connection: Any) -> Any:
    """The value as the insert and update compilers pass it to the driver; `_NOT_PLAIN` where they would compile
    it (an expression, a model instance)."""
    if hasattr(value, "resolve_expression") or hasattr(value, "prepare_database_save"):
        return _NOT_PLAIN
    value = field.get_db_prep_save(value, connection=connection)
    return _NOT_PLAIN if hasattr(value, "as_sql") else value


_NOT_PLAIN = object()


def _plain_fields(model: type[models.Model], fields: Sequence[models.Field]) -> bool:
    concrete = model._meta.concrete_model
    return all(
        not hasattr(field, "get_placeholder") and field.model._meta.concrete_model is concrete
        for field in fields
    )


def insert_sql(
    objs: Sequence[models.Model], *, using: str = "default", returning: Sequence[str] = ()
) -> tuple[str, list[Any]]:
    """`INSERT` of every concrete, non-primary-key field of `objs` (one model), as `save()` would insert them."""
    model = type(objs[0])
    key = ("insert", model, len(objs), tuple(returning), using)
    compiled = _COMPILED.get(key)
    if compiled is not None:
        sql, fields = compiled
        connection = connections[using]
        params = [_prepared(f, f.pre_save(obj, True), connection) for obj in objs for f in fields]
        if _NOT_PLAIN not in params:
            return sql, params
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    query = InsertQuery(model)
    query.insert_values(fields, objs)
    ((sql, params),) = query.get_compiler(using=using).as_sql()
    if returning:
        columns = ", ".join(model._meta.get_field(name).column for name in returning)
        sql = f"{sql} RETURNING {columns}"
    if key not in _COMPILED and len(_COMPILED) < _COMPILED_MAX:
        # One row only: several go as one array per column (Django's UNNEST insert on PostgreSQL), not row by row.
        _COMPILED[key] = (sql, fields) if len(objs) == 1 and _plain_fields(model, fields) else None
    return sql, list(params)


def update_sql(obj: models.Model, fields: Iterable[str], *, using: str = "default") -> tuple[str, list[Any]]:
    """`UPDATE … WHERE pk = obj.pk` of `fields`, as `obj.save(update_fields=fields)` would write them."""
    model = type(obj)
    names = tuple(fields)
    targets = [cast(models.Field, model._meta.get_field(name)) for name in names]
    connection = connections[using]
    values = [_prepared(field, field.pre_save(obj, False), connection) for field in targets]
    key = None
    if _NOT_PLAIN not in values:
        # The compiler writes `= NULL` for a None, so which values are None is part of the shape.
        key = ("update", model, names, tuple(value is None for value in values), using)
        compiled = _COMPILED.get(key)
        if compiled is not None:
            return compiled[0], [*(value for value in values if value is not None), obj.pk]
    query = UpdateQuery(model)
    query.add_q(models.Q(pk=obj.pk))
    query.add_update_fields([(field, None, field.pre_save(obj, False)) for field in targets])
    sql, params = query.get_compiler(using=using).as_sql()
    if key is not None and key not in _COMPILED and len(_COMPILED) < _COMPILED_MAX:
        # Cached when the statement is the plain shape: one parameter per value that is not None, then the key.
        plain = (
            _plain_fields(model, targets)
            and len(params) == sum(value is not None for value in values) + 1
            and params[-1] == obj.pk
        )
        _COMPILED[key] = (sql, targets) if plain else None
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


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")
_RIDING_SAVEPOINT = re.compile(r'^(SAVEPOINT "[^"]+"; )+')


def sql_statements(captured: Iterable[dict[str, Any]]) -> list[str]:
    """The SQL statements among queries captured by `CaptureQueriesContext`: transaction control left out, a
    SAVEPOINT riding in front of a statement (`lazy_savepoint`) taken off it, statements sent together
    (`fetch_together`) counted one by one."""
    statements = (
        part for query in captured for part in _RIDING_SAVEPOINT.sub("", query["sql"]).split(_TOGETHER)
    )
    return [sql for sql in statements if not sql.startswith(TRANSACTION_CONTROL)]


class _LazySavepoint:
    """One block's savepoint, waiting for the block's first statement."""

    __slots__ = ("name", "sent")

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = False


def _pending(connection: Any) -> list[_LazySavepoint]:
    pending = getattr(connection, "_lazy_savepoints_pending", None)
    if pending is None:
        pending = connection._lazy_savepoints_pending = []
    return pending


def _send_pending(execute: Callable, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """Execute wrapper: the savepoints still waiting go in front of this statement, outermost first, in the same
    round trip (psycopg's client-side binding sends them as one simple query)."""
    pending = _pending(context["connection"])
    if not pending:
        return execute(sql, params, many, context)
    waiting = list(pending)
    pending.clear()
    for savepoint in waiting:
        savepoint.sent = True  # from here on it may exist: a failure below rolls back to it
    prefix = "".join(f'SAVEPOINT "{savepoint.name}"; ' for savepoint in waiting)
    cursor = context["cursor"].cursor
    if many or not isinstance(sql, str) or not isinstance(cursor, psycopg.ClientCursor):
        with context["connection"].connection.cursor() as own:  # executemany, a server-side cursor: apart
            own.execute(prefix)
        return execute(sql, params, many, context)
    result = execute(prefix + sql, params, many, context)
    for _savepoint in waiting:
        cursor.nextset()  # past the SAVEPOINTs' results to the statement's own
    return result


@contextmanager
def lazy_savepoint(*, using: str = "default") -> Iterator[None]:
    """What `transaction.atomic()` gives inside a transaction (a failing block is undone, the transaction goes on),
    in fewer round trips: the SAVEPOINT rides with the block's first statement, none at all if the block runs no
    statement, and it is never RELEASEd (the commit ends it; a savepoint left open costs nothing until then). Only a
    failure pays a round trip (ROLLBACK TO SAVEPOINT). The on-commit callbacks registered inside a failed block are
    dropped with it, as `atomic()` drops them.

    Inside the block, `transaction.atomic()` and other lazy savepoints work as usual (they nest in this one)."""
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise RuntimeError("lazy_savepoint() belongs inside a transaction")
    # Named by depth, not uniquely: a statement's text stays the same from one sync to the next (the driver caches
    # its parse by text). A name used again shadows the earlier savepoint of that depth, whose block is finished
    # (a completed block's savepoint is never needed again); ROLLBACK TO takes the newest of the name.
    depth = getattr(connection, "_lazy_savepoint_depth", 0) + 1
    savepoint = _LazySavepoint(f"lazy{depth}")
    pending = _pending(connection)
    pending.append(savepoint)
    callbacks = len(connection.run_on_commit)
    needed_rollback = connection.needs_rollback
    connection._lazy_savepoint_depth = depth
    try:
        with connection.execute_wrapper(_send_pending):
            yield
    except BaseException:
        if savepoint.sent:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f'ROLLBACK TO SAVEPOINT "{savepoint.name}"')
            except Exception:
                connection.needs_rollback = True  # the transaction can no longer be trusted
            else:
                del connection.run_on_commit[callbacks:]
                connection.needs_rollback = needed_rollback
        else:
            del connection.run_on_commit[callbacks:]
        raise
    finally:
        connection._lazy_savepoint_depth = depth - 1
        if not savepoint.sent:
            pending.remove(savepoint)


class PreparedQuery:
    """A queryset compiled to SQL once per process, run with a new value for one parameter each time, its rows
    turned into model instances exactly as the ORM's own iterator does (converters, select_related, annotations).

    For the account sync's hot reads, whose SQL never changes but whose compilation (joins, sub-selects, 20-60
    columns) cost more CPU than the database spent answering them. `build(value)` returns the queryset for one
    value; it is called once, with a sentinel that must appear among the compiled parameters.

    With the driver's client-side binding (psycopg's ClientCursor, Django's default) the statement is rendered once
    with its constant values, exactly as the driver would merge them, and each run only puts the one value's literal
    into it and sends the text without parameters: the driver caches its own parse of a statement only up to 4 kB
    and 50 parameters, so a long one (the guard-state lock, ~7 kB) was parsed again on every sync."""

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
        selected = klass_info["select_fields"]
        start, end = selected[0], selected[-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, self._using)
        # What results_iter() works out on every call (each field's from_db_value, the backend's own): once here.
        fields = [column[0] for column in select[0 : compiler.col_count]]
        if compiler.has_composite_fields(fields):
            raise ValueError(
                "composite primary keys are not supported here"
            )  # results_iter() would regroup them
        converters = compiler.get_converters(fields)
        return (
            compiler,
            converters,
            sql,
            list(params),
            slots,
            self._render(sql, params, slots),
            klass_info["model"],
            start,
            end,
            init_list,
            populators,
        )

    def _render(self, sql: str, params: Sequence[Any], slots: list[int]) -> list[str] | None:
        """The statement with its constant values merged as the driver merges them, split where the value goes; None
        where the driver binds on the server (then the values go as parameters on every run)."""
        connection = connections[self._using]
        connection.ensure_connection()
        with connection.connection.cursor() as raw:
            if not isinstance(raw, psycopg.ClientCursor):
                return None
            parts = raw.mogrify(sql, params).split(raw.mogrify("%s", [self._SENTINEL]))
        return parts if len(parts) == len(slots) + 1 else None

    def list(self, value: Any) -> list[models.Model]:
        text = self.text(value)
        if text is not None:
            with connections[self._using].cursor() as cursor:
                cursor.execute(text)
                rows = cursor.fetchall()
            return self.objects(rows)
        _compiler, _converters, sql, params, slots, *_rest = self._get()
        params = list(params)
        for index in slots:
            params[index] = value
        with connections[self._using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return self.objects(rows)

    def _get(self) -> tuple[Any, ...]:
        if self._prepared is None:
            self._prepared = self._prepare()
        return self._prepared

    def text(self, value: Any) -> str | None:
        """The statement for `value` as the text the driver would send (to run it with others in one round trip,
        `fetch_together`), or None where the driver binds on the server."""
        rendered = self._get()[5]
        if rendered is None:
            return None
        with connections[self._using].cursor() as cursor:
            return cursor.cursor.mogrify("%s", [value]).join(rendered)

    def objects(self, rows: Sequence[Sequence[Any]]) -> builtins.list[models.Model]:
        """The statement's rows as model instances, as the ORM's iterator builds them."""
        compiler, converters, _sql, _params, _slots, _rendered, model, start, end, init_list, populators = (
            self._get()
        )
        objects = []
        annotations = compiler.annotation_col_map
        for row in compiler.apply_converters(rows, converters) if converters else rows:
            obj = model.from_db(self._using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in (annotations or {}).items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects


_TOGETHER = "; /* together */ "  # between statements sent as one query; sql_statements() counts each


def fetch_together(statements: Sequence[str], *, using: str = "default") -> list[list[tuple[Any, ...]]]:
    """Several read statements (complete texts, no parameters) in ONE round trip: psycopg's client-side binding
    sends them as one simple query; each one's rows, in order."""
    with connections[using].cursor() as cursor:
        cursor.execute(_TOGETHER.join(statements))
        results = [cursor.fetchall()]
        while cursor.nextset():
            results.append(cursor.fetchall())
    if len(results) != len(statements):
        raise RuntimeError(f"{len(statements)} statements gave {len(results)} results")
    return results
