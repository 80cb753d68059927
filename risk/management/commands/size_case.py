"""`manage.py size_case FILE`: size a trade setup from a case file offline (no database, no terminal).

Prints the result JSON on stdout and exits 0, rejections included (a rejection is a result). Malformed input
prints one message on stderr, nothing on stdout, and exits 2 as shared/spec/sizing.md asks. FILE may be `-`.
"""

from collections.abc import Mapping
from typing import Any

from core.management.case_command import CaseFileCommand
from risk.case_file import parse_case


class Command(CaseFileCommand):
    help = "Size a trade setup from a case file with the fixed-risk rules and print the result as JSON."

    def run_case(self, source: bytes) -> Mapping[str, Any]:
        return parse_case(source).size().to_dict()
