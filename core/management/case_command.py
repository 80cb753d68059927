"""The shell of the offline case commands: read FILE or stdin, print the result JSON (exit 0), or print one message
naming the bad value on stderr and exit 2, as the specs ask (a CommandError would exit 1)."""

import json
import sys
from collections.abc import Mapping
from decimal import DecimalException
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser


class CaseFileCommand(BaseCommand):
    """`manage.py <name> FILE|-`. Subclasses implement `run_case(source) -> dict`.

    Exit status 2 on bad input, as the specs ask (a CommandError would exit 1). Pure computation: no system
    checks, so the commands run without a database.
    """

    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="case JSON file, or - to read standard input")

    def run_case(self, source: bytes) -> Mapping[str, Any]:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        file: str = options["file"]
        source = "stdin" if file == "-" else file
        try:
            output = json.dumps(self.run_case(_read(file)), indent=2)
        except OSError as exc:
            self._fail(f"cannot read {source}: {exc.strerror or exc}")
        except DecimalException:
            # More digits than the exact decimal arithmetic holds: refused, never silently rounded.
            self._fail(f"{source}: numbers too precise to compute exactly")
        except ValueError as exc:  # CaseFileError, and anything the rules reject as input
            self._fail(f"{source}: {exc}")
        self.stdout.write(output)

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"{self._command_name()}: {message}")
        sys.exit(2)

    def _command_name(self) -> str:
        return type(self).__module__.rsplit(".", 1)[-1]


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    with open(file, "rb") as handle:
        return handle.read()
