"""Our constants against the official MetaTrader5 5.0.6231 wheel's `__init__.py`, when the wheel can be found.

Looks for /tmp/mt5whl/*.whl, else tries `pip download` (short timeout); skips cleanly when neither works.
"""

import ast
import glob
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from integrations.mt5 import constants
from integrations.mt5.simulated import SimulatedTerminal

WHEEL_GLOB = "/tmp/mt5whl/metatrader5-5.0.6231-*.whl"  # noqa: S108 - where the wheel is dropped


def _find_wheel() -> Path | None:
    found = sorted(glob.glob(WHEEL_GLOB))
    if found:
        return Path(found[0])
    if os.environ.get("MT5_WHEEL_NO_DOWNLOAD"):
        return None
    target = Path(tempfile.mkdtemp(prefix="mt5whl-"))
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--platform", "win_amd64",
        "--python-version", "3.11", "MetaTrader5==5.0.6231", "-d", str(target), "-q",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, timeout=60, capture_output=True)  # noqa: S603 - fixed arguments
    except (subprocess.SubprocessError, OSError):
        return None
    found = sorted(target.glob("*.whl"))
    return found[0] if found else None


@pytest.fixture(scope="module")
def official() -> dict[str, int]:
    wheel = _find_wheel()
    if wheel is None:
        pytest.skip("the official MetaTrader5 5.0.6231 wheel is not available")
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read("MetaTrader5/__init__.py").decode("utf-8")
    values: dict[str, int] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if not name.startswith("__"):
                values[name] = eval(compile(ast.Expression(node.value), "<wheel>", "eval"))  # noqa: S307 - literals
    return values


def test_every_official_constant_is_ours_with_the_same_value(official):
    ours = {name: getattr(constants, name) for name in constants.CONSTANT_NAMES}
    assert ours == official


def test_the_terminal_exposes_every_official_constant(official):
    for name, value in official.items():
        assert getattr(SimulatedTerminal, name) == value


def test_constant_names_are_unique_and_complete():
    assert len(set(constants.CONSTANT_NAMES)) == len(constants.CONSTANT_NAMES) == 223
