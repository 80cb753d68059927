"""`manage.py rules_case FILE`: evaluate a rule set over an account history offline (no database, no terminal).

Prints the result JSON on stdout and exits 0. Malformed input prints one message on stderr, nothing on stdout,
and exits 2 as shared/spec/rules.md asks. FILE may be `-`.
"""

from collections.abc import Mapping
from typing import Any

from core.management.case_command import CaseFileCommand
from rules.case_file import parse_case


class Command(CaseFileCommand):
    help = "Evaluate a rule set (limits, objectives, headroom) over a case file's readings and trades."

    def run_case(self, source: bytes) -> Mapping[str, Any]:
        return parse_case(source).evaluate().to_result()
