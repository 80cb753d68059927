"""Timestamps read from PostgreSQL: parsed by the driver's C code, with Django's exact result (aware, in the
connection's time zone object), for every way the ORM and raw cursors read them."""

import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from accounts.models import AccountSnapshot
from accounts.tests.factories import AccountSnapshotFactory
from core.pgtypes import _c_timestamptz_loader

pytestmark = pytest.mark.django_db

TIMESTAMPTZ_OID = 1184
TEXT_FORMAT = 0


def test_the_connection_parses_timestamps_with_the_c_loader():
    assert _c_timestamptz_loader() is not None, "psycopg[binary] is a requirement; its C loader must be found"
    with connection.cursor() as cursor:
        loader = cursor.connection.adapters.get_loader(TIMESTAMPTZ_OID, TEXT_FORMAT)
    assert loader.__name__ == "CTimestamptzLoader"
    assert loader.timezone == connection.timezone  # what Django's create_cursor compares before overriding it


@pytest.mark.parametrize(
    "written",
    [
        datetime.datetime(2026, 11, 30, 23, 59, 59, 999_999, tzinfo=datetime.UTC),
        datetime.datetime(1969, 7, 20, 20, 17, 40, tzinfo=datetime.UTC),
        # written in another zone (a broker's), read back as the same instant in UTC
        datetime.datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Athens")),
    ],
)
def test_a_timestamp_reads_back_as_the_same_instant_in_utc(written):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz", [written])
        (read,) = cursor.fetchone()
    assert read == written
    assert read.tzinfo is connection.timezone
    assert read.utcoffset() == datetime.timedelta(0)


def test_the_orm_reads_model_times_unchanged():
    taken_at = datetime.datetime(2026, 11, 30, 12, 0, 0, 123_456, tzinfo=datetime.UTC)
    account = AccountSnapshotFactory(taken_at=taken_at).account
    assert AccountSnapshot.objects.get(account=account).taken_at == taken_at
    assert (
        AccountSnapshot.objects.values_list("taken_at", flat=True).get(account=account).tzinfo is datetime.UTC
    )
