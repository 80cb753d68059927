"""`manage.py reconcile_case FILE`: replay a reconciliation case offline (no database, no terminal).

Prints the result JSON on stdout (exit 0). Any bad input prints one message on stderr, nothing on stdout,
and exits 2, as shared/spec/reconciliation.md asks (CommandError would exit 1).
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from reconciliation.case_file import parse_case


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    with open(file, "rb") as handle:
        return handle.read()


class Command(BaseCommand):
    help = "Reconcile the bot trades and live positions of a case file and print the result as JSON."
    # Pure computation: no system checks, so it runs even where the database or other apps are not ready.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="case JSON file, or - to read standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        file: str = options["file"]
        source = "stdin" if file == "-" else file
        try:
            output = json.dumps(parse_case(_read(file)).reconcile().to_dict(), indent=2)
        except OSError as exc:
            self._fail(f"cannot read {source}: {exc.strerror or exc}")
        except ValueError as exc:  # CaseFileError, and anything the matcher rejects
            self._fail(f"{source}: {exc}")
        self.stdout.write(output)

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"reconcile_case: {message}")
        sys.exit(2)
