import threading
from dataclasses import replace
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.tests.factories import TradingAccountFactory
from core.exceptions import PermissionDeniedError
from integrations.mt5.errors import GatewayUnavailable
from integrations.mt5.simulated.registry import default_registry
from risk.models import RiskConfigVersion, TradeSetupRiskLog
from risk.selectors import risk_config_current
from risk.services import (
    InvalidSymbolTerms,
    SetupRejected,
    TerminalUnavailable,
    UnknownSymbol,
    risk_config_update,
    trade_setup_size,
)
from risk.tests.conftest import account_with_snapshot

pytestmark = pytest.mark.django_db
D = Decimal


def test_migration_installs_spec_defaults_as_version_1():
    config = RiskConfigVersion.objects.get()
    assert config.version == 1
    assert config.previous is None
    assert config.changed_by is None
    assert config.values == {
        "risk_percent": "3.00",
        "entry_splits": ["50", "35", "15"],
        "margin_buffer_percent": "20.00",
        "max_snapshot_age_seconds": 300,
    }


def test_risk_config_update_stores_a_new_version_linked_to_the_old(owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        config = risk_config_update(
            actor=owner, reason="  calmer market  ", risk_percent=D("2.5"), entry_splits=[D(60), D(40)]
        )
    assert config.version == 2
    assert config.previous.version == 1
    assert config.changed_by == owner
    assert config.reason == "calmer market"
    assert config.entry_splits == ["60", "40"]
    # Settings not given keep their value.
    assert config.margin_buffer_percent == D("20.00")
    assert config.max_snapshot_age_seconds == 300
    assert risk_config_current().pk == config.pk
    assert RiskConfigVersion.objects.count() == 2


def test_risk_config_update_accepts_decimal_text_and_numbers(owner):
    config = risk_config_update(
        actor=owner, reason="r", risk_percent="1.5", entry_splits=["50", 30, 20.0], margin_buffer_percent=0
    )
    assert config.risk_percent == D("1.5")
    assert config.entry_splits == ["50", "30", "20"]
    assert config.margin_buffer_percent == D(0)


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"risk_percent": D("0.09")}, "risk_percent", "Risk percent must be a number from 0.1 to 50."),
        ({"risk_percent": D("50.01")}, "risk_percent", "Risk percent must be a number from 0.1 to 50."),
        ({"entry_splits": [D(50), D(40)]}, "entry_splits", "Entry splits parts must sum to exactly 100."),
        ({"entry_splits": [D(25)] * 4}, "entry_splits", "Entry splits must be 1 to 3 parts."),
        ({"entry_splits": []}, "entry_splits", "Entry splits must be 1 to 3 parts."),
        (
            {"entry_splits": [D(110), D(-10)]},
            "entry_splits",
            "Entry splits every part must be a positive number.",
        ),
        ({"margin_buffer_percent": D(-1)}, "margin_buffer_percent", "must be a number from 0 to 100"),
        (
            {"max_snapshot_age_seconds": 5},
            "max_snapshot_age_seconds",
            "whole number of seconds from 10 to 3600",
        ),
        ({"risk_percent": "abc"}, "risk_percent", "Risk percent must be a number from 0.1 to 50."),
    ],
)
def test_risk_config_update_refuses_out_of_range_values_and_stores_nothing(owner, values, field, message):
    before = risk_config_current()
    with pytest.raises(ValidationError) as exc_info:
        risk_config_update(actor=owner, reason="try", **values)
    assert list(exc_info.value.message_dict) == [field]
    assert message in exc_info.value.message_dict[field][0]
    assert RiskConfigVersion.objects.count() == 1
    assert risk_config_current().values == before.values


def test_risk_config_update_requires_a_reason(owner):
    with pytest.raises(ValidationError) as exc_info:
        risk_config_update(actor=owner, reason="   ", risk_percent=D(2))
    assert exc_info.value.message_dict == {
        "reason": ["A reason is required: say why the configuration changes."]
    }
    assert RiskConfigVersion.objects.count() == 1


def test_risk_config_update_names_every_bad_field_at_once(owner):
    with pytest.raises(ValidationError) as exc_info:
        risk_config_update(actor=owner, reason="", risk_percent=D(60), margin_buffer_percent=D(-1))
    assert set(exc_info.value.message_dict) == {"risk_percent", "margin_buffer_percent", "reason"}


@pytest.mark.parametrize("user_fixture", ["support", "trader"])
def test_risk_config_update_is_for_owners_only(request, user_fixture):
    with pytest.raises(PermissionDeniedError):
        risk_config_update(actor=request.getfixturevalue(user_fixture), reason="r", risk_percent=D(1))
    assert RiskConfigVersion.objects.count() == 1


