"""Offline case files (reconcile_case, size_case): the error type and wording both parsers share.

Pure (no Django), like the parsers. The command shell is core.management.case_command.
"""

import json


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
