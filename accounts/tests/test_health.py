"""The per-account health probe: what the pages show about each terminal link."""

import pytest
from django.urls import reverse

from accounts.models import AccountHealth, GatewayBackend
from accounts.selectors import trading_account_gateway
from accounts.services import account_health_probe, trading_account_create
from accounts.tasks import account_health_probe_cycle, account_health_probe_task
from integrations.mt5 import reset_gateways
from integrations.mt5.simulated import default_registry

pytestmark = pytest.mark.django_db

PASSWORD = "probe-secret-pass"


@pytest.fixture
def sim_account(trader):
    reset_gateways()
    account = trading_account_create(
        owner=trader, login=8_800_001, server="Probe-Sim", password=PASSWORD, backend=GatewayBackend.SIMULATED
    )
    default_registry().remove(account.login, account.server)
    terminal = default_registry().create_account(account.login, server=account.server, password=PASSWORD)
    yield account, terminal
    default_registry().remove(account.login, account.server)
    reset_gateways()


def test_probe_stores_a_healthy_link(sim_account):
    account, _terminal = sim_account
    row = account_health_probe(account=account, gateway=trading_account_gateway(account=account))
    row = AccountHealth.objects.get(pk=account.pk)
    assert row.connected
    assert row.trade_allowed
    assert not row.tradeapi_disabled
    assert row.ping_ms is not None
    assert row.probe_latency_ms >= 0
    assert row.circuit_state == "closed"
    assert row.error == ""


def test_probe_reports_algo_trading_switched_off(sim_account):
    account, terminal = sim_account
    terminal.sim_set_trade_allowed(False)
    row = account_health_probe(account=account, gateway=trading_account_gateway(account=account))
    assert row.connected
    assert not row.trade_allowed


def test_a_dead_terminal_is_recorded_as_down_with_the_reason_and_the_circuit_opens(sim_account, caplog):
    account, terminal = sim_account
    gateway = trading_account_gateway(account=account)
    account_health_probe(account=account, gateway=gateway)
    terminal.sim_inject_fault("terminal_info", (-10005, "IPC timeout"), times=50)
    for _ in range(4):
        row = account_health_probe(account=account, gateway=gateway)
    assert not row.connected
    assert "IPC timeout" in row.error or "circuit open" in row.error
    assert row.circuit_state == "open"
    assert row.circuit_failures >= 3
    assert AccountHealth.objects.count() == 1  # one row per account, updated in place
    assert PASSWORD not in row.error
    assert PASSWORD not in caplog.text


def test_probe_task_stores_the_reading(sim_account):
    account, _terminal = sim_account
    assert account_health_probe_task(account.pk) == "connected"
    assert account_health_probe_task(999_999) == "gone"
    assert AccountHealth.objects.filter(pk=account.pk, connected=True).exists()


def test_support_sees_health_read_only(client, support, sim_account):
    account, _terminal = sim_account
    account_health_probe(account=account, gateway=trading_account_gateway(account=account))
    client.force_login(support)
    assert client.get(reverse("admin:accounts_accounthealth_changelist")).status_code == 200
    resp = client.get(reverse("admin:accounts_tradingaccount_changelist"))
    assert "connected" in resp.content.decode()
    assert client.get(reverse("admin:accounts_accounthealth_add")).status_code == 403


def test_cycle_fans_out_one_probe_per_active_account(sim_account, monkeypatch):
    sent = []
    monkeypatch.setattr(
        account_health_probe_task, "apply_async", lambda args, expires: sent.append((args, expires))
    )
    assert account_health_probe_cycle() == 1
    assert sent == [([sim_account[0].pk], 30)]