def test_versions_form_one_chain(owner):
    for percent in ("1", "2", "4"):
        risk_config_update(actor=owner, reason=f"to {percent}", risk_percent=D(percent))
    chain = list(RiskConfigVersion.objects.order_by("version").values_list("version", "previous__version"))
    assert chain == [(1, None), (2, 1), (3, 2), (4, 3)]


# Sizing in the live flow ---------------------------------------------------------------------------------------

SPEC_SETUP = {
    "symbol": "EURUSD",
    "side": "buy",
    "entries": [D("1.0850"), D("1.0840"), D("1.0830")],
    "sl": D("1.0800"),
}


def test_trade_setup_size_matches_the_spec_example_and_logs_it(trader, trader_account, stub_terminal):
    log = trade_setup_size(account=trader_account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert log.approved is True
    assert log.reason == ""
    assert log.config.version == 1
    assert log.result == {
        "approved": True,
        "reason": None,
        "risk_amount": "300.00",
        "entries": [
            {"price": "1.0850", "volume": "0.30", "risk": "150.00", "margin": "325.50", "note": None},
            {"price": "1.0840", "volume": "0.26", "risk": "104.00", "margin": "282.10", "note": None},
            {"price": "1.0830", "volume": "0.15", "risk": "45.00", "margin": "162.75", "note": None},
        ],
        "total_volume": "0.71",
        "total_risk": "299.00",
        "total_margin": "770.35",
        "capped_by": None,
    }
    stored = TradeSetupRiskLog.objects.get()
    assert stored.pk == log.pk
    assert stored.requested_by == trader
    assert stored.inputs["entries"] == ["1.0850", "1.0840", "1.0830"]
    assert D(stored.inputs["account"]["equity"]) == D(10000)
    assert stored.inputs["symbol_terms"]["trade_tick_value"] == "1.0"
    assert stored.inputs["symbol_terms"]["margin_per_lot"] == "1085.0"


def test_trade_setup_size_uses_the_configuration_in_force(owner, trader, trader_account, stub_terminal):
    risk_config_update(actor=owner, reason="half", risk_percent=D("1.5"), entry_splits=[D(100)])
    log = trade_setup_size(
        account=trader_account,
        actor=trader,
        gateway=stub_terminal,
        **(SPEC_SETUP | {"entries": [D("1.0850")]}),
    )
    assert log.config.version == 2
    assert log.result["risk_amount"] == "150.00"
    assert log.result["entries"][0]["volume"] == "0.30"


def test_margin_per_lot_is_quoted_once_at_the_highest_entry(trader, trader_account, stub_terminal):
    sell = {
        "symbol": "EURUSD",
        "side": "sell",
        "entries": [D("1.0830"), D("1.0850"), D("1.0840")],
        "sl": D("1.09"),
    }
    log = trade_setup_size(account=trader_account, actor=trader, gateway=stub_terminal, **sell)
    assert [call for call in stub_terminal.calls if call.startswith("margin")] == [
        "margin sell EURUSD 1 1.0850"
    ]
    assert log.inputs["symbol_terms"]["margin_per_lot"] == "1085.0"


def test_stale_account_is_a_logged_rejection_without_asking_the_terminal(trader, stub_terminal):
    account = account_with_snapshot(owner=trader, age_seconds=301)
    log = trade_setup_size(account=account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert (log.approved, log.reason) == (False, "stale_account")
    assert log.result["entries"] == []
    assert stub_terminal.calls == []
    assert TradeSetupRiskLog.objects.filter(reason="stale_account").count() == 1


def test_account_without_snapshot_is_stale(trader, stub_terminal):
    account = TradingAccountFactory(owner=trader)
    log = trade_setup_size(account=account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert (log.approved, log.reason) == (False, "stale_account")
    assert log.inputs["account"] == {"snapshot_id": None}


def test_max_snapshot_age_comes_from_the_configuration(owner, trader, stub_terminal):
    account = account_with_snapshot(owner=trader, age_seconds=60)
    risk_config_update(actor=owner, reason="tighter", max_snapshot_age_seconds=30)
    log = trade_setup_size(account=account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert log.reason == "stale_account"


def test_insufficient_margin_is_a_result(trader, stub_terminal):
    account = account_with_snapshot(owner=trader, margin_free=D("900"))
    log = trade_setup_size(account=account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert (log.approved, log.reason) == (False, "insufficient_margin")
    assert log.result["total_volume"] == "0.71"


def test_stop_on_the_wrong_side_is_logged_then_refused(trader, trader_account, stub_terminal):
    with pytest.raises(SetupRejected) as exc_info:
        trade_setup_size(
            account=trader_account, actor=trader, gateway=stub_terminal, **(SPEC_SETUP | {"sl": D("1.09")})
        )
    assert exc_info.value.extra["fields"] == {"sl": ["For a buy the stop loss must be below every entry."]}
    log = TradeSetupRiskLog.objects.get()
    assert (log.approved, log.reason, exc_info.value.extra["log_id"]) == (False, "invalid_stop", log.pk)


def test_two_entries_with_three_splits_is_refused(trader, trader_account, stub_terminal):
    with pytest.raises(SetupRejected) as exc_info:
        trade_setup_size(
            account=trader_account,
            actor=trader,
            gateway=stub_terminal,
            **(SPEC_SETUP | {"entries": [D("1.0850"), D("1.0840")]}),
        )
    assert "exactly 3 entries" in exc_info.value.message
    assert TradeSetupRiskLog.objects.get().reason == "invalid_setup"


def test_unknown_symbol_is_logged_then_refused(trader, trader_account, stub_terminal):
    with pytest.raises(UnknownSymbol) as exc_info:
        trade_setup_size(
            account=trader_account, actor=trader, gateway=stub_terminal, **(SPEC_SETUP | {"symbol": "NOPE"})
        )
    assert exc_info.value.status_code == 400
    assert "NOPE" in exc_info.value.extra["fields"]["symbol"][0]
    log = TradeSetupRiskLog.objects.get()
    assert (log.approved, log.reason, log.result) == (False, "unknown_symbol", None)


def test_unreachable_terminal_is_logged_then_a_503(trader, trader_account, stub_terminal, monkeypatch):
    def down(name):
        raise GatewayUnavailable("no link", code=-10004, call="symbol_info")

    monkeypatch.setattr(stub_terminal, "symbol", down)
    with pytest.raises(TerminalUnavailable) as exc_info:
        trade_setup_size(account=trader_account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert exc_info.value.status_code == 503
    assert TradeSetupRiskLog.objects.get().reason == "terminal_unavailable"


def test_unusable_symbol_terms_are_logged_then_refused(trader, trader_account, stub_terminal):
    stub_terminal.symbols["EURUSD"] = replace(stub_terminal.symbols["EURUSD"], trade_tick_value=D(0))
    with pytest.raises(InvalidSymbolTerms) as exc_info:
        trade_setup_size(account=trader_account, actor=trader, gateway=stub_terminal, **SPEC_SETUP)
    assert exc_info.value.extra["terms"] == {"trade_tick_value": "must be a positive number"}
    assert TradeSetupRiskLog.objects.get().reason == "invalid_symbol_terms"


# Through the real gateway on a simulated terminal ----------------------------------------------------------------


def test_live_flow_on_a_simulated_terminal(trader, simulated_account):
    terminal = default_registry().get(simulated_account.login, simulated_account.server)
    terminal.sim_set_price("EURUSD", "1.08500", "1.08510")
    log = trade_setup_size(account=simulated_account, actor=trader, **SPEC_SETUP)
    assert (log.approved, log.reason) == (True, "")
    # EURUSD on a USD account: one tick (0.00001) of one lot is worth 1 USD, as in the spec's example.
    assert D(log.inputs["symbol_terms"]["trade_tick_value"]) == 1
    assert [entry["volume"] for entry in log.result["entries"]] == ["0.30", "0.26", "0.15"]
    # Margin per lot is what order_calc_margin quotes at the highest entry (1:100, 100 000 EUR at ~1.085).
    margin_per_lot = D(log.inputs["symbol_terms"]["margin_per_lot"])
    assert D(1080) < margin_per_lot < D(1090)
    assert D(log.result["total_margin"]) == (D("0.71") * margin_per_lot).quantize(D("0.01"))


def test_live_flow_unknown_symbol_on_a_simulated_terminal(trader, simulated_account):
    with pytest.raises(UnknownSymbol):
        trade_setup_size(account=simulated_account, actor=trader, **(SPEC_SETUP | {"symbol": "NOSUCH"}))
    assert TradeSetupRiskLog.objects.get().reason == "unknown_symbol"


def test_live_flow_dropped_terminal_link_is_a_503(trader, simulated_account):
    default_registry().get(simulated_account.login, simulated_account.server).sim_drop_connection()
    with pytest.raises(TerminalUnavailable):
        trade_setup_size(account=simulated_account, actor=trader, **SPEC_SETUP)
    assert TradeSetupRiskLog.objects.get().reason == "terminal_unavailable"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_edits_are_serialised_into_one_chain(owner):
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def edit(percent: int) -> None:
        try:
            barrier.wait()
            risk_config_update(actor=owner, reason=f"edit {percent}", risk_percent=D(percent))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(percent,)) for percent in (1, 2, 4, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    chain = list(RiskConfigVersion.objects.order_by("version").values_list("version", "previous__version"))
    assert chain == [(1, None), (2, 1), (3, 2), (4, 3), (5, 4)]
    assert sorted(RiskConfigVersion.objects.exclude(version=1).values_list("risk_percent", flat=True)) == [
        D(1),
        D(2),
        D(4),
        D(5),
    ]
