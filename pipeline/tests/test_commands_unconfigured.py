"""The commands the specs promise run on a machine where nothing is configured: `run_scenario` (on the local
PostgreSQL, its throw-away database) and the pure case commands (no server at all)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bare_environment() -> dict[str, str]:
    """No DJANGO_*, DATABASE_URL, REDIS_URL or secret: what a newcomer's shell has."""
    keep = {"PATH", "HOME", "LANG", "TMPDIR"}
    return {name: value for name, value in os.environ.items() if name in keep}


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=_bare_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_run_scenario_needs_nothing_configured_but_the_local_postgresql():
    done = _manage("run_scenario", "guards/scenarios/critical_liquidation.json")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["final"]["guard_state"] == "halted"
    assert any(event["type"] == "liquidation_started" for event in result["events"])


def test_a_malformed_scenario_exits_2_with_a_message_and_nothing_on_stdout(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"account": {"login": 1}, "steps": "nope"}')
    done = _manage("run_scenario", str(bad))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip()
