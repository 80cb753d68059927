"""`manage.py run_scenario FILE`: play a scripted market through the real guard pipeline (shared/spec/guards.md).

Creates a throw-away database (a uniquely named PostgreSQL database, or a temporary SQLite file when the project runs
on SQLite), migrates it, runs the scenario against an in-process simulated terminal on a virtual clock, prints
`{"events": [...], "final": {...}}` as JSON on stdout and drops the database. A malformed file prints one message on
stderr, nothing on stdout, and exits with status 2.
"""

import json
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from pipeline.replay.parser import ScenarioError, scenario_parse


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Create, migrate and finally drop a database of our own; the default connection points at it meanwhile."""
    connection = connections[DEFAULT_DB_ALIAS]
    test_settings = connection.settings_dict.setdefault("TEST", {})
    saved_test_name = test_settings.get("NAME")
    original_name = connection.settings_dict["NAME"]
    token = f"scenario_{os.getpid()}_{secrets.token_hex(4)}"
    if connection.vendor == "sqlite":
        test_settings["NAME"] = str(Path(tempfile.gettempdir()) / f"{token}.sqlite3")
    else:
        test_settings["NAME"] = token
    try:
        name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False, keepdb=False
        )
    finally:
        test_settings["NAME"] = saved_test_name
    try:
        yield name
    finally:
        for alias in connections:
            connections[alias].close()
        connection.creation.destroy_test_db(original_name, verbosity=0)


def _in_place_allowed() -> bool:
    name = str(connections[DEFAULT_DB_ALIAS].settings_dict["NAME"])
    return Path(name).name.startswith("test")


class Command(BaseCommand):
    help = "Play a guard scenario (JSON) against the simulated terminal on a throw-away database; print JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE", help="scenario JSON file, or - for standard input")
        parser.add_argument(
            "--in-place",
            action="store_true",
            help="use the current database instead of a throw-away one (tests only: refused unless its name "
            "starts with 'test')",
        )
        parser.add_argument("--indent", type=int, default=2, help="JSON indentation (0 for one line)")

    def handle(self, *args: Any, **options: Any) -> None:
        from pipeline.replay.runner import scenario_run

        source = "stdin" if options["file"] == "-" else options["file"]
        try:
            text = (
                sys.stdin.read()
                if options["file"] == "-"
                else Path(options["file"]).read_text(encoding="utf-8")
            )
        except (OSError, UnicodeDecodeError) as exc:
            self._fail(f"cannot read {source}: {getattr(exc, 'strerror', None) or exc}")
        try:
            scenario = scenario_parse(text)
        except ScenarioError as exc:
            self._fail(f"{source}: {exc}")
        if options["in_place"] and not _in_place_allowed():
            self._fail("--in-place is only allowed on a test database")
        try:
            if options["in_place"]:
                result = scenario_run(scenario)
            else:
                with throwaway_database():
                    result = scenario_run(scenario)
        except ScenarioError as exc:
            self._fail(f"{source}: {exc}")
        indent = options["indent"] or None
        self.stdout.write(json.dumps(result, indent=indent))

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"run_scenario: {message}")
        sys.exit(2)
