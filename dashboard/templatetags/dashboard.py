"""Number formatting for the pages: money with two decimals and thousands separators, prices with the symbol's
digits, percentages; all as text that right-aligns in a tabular-figures column."""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

register = template.Library()

EMPTY = "\u2013"  # an en dash: "no value"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def money(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return EMPTY
    return f"{number.quantize(Decimal('0.01')):,}"


@register.filter
def pct(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return EMPTY
    return f"{number.quantize(Decimal('0.01'))} %"


@register.filter
def term(value: Any) -> str:
    """A rule-set term (a percent) as typed: 5, 2.5, 0.25 (no padding zeros)."""
    number = _decimal(value)
    if number is None:
        return EMPTY
    return f"{number.normalize():f}"


@register.filter
def price(value: Any, digits: Any = None) -> str:
    """A price with the symbol's digits; without them, as stored less trailing zeros (at least two decimals)."""
    number = _decimal(value)
    if number is None:
        return EMPTY
    if digits in (None, ""):
        text = f"{number.normalize():f}"
        places = len(text.split(".")[1]) if "." in text else 0
        digits = max(places, 2)
    return f"{number.quantize(Decimal(1).scaleb(-int(digits))):f}"


@register.filter
def volume(value: Any) -> str:
    number = _decimal(value)
    if number is None:
        return EMPTY
    text = f"{number.normalize():f}"
    return text if "." in text and len(text.split(".")[1]) >= 2 else f"{number.quantize(Decimal('0.01')):f}"


@register.filter
def day_resets_at(account: Any) -> datetime | None:
    from dashboard.selectors.overview import broker_day_resets_at

    return broker_day_resets_at(account=account)


@register.filter
def permitted_loss(account: Any) -> Any:
    """An overview row's binding permitted loss (guards.headroom, from the row's annotations)."""
    from dashboard.selectors.overview import row_permitted_loss

    return row_permitted_loss(account)


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if mapping else None


@register.filter
def pair(first: Any, second: Any) -> tuple[Any, Any]:
    """Two values to loop over (a row's expected and actual, formatted alike)."""
    return (first, second)
