#!/usr/bin/env python
import os
import sys

# Pure case commands need no server, database or secret (config/settings/casefiles.py).
CASE_COMMANDS = {"reconcile_case", "size_case", "rules_case"}


def main() -> None:
    offline = len(sys.argv) > 1 and sys.argv[1] in CASE_COMMANDS
    os.environ.setdefault(
        "DJANGO_SETTINGS_MODULE", "config.settings.casefiles" if offline else "config.settings.base"
    )
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
