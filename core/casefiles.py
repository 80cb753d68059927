"""Offline case files (reconcile_case, size_case, rules_case): the error type, the wording and the JSON reading the
parsers share (exact decimals, duplicate keys refused, path-named errors).

Pure (no Django), like the parsers. The command shell is core.management.case_command.
"""

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any


class CaseFileError(ValueError):
    """The case file is malformed or breaks a rule; the message names the path of the bad value."""


def describe(value: object) -> str:
    """A bad value as a user would recognise it in their JSON."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def case_error(path: str, problem: str, value: object) -> CaseFileError:
    return CaseFileError(f"{path}: {problem} (got {describe(value)})")


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json `object_pairs_hook`: a key given twice is an error (the second would silently win)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CaseFileError(f"duplicate key {json.dumps(key)}")
        result[key] = value
    return result


def load_json(text: str | bytes) -> object:
    """The document with every number an exact Decimal (NaN/Infinity load, then fail with their path as non-finite
    numbers); bad UTF-8, bad JSON and duplicate keys are CaseFileErrors."""
    try:
        decoded = text.decode("utf-8-sig") if isinstance(text, bytes) else text
    except UnicodeDecodeError:
        raise CaseFileError("not UTF-8 text") from None
    try:
        return json.loads(
            decoded,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=Decimal,
            object_pairs_hook=no_duplicates,
        )
    except json.JSONDecodeError as exc:
        raise CaseFileError(f"not valid JSON: {exc}") from None
    except InvalidOperation:
        raise CaseFileError("not valid JSON: a number that is not a decimal") from None


def expect_object(value: object, path: str, *, known: set[str] | None = None) -> Mapping[str, Any]:
    """`value` as an object; with `known`, any other key is an error naming its path."""
    if not isinstance(value, dict):
        raise case_error(path, "must be an object", value)
    if known is not None:
        for key in value:
            if key not in known:
                raise CaseFileError(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
    return value


def expect_array(value: object, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise case_error(path, "must be an array", value)
    return value


def required(section: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in section:
        raise CaseFileError(f"{path}.{key}: is required" if path else f"{key}: is required")
    return section[key]
