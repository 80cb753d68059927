"""Plumbing shared by the API methods: the call wrapper, argument checks in the module's style, group masks."""

import functools
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from integrations.mt5.simulated.errors import (
    INVALID_ARGUMENTS,
    UNNAMED_NOT_ALLOWED,
    ApiError,
    invalid_argument,
)

F = TypeVar("F", bound=Callable[..., Any])
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")


def api_call(name: str, *, failure: Any = None, needs_connection: bool = True) -> Callable[[F], F]:
    """Route a method through the terminal's dispatcher: lock, latency, IPC link, injected faults, last_error.

    `failure` is what the real function returns on error: None, or False for the bool functions.
    """

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            return self._dispatch(name, failure, needs_connection, method, args, kwargs)

        wrapper.__sim_api__ = name  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def no_positional(args: tuple[Any, ...]) -> None:
    if args:
        raise ApiError(UNNAMED_NOT_ALLOWED)


def no_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if args or kwargs:
        raise ApiError(INVALID_ARGUMENTS)


def positional(
    args: tuple[Any, ...], kwargs: dict[str, Any], kinds: tuple[Any, ...], *, required: int
) -> list[Any]:
    """Check positional-only arguments like the C module: count, then each type ('Invalid 2nd unnamed argument')."""
    if kwargs:
        raise ApiError(INVALID_ARGUMENTS)
    if not required <= len(args) <= len(kinds):
        raise ApiError((INVALID_ARGUMENTS[0], "Invalid number of arguments"))
    for index, (value, kind) in enumerate(zip(args, kinds, strict=False)):
        if not is_kind(value, kind):
            raise ApiError((INVALID_ARGUMENTS[0], f"Invalid {_ORDINALS[index]} unnamed argument"))
    return list(args)


def is_kind(value: Any, kind: Any) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:  # a C double accepts ints too
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "date":
        return isinstance(value, datetime) or (isinstance(value, int) and not isinstance(value, bool))
    return isinstance(value, kind)


def keyword(kwargs: dict[str, Any], name: str, kind: Any) -> Any:
    value = kwargs.get(name)
    if value is not None and not is_kind(value, kind):
        raise ApiError(invalid_argument(name))
    return value


def only_keywords(kwargs: dict[str, Any], allowed: tuple[str, ...]) -> None:
    if set(kwargs) - set(allowed):
        raise ApiError(INVALID_ARGUMENTS)


@functools.lru_cache(maxsize=256)
def _mask(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*") + "$", re.IGNORECASE)


def group_match(name: str, group: str) -> bool:
    """MT5 group filter: comma-separated masks with `*`, `!` excludes; applied left to right."""
    matched = False
    for raw in group.split(","):
        mask = raw.strip()
        if not mask:
            continue
        if mask.startswith("!"):
            if _mask(mask[1:]).match(name):
                matched = False
        elif _mask(mask).match(name):
            matched = True
    return matched
