"""Import direction between the apps (docs/ARCHITECTURE.md "Import direction"), read from the source with ast.

    pipeline  →  reconciliation, guards, risk  →  rules, accounts  →  core, integrations

Every import counts, also inside functions; only imports under `if TYPE_CHECKING:` (types, never run) do not.
Tests and migrations are not checked: tests may drive a lower app through the pipeline.
"""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# Every app of the project itself (a package in the repository), whatever is added later.
DOMAIN_APPS = tuple(
    app for app in settings.INSTALLED_APPS if "." not in app and (ROOT / app).is_dir() and app != "core"
)

# app -> the project packages it must never import
FORBIDDEN = {
    "core": set(DOMAIN_APPS),
    "integrations": set(DOMAIN_APPS) | {"config"},
    "accounts": {"reconciliation", "guards", "risk", "pipeline"},
    "rules": {"reconciliation", "guards", "risk", "pipeline"},
    "reconciliation": {"guards", "risk", "pipeline"},
    "guards": {"reconciliation", "risk", "pipeline"},
    "risk": {"reconciliation", "pipeline"},
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _sources(app: str) -> list[Path]:
    return [
        path
        for path in sorted((ROOT / app).rglob("*.py"))
        if "tests" not in path.relative_to(ROOT).parts and "migrations" not in path.relative_to(ROOT).parts
    ]


def violations(app: str) -> list[str]:
    found = []
    for path in _sources(app):
        for line, module in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if module.split(".")[0] in FORBIDDEN[app]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("app", sorted(FORBIDDEN))
def test_no_app_imports_an_app_above_it(app):
    assert _sources(app), f"no sources found for {app}"
    assert violations(app) == []


def test_the_checker_sees_imports_inside_functions_and_skips_type_only_ones():
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from guards.models import GuardState\n"
        "def f():\n    from guards.services import account_guards_evaluate\n"
    )
    assert [module for _, module in _imports(tree)] == ["typing", "guards.services"]
