"""Production safety (issue 9 item 7): the backend of new accounts comes from MT5_DEFAULT_BACKEND, and the simulated
terminal is refused with a clear message while DEBUG is off — at account creation, in the admin, when the gateway is
built and at start-up for existing active accounts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse

from accounts.checks import simulated_accounts_check
from accounts.models import AccountStatus, GatewayBackend, TradingAccount
from accounts.selectors import trading_account_gateway
from accounts.services import trading_account_create
from integrations.mt5 import reset_gateways
from integrations.mt5.errors import GatewayError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def production(settings):
    settings.MT5_SIMULATED_ALLOWED = False
    settings.MT5_DEFAULT_BACKEND = "bridge"
    yield settings
    reset_gateways()


def test_new_accounts_take_the_configured_default_backend(trader, settings):
    settings.MT5_DEFAULT_BACKEND = "bridge"
    assert trading_account_create(owner=trader, login=801, server="Broker-Live").backend == "bridge"
    settings.MT5_DEFAULT_BACKEND = "native"
    assert trading_account_create(owner=trader, login=802, server="Broker-Live").backend == "native"
    assert TradingAccount(owner=trader, login=803, server="x").backend == "native"  # the model's default too


def test_creating_a_simulated_account_is_refused_in_production(trader, production):
    with pytest.raises(ValidationError) as refused:
        trading_account_create(owner=trader, login=811, server="Broker-Live", backend="simulated")
    assert "development only" in refused.value.message_dict["backend"][0]
    assert not TradingAccount.objects.filter(login=811).exists()
    # A paused one may be kept (e.g. while it is being moved to the bridge).
    account = trading_account_create(owner=trader, login=812, server="Broker-Live", backend="bridge")
    account.backend, account.status = GatewayBackend.SIMULATED, AccountStatus.PAUSED
    account.full_clean()


def test_the_admin_form_refuses_the_simulated_backend_in_production(owner, trader, production, client):
    client.force_login(owner)
    response = client.post(
        reverse("admin:accounts_tradingaccount_add"),
        {
            "owner": trader.pk,
            "login": 821,
            "server": "Broker-Live",
            "backend": "simulated",
            "connection": "{}",
            "status": "active",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "development only" in response.content.decode()
    assert not TradingAccount.objects.filter(login=821).exists()
    form = client.get(reverse("admin:accounts_tradingaccount_add")).content.decode()
    assert '<option value="bridge" selected>' in form  # the default offered is the configured one


def test_an_existing_simulated_account_gets_no_gateway_in_production(trader, settings):
    account = trading_account_create(owner=trader, login=831, server="Sim", backend="simulated")
    settings.MT5_SIMULATED_ALLOWED = False
    with pytest.raises(GatewayError, match="development only"):
        trading_account_gateway(account=account)


def test_start_up_check_names_the_active_simulated_accounts(trader, settings):
    trading_account_create(owner=trader, login=841, server="Sim", backend="simulated")
    paused = trading_account_create(owner=trader, login=842, server="Sim", backend="simulated")
    TradingAccount.objects.filter(pk=paused.pk).update(status=AccountStatus.PAUSED)
    assert simulated_accounts_check() == []  # development: fine
    settings.MT5_SIMULATED_ALLOWED = False
    (error,) = simulated_accounts_check()
    assert error.id == "accounts.E001"
    assert "841@Sim" in error.msg
    assert "842@Sim" not in error.msg
    with pytest.raises(SystemCheckError, match=r"accounts\.E001"):
        call_command("check")


def _production_env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "MT5_"))}
    return {
        **clean,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_SECRET_KEY": "p" * 30 + "Q9!x" * 10,
        "MT5_CREDENTIALS_KEYS": "kXq2d6o3b4JQm3Zq3v6Rr0Yc1rS9a3pJb8f5n2H7w0E=",
        "MT5_BRIDGE_SECRET": "s" * 32,
        **extra,
    }


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_production_defaults_to_the_bridge_and_refuses_a_simulated_default():
    code = "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG, s.MT5_DEFAULT_BACKEND, s.MT5_SIMULATED_ALLOWED)"
    out = _python(code, _production_env())
    assert out.stdout.split() == ["False", "bridge", "False"], out.stderr
    out = _python(code, _production_env(MT5_DEFAULT_BACKEND="simulated"))
    assert out.returncode != 0
    assert "MT5_DEFAULT_BACKEND=simulated is refused with DJANGO_DEBUG off" in out.stderr
    out = _python(code, _production_env(MT5_DEFAULT_BACKEND="paper"))
    assert out.returncode != 0
    assert "expected one of simulated, native, bridge" in out.stderr
    out = _python(code, _production_env(MT5_DEFAULT_BACKEND="simulated", DJANGO_DEBUG="true"))
    assert out.stdout.split() == ["True", "simulated", "True"], out.stderr
