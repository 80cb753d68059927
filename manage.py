#!/usr/bin/env python
import os
import sys

# Pure case commands need no server, database or secret (config/settings/casefiles.py); the scenario runner needs
# only the local PostgreSQL (config/settings/scenarios.py).
SETTINGS_FOR_COMMAND = {
    "reconcile_case": "config.settings.casefiles",
    "size_case": "config.settings.casefiles",
    "rules_case": "config.settings.casefiles",
    "run_scenario": "config.settings.scenarios",
}


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_FOR_COMMAND.get(command, "config.settings.base"))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
