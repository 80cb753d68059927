import json
import os
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection, transaction

from accounts.tests.factories import TradingAccountFactory
from core.exceptions import NotFoundError
from risk.selectors import CONFIG_CACHE_KEY, risk_config_current, risk_config_history, risk_sizing_account_get
from risk.services import risk_config_update

D = Decimal
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_current_configuration_is_read_from_the_shared_cache_after_the_first_read(django_assert_num_queries):
    with django_assert_num_queries(1):
        first = risk_config_current()
    assert cache.get(CONFIG_CACHE_KEY) is not None
    with django_assert_num_queries(0):
        again = risk_config_current()
    assert (again.pk, again.version, again.values) == (first.pk, first.version, first.values)
    assert again.as_sizing_config() == first.as_sizing_config()


@pytest.mark.django_db
def test_update_deletes_the_cache_entry_after_commit(owner, django_capture_on_commit_callbacks):
    assert risk_config_current().version == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        risk_config_update(actor=owner, reason="r", risk_percent=D(2))
        assert cache.get(CONFIG_CACHE_KEY) is not None  # not before the commit
    assert len(callbacks) == 1
    assert cache.get(CONFIG_CACHE_KEY) is None
    assert risk_config_current().version == 2


@pytest.mark.django_db
def test_a_rolled_back_update_leaves_the_cached_configuration_in_force(
    owner, django_capture_on_commit_callbacks
):
    risk_config_current()

    def update_then_fail() -> None:
        with transaction.atomic():
            risk_config_update(actor=owner, reason="r", risk_percent=D(2))
            raise RuntimeError("the surrounding work failed")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        update_then_fail()
    assert callbacks == []
    assert risk_config_current().version == 1


@pytest.mark.django_db
def test_history_is_newest_first_with_previous_joined(owner, django_assert_num_queries):
    risk_config_update(actor=owner, reason="r", risk_percent=D(2))
    with django_assert_num_queries(1):
        rows = [
            (row.version, row.previous and row.previous.version, row.changed_by)
            for row in risk_config_history()
        ]
    assert rows == [(2, 1, owner), (1, None, None)]


@pytest.mark.django_db
def test_sizing_account_scope(owner, support, trader, other_trader):
    account = TradingAccountFactory(owner=trader)
    for user in (owner, support, trader):
        assert risk_sizing_account_get(user=user, account_id=account.pk) == account
    with pytest.raises(NotFoundError):
        risk_sizing_account_get(user=other_trader, account_id=account.pk)
    with pytest.raises(NotFoundError):
        risk_sizing_account_get(user=owner, account_id=account.pk + 1000)


# Another process sees a change without a restart -----------------------------------------------------------------

READER = textwrap.dedent(
    """
    import json, sys
    import django
    django.setup()
    from risk.selectors import risk_config_current

    for line in sys.stdin:  # one read per line from the test, in this one long-lived process
        config = risk_config_current()
        print(json.dumps({"version": config.version, **config.values}), flush=True)
    """
)


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_another_process_sees_a_configuration_change_without_restart(owner):
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": _database_url()}
    reader = subprocess.Popen(  # noqa: S603 (our own interpreter and script)
        [sys.executable, "-c", READER],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:

        def read() -> dict:
            reader.stdin.write("read\n")
            reader.stdin.flush()
            return json.loads(reader.stdout.readline())

        before = read()
        assert before["version"] == 1
        assert read() == before  # served from the shared cache now
        assert cache.get(CONFIG_CACHE_KEY) is not None

        risk_config_update(
            actor=owner, reason="seen everywhere", risk_percent=D("1.25"), entry_splits=[D(100)]
        )

        after = read()
        assert after["version"] == 2
        assert after["risk_percent"] == "1.25"
        assert after["entry_splits"] == ["100"]
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    assert reader.returncode == 0
