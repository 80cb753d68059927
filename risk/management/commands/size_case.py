"""`manage.py size_case FILE`: size a trade setup from a case file offline (no database, no terminal).

Prints the result JSON on stdout and exits 0, rejections included (a rejection is a result). Malformed input
prints one message on stderr, nothing on stdout, and exits 2 as shared/spec/sizing.md asks (CommandError
would exit 1). FILE may be `-` for standard input.
"""

from __future__ import annotations

import json
import sys
from decimal import DecimalException
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from risk.case_file import parse_case


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    with open(file, "rb") as handle:
        return handle.read()


class Command(BaseCommand):
    help = "Size a trade setup from a case file with the fixed-risk rules and print the result as JSON."
    # Pure computation: no system checks, so it runs without a database.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="case JSON file, or - to read standard input")

    def handle(self, *args: Any, **options: Any) -> None:
        file: str = options["file"]
        source = "stdin" if file == "-" else file
        try:
            output = json.dumps(parse_case(_read(file)).size().to_dict(), indent=2)
        except OSError as exc:
            self._fail(f"cannot read {source}: {exc.strerror or exc}")
        except DecimalException:
            # Numbers with more digits than the 50-digit exact arithmetic can hold; refused, never rounded.
            self._fail(f"{source}: numbers too precise to size exactly")
        except ValueError as exc:  # CaseFileError, InvalidSizingInput
            self._fail(f"{source}: {exc}")
        self.stdout.write(output)

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"size_case: {message}")
        sys.exit(2)
