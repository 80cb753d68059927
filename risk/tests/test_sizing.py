"""Fixed-risk sizing rules (shared/spec/sizing.md), each with its boundary. Pure: no database."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal, DecimalException
from typing import Any

import pytest

from core.shared_cases import shared_case_path
from risk.case_file import parse_case
from risk.sizing import (
    AccountState,
    EntrySize,
    InvalidSizingInput,
    Setup,
    SizingConfig,
    SizingResult,
    SymbolTerms,
    size_setup,
    validate_sizing_config,
)

D = Decimal
EXAMPLE = shared_case_path("size-example.json")

ACCOUNT = AccountState(
    currency="USD", balance=D(10000), equity=D(10000), margin_free=D(9500), snapshot_age_seconds=12
)
EURUSD = SymbolTerms(
    name="EURUSD",
    digits=5,
    point=D("0.00001"),
    trade_tick_size=D("0.00001"),
    trade_tick_value=D("1.0"),
    volume_min=D("0.01"),
    volume_max=D(100),
    volume_step=D("0.01"),
    margin_per_lot=D("1085.0"),
)
SETUP = Setup(side="buy", entries=(D("1.0850"), D("1.0840"), D("1.0830")), sl=D("1.0800"))
CONFIG = SizingConfig()
# Per-entry margins of the spec example: 325.50 + 282.10 + 162.75.
EXAMPLE_MARGIN = D("770.35")


ACCOUNT_FIELDS = {field.name for field in dataclasses.fields(AccountState)}
SYMBOL_FIELDS = {field.name for field in dataclasses.fields(SymbolTerms)}
SETUP_FIELDS = {field.name for field in dataclasses.fields(Setup)}


def size(
    *,
    account: AccountState = ACCOUNT,
    config: SizingConfig = CONFIG,
    symbol: SymbolTerms = EURUSD,
    setup: Setup = SETUP,
    account_halted: bool = False,
    **changes: Any,
) -> SizingResult:
    """Size the spec example with some account, symbol or setup fields replaced by name."""
    unknown = set(changes) - ACCOUNT_FIELDS - SYMBOL_FIELDS - SETUP_FIELDS
    assert not unknown, unknown
    account = dataclasses.replace(account, **{k: v for k, v in changes.items() if k in ACCOUNT_FIELDS})
    symbol = dataclasses.replace(symbol, **{k: v for k, v in changes.items() if k in SYMBOL_FIELDS})
    setup = dataclasses.replace(setup, **{k: v for k, v in changes.items() if k in SETUP_FIELDS})
    return size_setup(
        account=account, config=config, symbol=symbol, setup=setup, account_halted=account_halted
    )


def one_entry(*, entry: str = "1.0850", sl: str = "1.0750", side: str = "buy") -> Setup:
    return Setup(side=side, entries=(D(entry),), sl=D(sl))


def normalise(value: Any) -> Any:
    """Numbers compared as Decimals, whatever their JSON spelling."""
    if isinstance(value, dict):
        return {key: normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        try:
            return D(str(value))
        except DecimalException:
            return value
    return value


# ---------------------------------------------------------------- the two worked examples


def test_shared_example_matches_expected_exactly() -> None:
    document = json.loads(EXAMPLE.read_text())
    result = parse_case(document["case"]).size().to_dict()
    assert normalise(result) == normalise(document["expected"] | {"capped_by": None})
    # The spelling too: "2410.0", "0.07", "223.51"; no rule set, so nothing capped the risk.
    assert result == document["expected"] | {"capped_by": None}


def test_spec_inline_example_is_approved_with_its_figures() -> None:
    assert size().to_dict() == {
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


def test_sell_side_sizes_on_the_distance_above_entry() -> None:
    setup = Setup(side="sell", entries=(D("1.0850"), D("1.0860"), D("1.0870")), sl=D("1.0900"))
    result = size(setup=setup)
    assert result.approved
    assert [entry.volume for entry in result.entries] == [D("0.30"), D("0.26"), D("0.15")]


# ---------------------------------------------------------------- rounding down, exactly


def test_budget_landing_exactly_on_a_step_keeps_that_step() -> None:
    # 300 budget / (1000 ticks x 1.0) = 0.3 lots, and 0.3 / 0.01 must be exactly 30 steps.
    result = size(setup=one_entry())
    assert result.entries[0].volume == D("0.30")
    assert result.to_dict()["entries"][0]["volume"] == "0.30"
    assert result.to_dict()["entries"][0]["risk"] == "300.00"


def test_budget_a_hair_below_a_step_rounds_down() -> None:
    # 9999.99 x 3 % = 299.9997 -> 0.2999997 lots -> 0.29
    result = size(setup=one_entry(), equity=D("9999.99"))
    assert result.entries[0].volume == D("0.29")
    assert result.risk_amount == D("299.9997")
    assert result.entries[0].risk <= result.risk_amount


def test_floor_is_exact_where_binary_floats_are_not() -> None:
    # 0.7 / 0.1 is 6.999999999999999 in floats; here it must be 7 steps (700 budget / 1000 per lot).
    symbol = dataclasses.replace(EURUSD, volume_step=D("0.1"), volume_min=D("0.1"))
    result = size(setup=one_entry(), symbol=symbol, config=SizingConfig(risk_percent=D(7)))
    assert result.entries[0].volume == D("0.7")
    assert result.to_dict()["entries"][0]["volume"] == "0.7"


def test_floor_is_exact_when_the_tick_count_does_not_terminate() -> None:
    # 0.1 / 0.03 ticks = 3.333...; budget 1.00 / 3.333... = 0.3 lots exactly = 30 steps.
    symbol = dataclasses.replace(EURUSD, trade_tick_size=D("0.03"), point=D("0.01"))
    account = dataclasses.replace(ACCOUNT, equity=D("100"))
    config = SizingConfig(risk_percent=D(1))
    result = size(account=account, config=config, symbol=symbol, setup=one_entry(entry="1.1", sl="1.0"))
    assert result.entries[0].volume == D("0.30")
    assert result.to_dict()["entries"][0]["risk"] == "1.00"


def test_inputs_beyond_the_exact_precision_raise_instead_of_rounding() -> None:
    equity = D("10000." + "0" * 55 + "1")
    with pytest.raises(DecimalException):
        size(equity=equity)


@pytest.mark.parametrize(
    ("equity", "entry", "sl", "step"),
    [
        ("12345.67", "1.09137", "1.08011", "0.01"),
        ("777.77", "1.3", "1.2", "0.001"),
        ("50000", "2.00005", "2.00000", "0.01"),
        ("3141.59", "1.11111", "1.10000", "0.1"),
    ],
)
def test_risk_never_exceeds_the_budget_and_volumes_are_step_multiples(
    equity: str, entry: str, sl: str, step: str
) -> None:
    symbol = dataclasses.replace(EURUSD, volume_step=D(step), volume_min=D(step), volume_max=D(1000))
    setup = Setup(side="buy", entries=(D(entry), D(entry) - D("0.00001"), D(entry) - D("0.00002")), sl=D(sl))
    result = size(equity=D(equity), symbol=symbol, setup=setup)
    assert result.total_risk is not None
    assert result.risk_amount is not None
    assert result.total_risk <= result.risk_amount
    for entry_size, split in zip(result.entries, CONFIG.entry_splits, strict=True):
        assert entry_size.risk <= result.risk_amount * split / 100
        assert entry_size.volume % D(step) == 0


# ---------------------------------------------------------------- volume_max and volume_min


def test_volume_is_capped_at_volume_max() -> None:
    symbol = dataclasses.replace(EURUSD, volume_max=D("0.5"))
    result = size(setup=one_entry(sl="1.0840"), symbol=symbol)  # uncapped: 300 / 100 = 3.00 lots
    assert result.approved
    assert result.to_dict()["entries"][0]["volume"] == "0.50"
    assert result.entries[0].risk == D("50")


def test_volume_max_off_the_step_is_floored_to_the_step() -> None:
    symbol = dataclasses.replace(EURUSD, volume_max=D("0.505"))
    result = size(setup=one_entry(sl="1.0840"), symbol=symbol)
    assert result.entries[0].volume == D("0.50")
    assert result.entries[0].volume <= symbol.volume_max


def test_entry_below_volume_min_gets_zero_and_a_note() -> None:
    symbol = dataclasses.replace(EURUSD, volume_min=D("0.16"))  # third entry sizes to 0.15
    result = size(symbol=symbol)
    assert result.approved
    third = result.to_dict()["entries"][2]
    assert third == {
        "price": "1.0830",
        "volume": "0.00",
        "risk": "0.00",
        "margin": "0.00",
        "note": "below_min_volume",
    }
    assert result.to_dict()["total_volume"] == "0.56"
    assert result.to_dict()["total_risk"] == "254.00"


def test_entry_exactly_at_volume_min_is_kept() -> None:
    symbol = dataclasses.replace(EURUSD, volume_min=D("0.15"))
    result = size(symbol=symbol)
    assert result.entries[2].volume == D("0.15")
    assert result.entries[2].note is None


def test_every_entry_below_volume_min_rejects_with_the_entries() -> None:
    symbol = dataclasses.replace(EURUSD, volume_min=D("0.31"))
    result = size(symbol=symbol)
    assert not result.approved
    assert result.reason == "below_min_volume"
    assert [entry.note for entry in result.entries] == ["below_min_volume"] * 3
    assert result.to_dict()["total_volume"] == "0.00"


# ---------------------------------------------------------------- margin and its buffer


def test_margin_with_buffer_exactly_equal_to_free_margin_is_approved() -> None:
    result = size(margin_free=EXAMPLE_MARGIN * D("1.2"))  # 924.42
    assert result.approved


def test_margin_a_cent_over_free_margin_is_rejected_with_the_entries() -> None:
    result = size(margin_free=EXAMPLE_MARGIN * D("1.2") - D("0.01"))
    assert not result.approved
    assert result.reason == "insufficient_margin"
    assert len(result.entries) == 3
    assert result.to_dict()["total_margin"] == "770.35"


def test_zero_buffer_compares_the_bare_margin() -> None:
    config = SizingConfig(margin_buffer_percent=D(0))
    assert size(config=config, margin_free=EXAMPLE_MARGIN).approved
    assert size(config=config, margin_free=EXAMPLE_MARGIN - D("0.01")).reason == "insufficient_margin"


def test_full_buffer_doubles_the_margin() -> None:
    config = SizingConfig(margin_buffer_percent=D(100))
    assert size(config=config, margin_free=EXAMPLE_MARGIN * 2).approved
    assert not size(config=config, margin_free=EXAMPLE_MARGIN * 2 - D("0.01")).approved


# ---------------------------------------------------------------- entries and splits


def test_one_entry_takes_the_whole_budget() -> None:
    result = size(setup=one_entry(sl="1.0800"))  # 300 / 500 = 0.60
    assert result.approved
    assert result.to_dict()["entries"][0]["volume"] == "0.60"
    assert result.to_dict()["total_risk"] == "300.00"


def test_one_entry_with_a_single_split_config() -> None:
    config = SizingConfig(entry_splits=(D(100),))
    assert size(config=config, setup=one_entry(sl="1.0800")).entries[0].volume == D("0.60")


def test_two_entries_with_two_splits() -> None:
    config = SizingConfig(entry_splits=(D(60), D(40)))
    setup = Setup(side="buy", entries=(D("1.0850"), D("1.0840")), sl=D("1.0800"))
    result = size(config=config, setup=setup)
    assert [entry.volume for entry in result.entries] == [D("0.36"), D("0.30")]


@pytest.mark.parametrize(
    ("splits", "entries"),
    [
        ((D(50), D(35), D(15)), ()),  # no entries
        ((D(50), D(35), D(15)), ("1.0850", "1.0840")),  # fewer entries than splits
        ((D(50), D(35), D(15)), ("1.0850", "1.0840", "1.0830", "1.0820")),  # more entries than splits
        ((D(100),), ("1.0850", "1.0840")),  # more entries than a single split
        ((D(60), D(40)), ("1.0850", "1.0840", "1.0830")),
    ],
)
def test_entry_count_not_matching_the_splits_is_invalid_setup(
    splits: tuple[Decimal, ...], entries: tuple[str, ...]
) -> None:
    setup = Setup(side="buy", entries=tuple(D(price) for price in entries), sl=D("1.0800"))
    result = size(config=SizingConfig(entry_splits=splits), setup=setup)
    assert result.reason == "invalid_setup"
    assert result.to_dict()["entries"] == []
    assert result.risk_amount is None


@pytest.mark.parametrize(
    ("entry", "sl"), [("0", "-1"), ("-1.0850", "-1.09"), ("1.0850", "0"), ("1.0850", "-0.5")]
)
def test_non_positive_price_or_stop_is_invalid_setup(entry: str, sl: str) -> None:
    setup = Setup(side="buy", entries=(D("1.0850"), D(entry), D("1.0830")), sl=D(sl))
    assert size(setup=setup).reason == "invalid_setup"


@pytest.mark.parametrize("side", ["BUY", "Sell", "long", "", "buy "])
def test_side_other_than_buy_or_sell_is_invalid_setup(side: str) -> None:
    assert size(setup=dataclasses.replace(SETUP, side=side)).reason == "invalid_setup"


@pytest.mark.parametrize(
    ("side", "sl"),
    [
        ("buy", "1.0900"),  # above every entry
        ("buy", "1.0830"),  # equal to the last entry
        ("buy", "1.0835"),  # between entries
        ("sell", "1.0800"),  # below every entry
        ("sell", "1.0850"),  # equal to the first entry
        ("sell", "1.0845"),  # between entries
    ],
)
def test_stop_not_on_the_losing_side_of_every_entry_is_invalid_stop(side: str, sl: str) -> None:
    result = size(setup=dataclasses.replace(SETUP, side=side, sl=D(sl)))
    assert result.reason == "invalid_stop"
    assert result.entries == ()


# ---------------------------------------------------------------- account checks and their order


def test_snapshot_exactly_at_max_age_is_fresh() -> None:
    assert size(snapshot_age_seconds=300).approved


@pytest.mark.parametrize("age", [301, D("300.001")])
def test_snapshot_older_than_max_age_is_stale(age: int | Decimal) -> None:
    result = size(snapshot_age_seconds=age)
    assert result.to_dict() == {
        "approved": False,
        "reason": "stale_account",
        "risk_amount": None,
        "entries": [],
        "total_volume": None,
        "total_risk": None,
        "total_margin": None,
        "capped_by": None,
    }


@pytest.mark.parametrize("equity", ["0", "0.00", "-5"])
def test_non_positive_equity_is_no_equity(equity: str) -> None:
    assert size(equity=D(equity)).reason == "no_equity"


def test_a_cent_of_equity_passes_the_equity_check() -> None:
    assert size(equity=D("0.01")).reason == "below_min_volume"


def test_halted_account_is_rejected_first() -> None:
    result = size(account_halted=True, snapshot_age_seconds=10_000, equity=D(0), setup=one_entry(side="x"))
    assert result.reason == "account_halted"
    assert result.to_dict()["entries"] == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"snapshot_age_seconds": 301, "equity": D(0)}, "stale_account"),
        ({"snapshot_age_seconds": 301, "side": "x", "sl": D("2")}, "stale_account"),
        ({"equity": D(0), "side": "x"}, "no_equity"),
        ({"equity": D(-1), "sl": D("2")}, "no_equity"),
        ({"side": "x", "sl": D("2")}, "invalid_setup"),
        ({"entries": (D("1.0850"),) * 2, "sl": D("2")}, "invalid_setup"),
        ({"sl": D("2"), "margin_free": D(0)}, "invalid_stop"),
        ({"volume_min": D(1), "margin_free": D(-1)}, "below_min_volume"),
    ],
)
def test_rejections_come_in_the_spec_order(changes: dict[str, Any], reason: str) -> None:
    assert size(**changes).reason == reason


# ---------------------------------------------------------------- reporting


def test_money_is_rounded_half_up_to_cents() -> None:
    # 302.50 x 1 % = 3.025: half-up gives 3.03 (banker's rounding would give 3.02).
    config = SizingConfig(risk_percent=D(1))
    result = size(config=config, equity=D("302.50"))
    assert result.to_dict()["risk_amount"] == "3.03"
    entry = EntrySize(price=D("1.1"), volume=D("0.01"), risk=D("0.125"), margin=D("0.0250"))
    assert entry.to_dict()["risk"] == "0.13"
    assert entry.to_dict()["margin"] == "0.03"


def test_reported_money_is_rounded_but_budgets_use_the_exact_risk_amount() -> None:
    result = size(equity=D("7450.25"))  # 223.5075
    assert result.risk_amount == D("223.507500")
    assert result.to_dict()["risk_amount"] == "223.51"


def test_prices_keep_their_decimal_text_and_never_use_exponents() -> None:
    setup = Setup(side="buy", entries=(D("1.08500"), D("1.0840"), D("1.083")), sl=D("1.08E0"))
    entries = size(setup=setup).to_dict()["entries"]
    assert [entry["price"] for entry in entries] == ["1.08500", "1.0840", "1.083"]
    assert EntrySize(price=D("1E+3"), volume=D(0), risk=D(0), margin=D(0)).to_dict()["price"] == "1000"


def test_volumes_use_the_step_decimals() -> None:
    symbol = dataclasses.replace(EURUSD, volume_step=D("0.1"), volume_min=D("0.1"))
    assert size(setup=one_entry(), symbol=symbol).to_dict()["entries"][0]["volume"] == "0.3"
    symbol = dataclasses.replace(EURUSD, volume_step=D(1), volume_min=D(1))
    result = size(setup=one_entry(sl="1.0849"), symbol=symbol)  # 300 / 10 = 30 lots
    assert result.to_dict()["entries"][0]["volume"] == "30"


# ---------------------------------------------------------------- config and symbol validation


def test_default_config_is_valid() -> None:
    assert SizingConfig().validate() == {}


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("risk_percent", [D("0.1"), D(50), D("3.0")], [D("0.09"), D("50.01"), D(0), D("NaN"), 3.0, "3"]),
        ("margin_buffer_percent", [D(0), D(100)], [D("-0.01"), D("100.01"), D("Infinity")]),
        ("max_snapshot_age_seconds", [10, 3600], [9, 3601, True, D(300), 300.0]),
        (
            "entry_splits",
            [(D(100),), (D(60), D(40)), (D("33.3"), D("33.3"), D("33.4")), [D(50), D(35), D(15)]],
            [
                (),
                (D(25),) * 4,
                (D(100), D(0)),
                (D(110), D(-10)),
                (D(50), D("49.99")),
                (D(50), D("50.01")),
                (D(50), D("1E-60"), D(50)),
                "100",
                (100,),
            ],
        ),
    ],
)
def test_config_ranges_are_inclusive_and_checked(field: str, good: list[Any], bad: list[Any]) -> None:
    base = {name.name: getattr(CONFIG, name.name) for name in dataclasses.fields(CONFIG)}
    for value in good:
        assert validate_sizing_config(**{**base, field: value}) == {}, value
    for value in bad:
        errors = validate_sizing_config(**{**base, field: value})
        assert list(errors) == [field], value
        assert errors[field]


def test_invalid_config_raises_with_field_errors() -> None:
    with pytest.raises(InvalidSizingInput) as caught:
        size(config=SizingConfig(risk_percent=D(60), entry_splits=(D(50),)))
    assert set(caught.value.errors) == {"risk_percent", "entry_splits"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trade_tick_size", D(0)),
        ("trade_tick_value", D("-1")),
        ("volume_step", D(0)),
        ("margin_per_lot", D("-0.01")),
        ("volume_min", D(101)),
    ],
)
def test_meaningless_symbol_terms_raise(field: str, value: Decimal) -> None:
    change: dict[str, Any] = {field: value}
    with pytest.raises(InvalidSizingInput) as caught:
        size(symbol=dataclasses.replace(EURUSD, **change))
    assert list(caught.value.errors) == [field]


def test_zero_margin_per_lot_is_allowed() -> None:
    result = size(symbol=dataclasses.replace(EURUSD, margin_per_lot=D(0)), margin_free=D(0))
    assert result.approved
    assert result.to_dict()["total_margin"] == "0.00"


# ---------------------------------------------------------------- rule sets: headroom cap, close-only


def test_headroom_below_the_risk_amount_caps_it_and_says_so() -> None:
    result = size(headroom=D("150.00"))
    assert result.approved
    assert result.risk_amount == D("150.00")
    assert result.capped_by == "headroom"
    figures = result.to_dict()
    assert figures["risk_amount"] == "150.00"
    assert figures["capped_by"] == "headroom"
    assert [entry["volume"] for entry in figures["entries"]] == ["0.15", "0.13", "0.07"]
    assert D(figures["total_risk"]) <= D(150)


@pytest.mark.parametrize("headroom", ["300", "300.00", "5000"])
def test_headroom_at_or_above_the_risk_amount_changes_nothing(headroom: str) -> None:
    result = size(headroom=D(headroom))
    assert (result.risk_amount, result.capped_by) == (D(300), None)


@pytest.mark.parametrize("headroom", ["0", "0.00", "-12.5"])
def test_no_headroom_rejects_after_no_equity(headroom: str) -> None:
    assert size(headroom=D(headroom)).reason == "no_headroom"
    assert size(headroom=D(headroom), setup=one_entry(side="x")).reason == "no_headroom"
    assert size(headroom=D(headroom), equity=D(0)).reason == "no_equity"
    assert size(headroom=D(headroom), snapshot_age_seconds=301).reason == "stale_account"


def test_close_only_rejects_every_new_setup() -> None:
    result = size_setup(account=ACCOUNT, config=CONFIG, symbol=EURUSD, setup=SETUP, close_only=True)
    assert (result.approved, result.reason, result.entries) == (False, "close_only", ())
    halted = size_setup(
        account=ACCOUNT, config=CONFIG, symbol=EURUSD, setup=SETUP, close_only=True, account_halted=True
    )
    assert halted.reason == "account_halted"


def test_size_case_reads_the_optional_headroom() -> None:
    document = json.loads(EXAMPLE.read_text())
    document["case"]["account"]["headroom"] = "100"
    figures = parse_case(document["case"]).size().to_dict()
    assert (figures["risk_amount"], figures["capped_by"]) == ("100.00", "headroom")
    document["case"]["account"]["headroom"] = 0
    assert parse_case(document["case"]).size().to_dict()["reason"] == "no_headroom"
