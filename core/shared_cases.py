"""Where the shared worked examples (`shared/cases/*.json`) are, for the tests that reproduce them.

`shared/` sits beside the checkout: next to /work/main, and two levels up from a worktree under /work/wt/<name>.
MT5GUARD_SHARED_DIR names it explicitly (a CI machine that keeps it elsewhere).
"""

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def shared_case_path(name: str) -> Path:
    """Path of shared/cases/<name>: MT5GUARD_SHARED_DIR first, else the nearest `shared/` above the checkout."""
    explicit = os.environ.get("MT5GUARD_SHARED_DIR")
    if explicit:
        return Path(explicit) / "cases" / name
    for parent in _REPO.parents:
        candidate = parent / "shared" / "cases" / name
        if candidate.exists():
            return candidate
    return _REPO.parent / "shared" / "cases" / name  # where it is expected; the test then says it is missing
