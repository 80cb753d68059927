"""`manage.py reconcile_case FILE`: replay a reconciliation case offline (no database, no terminal).

Prints the result JSON on stdout (exit 0). Any bad input prints one message on stderr, nothing on stdout,
and exits 2, as shared/spec/reconciliation.md asks.
"""

from collections.abc import Mapping
from typing import Any

from core.management.case_command import CaseFileCommand
from reconciliation.case_file import parse_case


class Command(CaseFileCommand):
    help = "Reconcile the bot trades and live positions of a case file and print the result as JSON."

    def run_case(self, source: bytes) -> Mapping[str, Any]:
        return parse_case(source).reconcile().to_dict()
